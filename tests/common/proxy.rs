//! A TCP proxy in front of PostgreSQL that outage tests take down and bring back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the proxy fails while it is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The port is closed, so connection attempts are refused as when PostgreSQL is stopped.
    PortClosed,
    /// The port stays open and each new connection is closed as soon as it is accepted, as a
    /// load balancer or Docker's port forwarding does while the server behind it is down. The
    /// proxy counts these connections.
    ConnectionsReset,
}

/// Forwards connections from 127.0.0.1 to PostgreSQL until it is taken down. Taking it down ends
/// every forwarded connection, and bringing it up listens on the same port again.
pub struct DatabaseProxy {
    pub address: SocketAddr,
    state: Arc<ProxyState>,
    accept_task: Option<JoinHandle<()>>,
}

struct ProxyState {
    upstream: SocketAddr,
    phase: Mutex<ProxyPhase>,
    /// Connections closed at once because the proxy was down.
    rejected: AtomicUsize,
}

struct ProxyPhase {
    up: bool,
    /// Cancelled when the proxy goes down, which ends every connection forwarded until then.
    connections: CancellationToken,
}

impl DatabaseProxy {
    pub async fn start(upstream: SocketAddr) -> DatabaseProxy {
        let listener = bind_reusable("127.0.0.1:0".parse().unwrap());
        let address = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState {
            upstream,
            phase: Mutex::new(ProxyPhase {
                up: true,
                connections: CancellationToken::new(),
            }),
            rejected: AtomicUsize::new(0),
        });
        let accept_task = tokio::spawn(accept_connections(listener, state.clone()));
        DatabaseProxy {
            address,
            state,
            accept_task: Some(accept_task),
        }
    }

    /// Ends every forwarded connection and fails new ones until [`DatabaseProxy::bring_up`].
    pub async fn take_down(&mut self, outage: Outage) {
        {
            let mut phase = self.state.phase.lock().unwrap();
            phase.up = false;
            phase.connections.cancel();
            phase.connections = CancellationToken::new();
        }
        if outage == Outage::PortClosed
            && let Some(task) = self.accept_task.take()
        {
            task.abort();
            // The listener closes when the aborted task is dropped.
            let _ = task.await;
        }
    }

    pub fn bring_up(&mut self) {
        self.state.phase.lock().unwrap().up = true;
        if self.accept_task.is_none() {
            let listener = bind_reusable(self.address);
            self.accept_task = Some(tokio::spawn(accept_connections(
                listener,
                self.state.clone(),
            )));
        }
    }

    pub fn rejected(&self) -> usize {
        self.state.rejected.load(Ordering::SeqCst)
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
        self.state.phase.lock().unwrap().connections.cancel();
    }
}

/// Binds a listener with SO_REUSEADDR, so the proxy can listen on its port again while closed
/// connections of that port are still in TIME_WAIT.
fn bind_reusable(address: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("failed to create the proxy socket");
    socket
        .set_reuseaddr(true)
        .expect("failed to set SO_REUSEADDR");
    socket
        .bind(address)
        .unwrap_or_else(|error| panic!("failed to bind the proxy to {address}: {error}"));
    socket
        .listen(128)
        .expect("failed to listen on the proxy socket")
}

async fn accept_connections(listener: TcpListener, state: Arc<ProxyState>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let connections = {
            let phase = state.phase.lock().unwrap();
            phase.up.then(|| phase.connections.clone())
        };
        match connections {
            Some(connections) => {
                tokio::spawn(forward(client, state.upstream, connections));
            }
            None => {
                state.rejected.fetch_add(1, Ordering::SeqCst);
                drop(client);
            }
        }
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, connections: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = connections.cancelled() => {}
    }
}

/// Resolves the address of the PostgreSQL server that `DATABASE_URL` names.
pub async fn database_address() -> SocketAddr {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set");
    let url = url::Url::parse(&url).expect("DATABASE_URL is a URL");
    let host = url.host_str().expect("DATABASE_URL names a host");
    let port = url.port().unwrap_or(5432);
    tokio::net::lookup_host((host, port))
        .await
        .expect("the database host resolves")
        .next()
        .expect("the database host has an address")
}

pub fn url_through(url: &str, proxy: SocketAddr) -> String {
    let mut url = url::Url::parse(url).expect("the database URL is a URL");
    url.set_host(Some(&proxy.ip().to_string())).unwrap();
    url.set_port(Some(proxy.port())).unwrap();
    url.to_string()
}

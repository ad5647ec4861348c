//! [`PgBackend`]: the apalis-core `Backend` of one queue.

use std::collections::HashSet;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::task::task_id::RandomId;
use apalis_core::worker::context::WorkerContext;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::completer::Completer;
use super::{EngineConfig, ResultLayer, claim, fetcher, lease};
use crate::QueueError;

/// State shared by a backend, its background tasks and its result layer.
pub(crate) struct Shared {
    pub pool: PgPool,
    pub config: EngineConfig,
    /// The lease owner: unique per backend instance, so a restarted worker never inherits leases.
    pub owner: Arc<str>,
    /// Jobs this worker holds: claimed, possibly not yet started. Only these get heartbeats.
    pub held: Mutex<HashSet<i64>>,
    /// Signalled when a held job is let go, so the fetcher can claim again.
    /// Also notified by the completer after each written batch.
    pub capacity_freed: Arc<Notify>,
    pub completer: Completer,
    /// Cancelled when the worker starts to stop: the fetcher and the listener end.
    pub stop_claiming: CancellationToken,
    /// Cancelled once the backend has stopped: the heartbeat and the rescuer end. Cancelling it
    /// also cancels `stop_claiming`.
    pub shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn held_count(&self) -> usize {
        self.held
            .lock()
            .map(|held| held.len())
            .unwrap_or(usize::MAX)
    }

    pub(crate) fn held_ids(&self) -> Vec<i64> {
        self.held
            .lock()
            .map(|held| held.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn hold(&self, ids: impl IntoIterator<Item = i64>) {
        if let Ok(mut held) = self.held.lock() {
            held.extend(ids);
        }
    }

    pub(crate) fn let_go(&self, id: i64) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&id);
        }
        self.capacity_freed.notify_one();
    }
}

/// The backend of one queue for one apalis worker. `Args` is decoded from the job's payload; a
/// payload that does not decode makes that job dead without stopping the worker.
pub struct PgBackend<Args> {
    shared: Arc<Shared>,
    sender: Option<mpsc::UnboundedSender<Task<Args>>>,
    receiver: Option<mpsc::UnboundedReceiver<Task<Args>>>,
    fetcher: Option<JoinHandle<()>>,
    closing: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    _args: PhantomData<fn() -> Args>,
}

impl<Args> PgBackend<Args> {
    /// Creates the backend; its background tasks start on the worker's first poll.
    pub fn new(pool: PgPool, config: EngineConfig, owner: impl Into<String>) -> Self {
        let owner: Arc<str> = Arc::from(owner.into());
        let capacity_freed = Arc::new(Notify::new());
        let completer = Completer::start(
            pool.clone(),
            owner.clone(),
            config.completer_batch,
            capacity_freed.clone(),
        );
        let (sender, receiver) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        PgBackend {
            shared: Arc::new(Shared {
                pool,
                config,
                owner,
                held: Mutex::new(HashSet::new()),
                capacity_freed,
                completer,
                stop_claiming: shutdown.child_token(),
                shutdown,
            }),
            fetcher: None,
            sender: Some(sender),
            receiver: Some(receiver),
            closing: None,
            _args: PhantomData,
        }
    }

    /// Returns the lease owner name of this backend.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }
}

impl<Args: DeserializeOwned + Send + 'static> PgBackend<Args> {
    fn start(&mut self, worker: &WorkerContext) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        let shared = self.shared.clone();
        info!(worker = %shared.owner, queue = %shared.config.queue, concurrency = shared.config.concurrency, "backend started");
        self.fetcher = Some(tokio::spawn(fetcher::run_fetcher(
            shared.clone(),
            sender,
            worker.clone(),
        )));
        tokio::spawn(lease::run_heartbeat(shared.clone()));
        tokio::spawn(lease::run_rescuer(shared));
    }
}

impl<Args> Drop for PgBackend<Args> {
    fn drop(&mut self) {
        // Stops the background tasks; leases of jobs still held expire and are rescued.
        self.shared.shutdown.cancel();
    }
}

impl<Args: DeserializeOwned + Send + 'static> Backend for PgBackend<Args> {
    type Task = Task<Args>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        self.start(worker);
        match self.receiver.as_mut() {
            Some(receiver) => receiver.poll_recv(cx).map(|task| task.map(Ok)),
            None => Poll::Ready(None),
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        if self.closing.is_none() {
            self.shared.stop_claiming.cancel();
            let shared = self.shared.clone();
            let receiver = self.receiver.take();
            let fetcher = self.fetcher.take();
            self.closing = Some(Box::pin(close(shared, receiver, fetcher)));
        }
        match self.closing.as_mut() {
            Some(closing) => closing.as_mut().poll(cx).map(Ok),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Stops a backend: releases claimed jobs that never started, waits up to the drain timeout for
/// running ones, writes the queued results and leaves the live-worker list.
async fn close<Args>(
    shared: Arc<Shared>,
    receiver: Option<mpsc::UnboundedReceiver<Task<Args>>>,
    fetcher: Option<JoinHandle<()>>,
) {
    // Wait for a claim still in flight, so every job this worker claimed is in the channel.
    shared.stop_claiming.cancel();
    if let Some(fetcher) = fetcher
        && tokio::time::timeout(std::time::Duration::from_secs(10), fetcher)
            .await
            .is_err()
    {
        warn!(worker = %shared.owner, "the fetcher did not stop within 10 s");
    }

    let mut unstarted = Vec::new();
    if let Some(mut receiver) = receiver {
        receiver.close();
        while let Ok(task) = receiver.try_recv() {
            if let Some(meta) = task.ctx().data().get::<crate::JobMeta>() {
                unstarted.push(meta.id.0);
            }
        }
    }
    match claim::release(&shared.pool, &shared.owner, &unstarted).await {
        Ok(released) if released > 0 => {
            info!(worker = %shared.owner, released, "released claimed jobs that had not started")
        }
        Ok(_) => {}
        Err(error) => {
            warn!(worker = %shared.owner, %error, "failed to release unstarted jobs; they are rescued when their leases expire")
        }
    }
    for id in unstarted {
        shared.let_go(id);
    }

    let deadline = tokio::time::Instant::now() + shared.config.drain_timeout;
    while shared.held_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            () = shared.capacity_freed.notified() => {}
            () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
        }
    }
    if shared.held_count() > 0 {
        warn!(worker = %shared.owner, jobs = ?shared.held_ids(), "jobs still running after the drain timeout; they are rescued when their leases expire");
    }

    shared.completer.flush().await;
    shared.shutdown.cancel();
    if let Err(error) = claim::unregister(&shared.pool, &shared.owner).await {
        warn!(worker = %shared.owner, %error, "failed to remove the worker from the live list");
    }
    info!(worker = %shared.owner, "backend stopped");
}

impl<Args> BackendConfig for PgBackend<Args> {
    type Args = Args;
    type Id = RandomId;
    type Kind = Ephemeral;
    type Config = EngineConfig;
    type Layer = ResultLayer;

    fn config(&self) -> &Self::Config {
        &self.shared.config
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        ResultLayer::new(self.shared.clone())
    }
}

//! Private PostgreSQL cluster for `duespark dev` when `DATABASE_URL` is unset.
//!
//! This module finds the PostgreSQL server programs installed on the machine, creates a cluster with
//! `initdb` on first use, starts it with `pg_ctl` on 127.0.0.1, creates the `duespark` database and
//! stops the server again. It does not run migrations: the caller does that through [`LocalPg::url`].
//!
//! Layout of a cluster directory (normally `<var_dir>/pg`):
//! - `data/`: the data directory (PGDATA), which also holds the Unix-domain socket;
//! - `port`: the TCP port of the last start, reused next time;
//! - `postgres.log`: the server log written by `pg_ctl`.
//!
//! PostgreSQL refuses to run as root. When this process runs as root, `initdb` and `pg_ctl` run as the
//! `postgres` system user through `runuser`, and the cluster lives where that user can reach it.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::hash::Hasher;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::process::Command;

/// Port tried first when a cluster has no recorded port.
pub const DEFAULT_PORT: u16 = 5439;

/// Name of the database that [`LocalPg::url`] points at.
pub const DATABASE_NAME: &str = "duespark";

/// Database superuser created by `initdb`. The cluster trusts every connection over 127.0.0.1.
const SUPERUSER: &str = "postgres";

/// System user that runs the server when this process runs as root.
const SERVER_SYSTEM_USER: &str = "postgres";

/// Parent of the clusters whose var directory the server system user cannot traverse.
const SHARED_CLUSTERS_DIR: &str = "/var/tmp/duespark-dev-pg";

/// Seconds that `pg_ctl` waits for the server to start or stop.
const PG_CTL_TIMEOUT_SECONDS: &str = "60";

/// Maximum length of a Unix-domain socket path on Linux (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH_BYTES: usize = 107;

/// Server settings file that [`start`] rewrites on every start and `postgresql.conf` includes.
const SETTINGS_FILE: &str = "duespark.conf";

/// Errors from finding, creating, starting or stopping the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(
        "PostgreSQL server programs (initdb and pg_ctl) were not found (searched: {searched}). \
         Install the PostgreSQL server (Debian or Ubuntu: `apt-get install postgresql`; \
         macOS: `brew install postgresql@16`), set PG_BIN_DIR to the directory that contains initdb, \
         or set DATABASE_URL to use an existing server"
    )]
    ServerProgramsNotFound { searched: String },

    #[error(
        "PG_BIN_DIR={} does not contain initdb and pg_ctl; set it to the directory of the PostgreSQL \
         server programs, for example /usr/lib/postgresql/15/bin",
        dir.display()
    )]
    InvalidPgBinDir { dir: PathBuf },

    #[error(
        "this process runs as root, but the `{user}` system user was not found. PostgreSQL refuses to \
         run as root: create that user (Debian's postgresql package does), run duespark as an \
         unprivileged user, or set DATABASE_URL to use an existing server"
    )]
    ServerUserMissing { user: &'static str },

    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed with {status}: {output}")]
    CommandFailed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },

    #[error("failed to {action} on the local PostgreSQL server at 127.0.0.1:{port}")]
    Database {
        action: &'static str,
        port: u16,
        #[source]
        source: sqlx::Error,
    },
}

/// A running local PostgreSQL server started by [`start`].
#[derive(Debug)]
pub struct LocalPg {
    /// Connection URL of the `duespark` database, e.g. `postgres://postgres@127.0.0.1:5439/duespark`.
    pub url: String,
    /// Data directory (PGDATA) of the cluster.
    pub data_dir: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    programs: PgPrograms,
}

impl LocalPg {
    /// Stops the server with `pg_ctl stop -m fast`, which disconnects open sessions, and waits for it.
    pub async fn stop(self) -> Result<(), LocalPgError> {
        let mut command = self.programs.command("pg_ctl", &self.data_dir);
        command.arg("stop").arg("-D").arg(&self.data_dir).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_TIMEOUT_SECONDS,
        ]);
        run(command).await?;

        tracing::info!(data_dir = %self.data_dir.display(), port = self.port, "stopped local PostgreSQL");
        Ok(())
    }
}

/// Starts the local cluster for `var_dir`, creating it on first use, and creates the `duespark`
/// database if it is missing.
///
/// The server listens on 127.0.0.1 only, at the port recorded by the previous start, or
/// [`DEFAULT_PORT`] for a new cluster. When that port is taken, the OS picks a free one, which is
/// recorded for next time. A server left running by an earlier process is reused as it is.
pub async fn start(var_dir: &Path) -> Result<LocalPg, LocalPgError> {
    start_with_default_port(var_dir, DEFAULT_PORT).await
}

async fn start_with_default_port(
    var_dir: &Path,
    default_port: u16,
) -> Result<LocalPg, LocalPgError> {
    let bin_dir = find_pg_bin_dir()?;
    let server_user = if is_root() {
        Some(find_server_user().await?)
    } else {
        None
    };
    let programs = PgPrograms {
        bin_dir,
        server_user,
    };

    let var_dir = absolute_dir(var_dir)?;
    let cluster_dir = choose_cluster_dir(&var_dir, programs.server_user.as_ref()).await?;
    prepare_cluster_dir(&cluster_dir, programs.server_user.as_ref())?;
    let data_dir = cluster_dir.join("data");

    if !data_dir.join("PG_VERSION").is_file() {
        init_cluster(&programs, &cluster_dir, &data_dir).await?;
    }

    let port = match running_server_port(&programs, &data_dir).await {
        Some(port) => {
            tracing::info!(data_dir = %data_dir.display(), port, "reusing local PostgreSQL that is already running");
            port
        }
        None => {
            let port = choose_port(&cluster_dir, default_port)?;
            start_server(&programs, &cluster_dir, &data_dir, port).await?;
            tracing::info!(data_dir = %data_dir.display(), port, "started local PostgreSQL");
            port
        }
    };

    create_database_if_missing(port).await?;

    Ok(LocalPg {
        url: format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{DATABASE_NAME}"),
        data_dir,
        port,
        programs,
    })
}

/// Finds the directory that contains the PostgreSQL server programs `initdb` and `pg_ctl`.
///
/// Looks in order at `PG_BIN_DIR`, `pg_config --bindir`, the directories on `PATH`,
/// `/usr/lib/postgresql/<newest version>/bin` (Debian and Ubuntu), then the Homebrew directories
/// `/opt/homebrew/opt/postgresql@<newest>/bin` and `/usr/local/opt/postgresql@<newest>/bin`.
pub fn find_pg_bin_dir() -> Result<PathBuf, LocalPgError> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        if has_server_programs(&dir) {
            return Ok(dir);
        }
        return Err(LocalPgError::InvalidPgBinDir { dir });
    }

    let mut candidates = Vec::new();
    candidates.extend(pg_config_bin_dir());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.extend(newest_versioned_dir(
        Path::new("/usr/lib/postgresql"),
        "",
        "bin",
    ));
    candidates.extend(newest_versioned_dir(
        Path::new("/opt/homebrew/opt"),
        "postgresql@",
        "bin",
    ));
    candidates.extend(newest_versioned_dir(
        Path::new("/usr/local/opt"),
        "postgresql@",
        "bin",
    ));

    if let Some(dir) = candidates.iter().find(|dir| has_server_programs(dir)) {
        return Ok(dir.clone());
    }
    Err(LocalPgError::ServerProgramsNotFound {
        searched: "PG_BIN_DIR, pg_config --bindir, PATH, /usr/lib/postgresql/*/bin, \
                   /opt/homebrew/opt/postgresql@*/bin, /usr/local/opt/postgresql@*/bin"
            .to_owned(),
    })
}

fn pg_config_bin_dir() -> Option<PathBuf> {
    let output = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    Some(PathBuf::from(dir.trim()))
}

/// Returns `<parent>/<prefix><version>/<suffix>` for the highest numeric version among the entries
/// of `parent`, comparing versions such as `9.6` and `15` component by component.
fn newest_versioned_dir(parent: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(parent).ok()?;
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = parse_version(name.strip_prefix(prefix)?)?;
            Some((version, entry.path().join(suffix)))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, dir)| dir)
}

fn parse_version(text: &str) -> Option<Vec<u32>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server_programs(dir: &Path) -> bool {
    ["initdb", "pg_ctl"]
        .iter()
        .all(|program| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Tells whether this process runs with effective user id 0.
///
/// On Linux the owner of `/proc/self` is the effective user id. Elsewhere this runs `id -u`.
fn is_root() -> bool {
    if let Ok(metadata) = std::fs::metadata("/proc/self") {
        return metadata.uid() == 0;
    }
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|output| output.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// The system user that runs `initdb` and `pg_ctl` when this process runs as root.
#[derive(Debug, Clone)]
struct ServerUser {
    name: &'static str,
    uid: u32,
    gid: u32,
}

async fn find_server_user() -> Result<ServerUser, LocalPgError> {
    let missing = || LocalPgError::ServerUserMissing {
        user: SERVER_SYSTEM_USER,
    };
    let uid = read_id(["-u", SERVER_SYSTEM_USER])
        .await
        .ok_or_else(missing)?;
    let gid = read_id(["-g", SERVER_SYSTEM_USER])
        .await
        .ok_or_else(missing)?;
    Ok(ServerUser {
        name: SERVER_SYSTEM_USER,
        uid,
        gid,
    })
}

async fn read_id(args: [&str; 2]) -> Option<u32> {
    let output = Command::new("id").args(args).output().await.ok()?;
    if !output.status.success() {
        return None;
    }
    std::str::from_utf8(&output.stdout)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The PostgreSQL programs of one installation, run as the server system user when needed.
#[derive(Debug, Clone)]
struct PgPrograms {
    bin_dir: PathBuf,
    server_user: Option<ServerUser>,
}

impl PgPrograms {
    /// Builds a command for `program`, run from `working_dir` so that the server user never
    /// starts in a directory it cannot read (such as `/root`).
    fn command(&self, program: &str, working_dir: &Path) -> Command {
        let program_path = self.bin_dir.join(program);
        let mut command = match &self.server_user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user.name, "--"]).arg(program_path);
                command
            }
            None => Command::new(program_path),
        };
        command.current_dir(working_dir);
        command
    }
}

/// Runs `command` to completion and returns its output, or an error with its stderr and stdout.
async fn run(mut command: Command) -> Result<Output, LocalPgError> {
    let display = describe(&command);
    let output = command
        .output()
        .await
        .map_err(|source| LocalPgError::Spawn {
            command: display.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(output);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    Err(LocalPgError::CommandFailed {
        command: display,
        status: output.status,
        output: text.trim().to_owned(),
    })
}

fn describe(command: &Command) -> String {
    let command = command.as_std();
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        let _ = write!(text, " {}", arg.to_string_lossy());
    }
    text
}

fn absolute_dir(dir: &Path) -> Result<PathBuf, LocalPgError> {
    std::fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;
    dir.canonicalize()
        .map_err(|source| io_error("resolve the path of", dir, source))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> LocalPgError {
    LocalPgError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Chooses `<var_dir>/pg`, unless the server user cannot traverse `var_dir` (as under `/root`), in
/// which case the cluster goes to a directory under [`SHARED_CLUSTERS_DIR`] named by a hash of
/// `var_dir`, so that each var directory keeps its own cluster.
async fn choose_cluster_dir(
    var_dir: &Path,
    server_user: Option<&ServerUser>,
) -> Result<PathBuf, LocalPgError> {
    let Some(user) = server_user else {
        return Ok(var_dir.join("pg"));
    };

    let mut probe = Command::new("runuser");
    probe
        .args(["-u", user.name, "--", "test", "-x"])
        .arg(var_dir)
        .current_dir("/");
    let reachable = probe
        .status()
        .await
        .map_err(|source| LocalPgError::Spawn {
            command: describe(&probe),
            source,
        })?
        .success();
    if reachable {
        return Ok(var_dir.join("pg"));
    }

    let cluster_dir = shared_cluster_dir(var_dir);
    tracing::info!(
        var_dir = %var_dir.display(),
        cluster_dir = %cluster_dir.display(),
        user = user.name,
        "the PostgreSQL system user cannot reach the var directory, so the local cluster lives elsewhere"
    );
    Ok(cluster_dir)
}

fn shared_cluster_dir(var_dir: &Path) -> PathBuf {
    Path::new(SHARED_CLUSTERS_DIR).join(format!("{:016x}", fnv1a_64(var_dir.as_os_str())))
}

/// FNV-1a, chosen because its output never changes between Rust releases, unlike `DefaultHasher`.
fn fnv1a_64(bytes: &OsStr) -> u64 {
    struct Fnv1a(u64);
    impl Hasher for Fnv1a {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for byte in bytes {
                self.0 ^= u64::from(*byte);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325);
    hasher.write(bytes.as_encoded_bytes());
    hasher.finish()
}

/// Creates the cluster directory, readable only by the user that runs the server.
fn prepare_cluster_dir(
    cluster_dir: &Path,
    server_user: Option<&ServerUser>,
) -> Result<(), LocalPgError> {
    if cluster_dir.starts_with(SHARED_CLUSTERS_DIR) {
        // The shared parent must stay traversable for the server user even under a strict umask.
        let parent = Path::new(SHARED_CLUSTERS_DIR);
        std::fs::create_dir_all(parent).map_err(|source| io_error("create", parent, source))?;
        set_mode(parent, 0o755)?;
    }
    std::fs::create_dir_all(cluster_dir)
        .map_err(|source| io_error("create", cluster_dir, source))?;
    if let Some(user) = server_user {
        std::os::unix::fs::chown(cluster_dir, Some(user.uid), Some(user.gid))
            .map_err(|source| io_error("change the owner of", cluster_dir, source))?;
    }
    set_mode(cluster_dir, 0o700)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LocalPgError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|source| io_error("set the permissions of", path, source))
}

async fn init_cluster(
    programs: &PgPrograms,
    cluster_dir: &Path,
    data_dir: &Path,
) -> Result<(), LocalPgError> {
    tracing::info!(data_dir = %data_dir.display(), "creating local PostgreSQL cluster with initdb");

    let mut command = programs.command("initdb", cluster_dir);
    // --no-sync skips flushing the new files to disk. It only saves time, and risks the new cluster
    // only if the machine crashes within seconds of its creation.
    command.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    run(command).await?;

    // Settings that depend on the port and the path live in SETTINGS_FILE, rewritten on each start.
    let config_path = data_dir.join("postgresql.conf");
    let mut config = std::fs::read_to_string(&config_path)
        .map_err(|source| io_error("read", &config_path, source))?;
    config.push_str(
        "\n# Port, listen address and socket directory, written by duespark on each start.\n",
    );
    let _ = writeln!(config, "include_if_exists = '{SETTINGS_FILE}'");
    std::fs::write(&config_path, config).map_err(|source| io_error("write", &config_path, source))
}

/// Returns the port of a server that already runs on `data_dir`, for example one left by a
/// `duespark dev` that was killed.
async fn running_server_port(programs: &PgPrograms, data_dir: &Path) -> Option<u16> {
    let mut command = programs.command("pg_ctl", data_dir.parent()?);
    command.arg("status").arg("-D").arg(data_dir);
    // `pg_ctl status` exits with 0 only when a server runs, 3 when none does.
    run(command).await.ok()?;

    // The fourth line of postmaster.pid is the server's port.
    let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    pid_file.lines().nth(3)?.trim().parse().ok()
}

/// Picks the recorded port, or `default_port` for a new cluster, unless something else listens there.
fn choose_port(cluster_dir: &Path, default_port: u16) -> Result<u16, LocalPgError> {
    let recorded = read_recorded_port(cluster_dir);
    let preferred = recorded.unwrap_or(default_port);

    let port = if TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        preferred
    } else {
        let port = free_port().map_err(|source| {
            io_error("find a free TCP port on", Path::new("127.0.0.1"), source)
        })?;
        tracing::info!(
            busy_port = preferred,
            port,
            "local PostgreSQL port is in use, so a free one was chosen"
        );
        port
    };

    if recorded != Some(port) {
        let path = cluster_dir.join("port");
        std::fs::write(&path, format!("{port}\n"))
            .map_err(|source| io_error("write", &path, source))?;
    }
    Ok(port)
}

fn read_recorded_port(cluster_dir: &Path) -> Option<u16> {
    std::fs::read_to_string(cluster_dir.join("port"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

async fn start_server(
    programs: &PgPrograms,
    cluster_dir: &Path,
    data_dir: &Path,
    port: u16,
) -> Result<(), LocalPgError> {
    write_server_settings(data_dir, port, programs.server_user.as_ref())?;

    let log_path = cluster_dir.join("postgres.log");
    let mut command = programs.command("pg_ctl", cluster_dir);
    command
        .arg("start")
        .arg("-D")
        .arg(data_dir)
        .arg("-l")
        .arg(&log_path)
        .args(["-w", "-t", PG_CTL_TIMEOUT_SECONDS]);

    match run(command).await {
        Ok(_) => Ok(()),
        Err(LocalPgError::CommandFailed {
            command,
            status,
            output,
        }) => Err(LocalPgError::CommandFailed {
            command,
            status,
            output: format!(
                "{output}\nlast lines of {}:\n{}",
                log_path.display(),
                log_tail(&log_path)
            ),
        }),
        Err(other) => Err(other),
    }
}

fn log_tail(log_path: &Path) -> String {
    let Ok(log) = std::fs::read_to_string(log_path) else {
        return "(no log)".to_owned();
    };
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn write_server_settings(
    data_dir: &Path,
    port: u16,
    server_user: Option<&ServerUser>,
) -> Result<(), LocalPgError> {
    let path = data_dir.join(SETTINGS_FILE);
    std::fs::write(&path, server_settings(data_dir, port))
        .map_err(|source| io_error("write", &path, source))?;
    if let Some(user) = server_user {
        std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid))
            .map_err(|source| io_error("change the owner of", &path, source))?;
    }
    Ok(())
}

/// Renders the settings file: TCP on 127.0.0.1 only, and the socket in the data directory so that
/// it never collides with a system server's socket in `/var/run/postgresql`.
fn server_settings(data_dir: &Path, port: u16) -> String {
    let socket_path = data_dir.join(format!(".s.PGSQL.{port}"));
    let socket_dirs = if socket_path.as_os_str().len() <= MAX_SOCKET_PATH_BYTES {
        // The value is a list, so the path is double-quoted in case it contains a comma or a space.
        format!("\"{}\"", data_dir.to_string_lossy().replace('"', "\"\""))
    } else {
        // NOTE: a data directory this deep cannot hold a socket, so the server accepts TCP only.
        String::new()
    };
    format!(
        "# Written by duespark on every start of the local cluster; edits are overwritten.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{}'\n",
        socket_dirs.replace('\'', "''")
    )
}

async fn create_database_if_missing(port: u16) -> Result<(), LocalPgError> {
    let failed = |action| move |source| database_error(action, port, source);
    let admin_url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres");
    let mut connection = PgConnection::connect(&admin_url)
        .await
        .map_err(failed("connect"))?;

    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE_NAME)
            .fetch_one(&mut connection)
            .await
            .map_err(failed("look up the duespark database"))?;
    if !exists {
        sqlx::query("CREATE DATABASE duespark")
            .execute(&mut connection)
            .await
            .map_err(failed("create the duespark database"))?;
        tracing::info!(
            port,
            database = DATABASE_NAME,
            "created database in local PostgreSQL"
        );
    }

    connection.close().await.map_err(failed("disconnect"))
}

fn database_error(action: &'static str, port: u16, source: sqlx::Error) -> LocalPgError {
    LocalPgError::Database {
        action,
        port,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::PgPool;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh var directory under the system temp directory. Dropping it stops any server still
    /// running on its cluster (when a test fails halfway) and removes the directory.
    struct TempVarDir {
        path: PathBuf,
    }

    impl TempVarDir {
        fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock is after 1970")
                .as_nanos();
            let name = format!(
                "duespark-local-pg-{}-{nanos}-{sequence}",
                std::process::id()
            );
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir(&path).expect("create temp var dir");
            // The server user must be able to traverse it when the tests run as root.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("chmod temp var dir");
            Self { path }
        }
    }

    impl Drop for TempVarDir {
        fn drop(&mut self) {
            let data_dir = self.path.join("pg").join("data");
            if data_dir.join("postmaster.pid").exists()
                && let Ok(bin_dir) = find_pg_bin_dir()
            {
                let pg_ctl = bin_dir.join("pg_ctl");
                let mut command = if is_root() {
                    let mut command = std::process::Command::new("runuser");
                    command.args(["-u", SERVER_SYSTEM_USER, "--"]).arg(pg_ctl);
                    command
                } else {
                    std::process::Command::new(pg_ctl)
                };
                let _ = command
                    .current_dir("/")
                    .arg("stop")
                    .arg("-D")
                    .arg(&data_dir)
                    .args(["-m", "immediate", "-w"])
                    .output();
            }
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    async fn table_exists(url: &str, table: &str) -> bool {
        let pool = PgPool::connect(url)
            .await
            .expect("connect to local PostgreSQL");
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .expect("look up table");
        pool.close().await;
        exists
    }

    #[tokio::test]
    async fn local_cluster_starts_and_is_reused() {
        let var_dir = TempVarDir::new();
        let var_path = var_dir.path.canonicalize().unwrap();
        let first_port = free_port().unwrap();

        // First start: initdb, start, create the database, connect.
        let first = start_with_default_port(&var_path, first_port)
            .await
            .expect("first start");
        assert_eq!(first.data_dir, var_path.join("pg").join("data"));
        assert_eq!(first.port, first_port);
        assert_eq!(
            first.url,
            format!("postgres://postgres@127.0.0.1:{first_port}/duespark")
        );
        assert_eq!(read_recorded_port(&var_path.join("pg")), Some(first_port));

        let pool = PgPool::connect(&first.url)
            .await
            .expect("connect to duespark database");
        let selected: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(selected, 1);
        sqlx::query("CREATE TABLE reuse_marker (id int)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        // A start while the server runs adopts it instead of starting a second one.
        let adopted = start_with_default_port(&var_path, free_port().unwrap())
            .await
            .expect("start while running");
        assert_eq!(adopted.port, first_port);
        assert_eq!(adopted.data_dir, first.data_dir);

        first.stop().await.expect("first stop");
        assert!(!adopted.data_dir.join("postmaster.pid").exists());

        // Second start: same cluster, data and recorded port. The default port is ignored.
        let second = start_with_default_port(&var_path, free_port().unwrap())
            .await
            .expect("second start");
        assert_eq!(second.data_dir, adopted.data_dir);
        assert_eq!(second.port, first_port);
        assert!(table_exists(&second.url, "reuse_marker").await);
        second.stop().await.expect("second stop");

        // Third start with the recorded port taken: another port, recorded for next time.
        let blocker =
            TcpListener::bind(("127.0.0.1", first_port)).expect("occupy the recorded port");
        let third = start_with_default_port(&var_path, first_port)
            .await
            .expect("third start");
        assert_ne!(third.port, first_port);
        assert_eq!(read_recorded_port(&var_path.join("pg")), Some(third.port));
        assert!(table_exists(&third.url, "reuse_marker").await);
        third.stop().await.expect("third stop");
        drop(blocker);
    }

    #[test]
    fn shared_cluster_dir_is_stable_per_var_dir() {
        let dir = shared_cluster_dir(Path::new("/root/duespark/var"));
        assert_eq!(dir, shared_cluster_dir(Path::new("/root/duespark/var")));
        assert_ne!(dir, shared_cluster_dir(Path::new("/root/other/var")));
        assert!(dir.starts_with(SHARED_CLUSTERS_DIR));
        // FNV-1a test vector: the hash of "a".
        assert_eq!(fnv1a_64(OsStr::new("a")), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn server_settings_quote_socket_dir() {
        let settings = server_settings(Path::new("/tmp/it's, here/data"), 5439);
        assert!(settings.contains("port = 5439\n"));
        assert!(settings.contains("listen_addresses = '127.0.0.1'\n"));
        assert!(settings.contains("unix_socket_directories = '\"/tmp/it''s, here/data\"'\n"));
    }

    #[test]
    fn server_settings_drop_socket_when_path_too_long() {
        let deep = PathBuf::from("/").join("d".repeat(120));
        let settings = server_settings(&deep, 5439);
        assert!(settings.contains("unix_socket_directories = ''\n"));
    }

    #[test]
    fn newest_versioned_dir_compares_numerically() {
        let parent = TempVarDir::new();
        for name in ["9.6", "10", "15", "main"] {
            std::fs::create_dir(parent.path.join(name)).unwrap();
        }
        let newest = newest_versioned_dir(&parent.path, "", "bin");
        assert_eq!(newest, Some(parent.path.join("15").join("bin")));
        assert_eq!(parse_version("main"), None);
    }
}

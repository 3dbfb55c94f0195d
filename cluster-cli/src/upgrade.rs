//! `cluster upgrade`, and the new primary's side of a hot upgrade: once its workers are ready
//! it takes the control socket's path and the pid file, then tells the old primary, which
//! drains and exits (see `cluster_core::upgrade`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use cluster_core::upgrade::Successor;
use cluster_core::{ClusterEvent, ClusterHandle, ShutdownMode};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::client::{Client, ClientError};
use crate::runtime::Liveness;
use crate::target::Target;

/// How long the CLI waits for the answer when no `--timeout` is given: the primary answers
/// by its own deadline (`startTimeout` + 30 s) well before.
const DEFAULT_WAIT: Duration = Duration::from_secs(3600);

/// `cluster upgrade [--binary PATH] [--timeout SECS]`: asks the running primary, waits for the
/// new one to serve and the old one to exit. Exit 1 with the reason when the upgrade fails.
pub(crate) async fn command(
    target: &Target,
    binary: Option<PathBuf>,
    timeout: Option<u64>,
) -> Result<ExitCode, ClientError> {
    let client = Client::of(&target.runtime)?;
    let old = match target.runtime.liveness() {
        Liveness::Running(pid) => pid,
        _ => None,
    };
    let mut body = json!({});
    if let Some(binary) = binary {
        // The primary's working directory may not be ours.
        let cwd = std::env::current_dir().unwrap_or_default();
        body["binary"] = json!(cwd.join(binary));
    }
    if let Some(secs) = timeout {
        body["timeoutMs"] = json!(secs.saturating_mul(1000));
    }
    let who = old.map(|p| format!(" (pid {p})")).unwrap_or_default();
    println!("upgrading the primary{who}: starting the new one...");
    let wait = timeout.map_or(DEFAULT_WAIT, Duration::from_secs) + Duration::from_secs(60);
    let answer = client.post_within(cluster_admin::routes::UPGRADE, &body, wait).await?;
    if !answer.ok() {
        eprintln!("cluster: upgrade failed: {}", answer.message());
        eprintln!("cluster: the primary{who} keeps serving");
        return Ok(ExitCode::FAILURE);
    }
    let done = answer.json();
    let new = done["newPid"].as_u64().unwrap_or(0);
    let old = done["oldPid"].as_u64().unwrap_or(0);
    let secs = done["tookMs"].as_u64().unwrap_or(0) as f64 / 1000.0;
    println!("new primary (pid {new}) serves; its workers were ready in {secs:.1} s");
    println!("old primary (pid {old}) draining...");
    let deadline = tokio::time::Instant::now() + target.stop_wait;
    while alive(old) {
        if tokio::time::Instant::now() > deadline {
            eprintln!(
                "cluster: the old primary (pid {old}) still runs after {} s",
                target.stop_wait.as_secs()
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new primary names itself in the pid file just after its word: wait for it, so that
    // every command from now on reaches it.
    while target.runtime.liveness() != Liveness::Running(Some(new as u32)) {
        if tokio::time::Instant::now() > deadline {
            eprintln!("cluster: the pid file does not name the new primary (pid {new})");
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("upgraded: primary pid {old} -> {new}");
    Ok(ExitCode::SUCCESS)
}

/// Whether process `pid` runs (a zombie waiting for its parent counts as gone).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) => false,
    }
}

/// The admin listener (`admin.listen`): the one the old primary handed over when it is bound
/// to that address (both primaries cannot bind it), else a new one.
///
/// # Errors
///
/// A message for people when the address cannot be bound.
pub(crate) fn admin_listener(
    addr: SocketAddr,
    successor: Option<&Successor>,
) -> Result<std::net::TcpListener, String> {
    if let Some(fd) = successor.and_then(|s| s.take("admin")) {
        let given = std::net::TcpListener::from(fd);
        match given.local_addr() {
            Ok(at) if at == addr || (addr.port() == 0 && at.ip() == addr.ip()) => return Ok(given),
            // `admin.listen` changed since the old primary started: bind the new address.
            _ => drop(given),
        }
    }
    std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on admin.listen {addr}: {e}"))
}

/// Serves the admin API on `listener`. A new primary of a hot upgrade (`wait_for_workers`)
/// starts once its workers are ready, so that a readiness probe never hears it degraded while
/// the old primary serves; an old primary stops accepting once it has handed over (its
/// requests under way finish), so that a probe never hears it stopping while the new one serves.
pub(crate) async fn serve_admin_listener(
    api: cluster_admin::AdminApi,
    listener: tokio::net::TcpListener,
    mut events: tokio::sync::broadcast::Receiver<ClusterEvent>,
    wait_for_workers: Option<ClusterHandle>,
) {
    if let Some(handle) = wait_for_workers {
        if !cluster_core::upgrade::until_workers_ready(&handle).await {
            return;
        }
    }
    let handed_over = async move {
        loop {
            match events.recv().await {
                Ok(ClusterEvent::UpgradeFinished { .. }) | Err(RecvError::Closed) => return,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
            }
        }
    };
    tokio::select! {
        () = api.serve_listener(listener) => {}
        () = handed_over => {}
    }
}

/// Where a new primary binds its control socket until it serves: beside the old one's.
pub(crate) fn staging_socket(socket: &Path) -> PathBuf {
    let mut name = socket.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}", std::process::id()));
    socket.with_file_name(name)
}

/// What a new primary takes over once it serves.
#[derive(Debug)]
pub(crate) struct Takeover {
    /// Its control socket, bound at the staging path.
    pub(crate) staged: PathBuf,
    /// The control socket's path, renamed over.
    pub(crate) socket: PathBuf,
    /// The pid file (the locked open file the old primary handed over), to write our pid in.
    pub(crate) pid_file: std::os::fd::OwnedFd,
}

/// In a new primary: waits until every desired worker is ready, tells the old primary (which
/// drains and exits), then takes the control socket's path (an atomic rename: a client reaches
/// one primary or the other, never none) and the pid file. Stops this primary if the old one
/// no longer listens (it gave up waiting and keeps serving).
pub(crate) async fn take_over(
    handle: ClusterHandle,
    successor: Arc<Successor>,
    takeover: Takeover,
) {
    if !cluster_core::upgrade::until_workers_ready(&handle).await {
        return;
    }
    // The word first: an old primary that gave up waiting can no longer hear it (the write
    // fails), and then nothing of its may be touched.
    if let Err(e) = successor.ready() {
        tracing::error!(
            "hot upgrade: {e} (it gave up waiting); stopping, the old primary keeps serving"
        );
        let _ = handle.shutdown(ShutdownMode::Graceful);
        return;
    }
    let file = std::fs::File::from(takeover.pid_file);
    let taken = std::fs::rename(&takeover.staged, &takeover.socket)
        .map_err(|e| {
            format!("cannot move the control socket to {}: {e}", takeover.socket.display())
        })
        .and_then(|()| crate::runtime::write_pid(&file));
    match taken {
        Ok(()) => tracing::info!(
            "hot upgrade: this primary serves (control socket {}); the old one drains and exits",
            takeover.socket.display()
        ),
        // Serving already: say so, loudly; `cluster stop` reaches us by the staged socket.
        Err(message) => tracing::error!(
            "hot upgrade: {message}; this primary serves, but its control socket stays at {}",
            takeover.staged.display()
        ),
    }
}

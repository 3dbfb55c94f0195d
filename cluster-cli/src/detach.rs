//! `cluster start --detach`: the primary runs in the background, in a session of its own,
//! logging to its log file; this command returns once its workers are ready (or fails with
//! the reason, from the log).

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use cluster_core::config::ClusterSpec;

use crate::client::Client;
use crate::runtime::Liveness;
use crate::target::Target;

/// The environment variable that tells the background primary to leave the terminal's
/// session.
pub(crate) const DETACHED: &str = "CLUSTER_DETACHED";

/// Starts the background primary with the same arguments (minus `--detach`), waits for its
/// workers, and says where it listens.
pub(crate) fn start(spec: &ClusterSpec, target: &Target) -> ExitCode {
    if let Liveness::Running(pid) = target.runtime.liveness() {
        let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        eprintln!(
            "cluster: a cluster is already running{pid} with the runtime directory {}",
            target.runtime.dir.display()
        );
        return ExitCode::FAILURE;
    }
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("cluster: cannot find the path of the cluster binary");
        return ExitCode::FAILURE;
    };
    // `start --log-to FILE <the same arguments>` (a primary given --log-to runs in the
    // foreground whatever else it is given, --detach included).
    let log = &target.log_file;
    let mut args: Vec<std::ffi::OsString> = vec!["start".into(), "--log-to".into(), log.into()];
    args.extend(std::env::args_os().skip(2));
    let opened = log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(log));
    let log_out = match opened {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cluster: cannot write the log file {}: {e}", log.display());
            return ExitCode::FAILURE;
        }
    };
    let log_start = log_out.metadata().map(|m| m.len()).unwrap_or(0);
    // Until the primary reopens it itself, its first words (an early failure) go there too.
    let log_err = match log_out.try_clone() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cluster: cannot write the log file {}: {e}", log.display());
            return ExitCode::FAILURE;
        }
    };
    // As we were started (`argv[0]`, a symlink kept as such), so that a hot upgrade of the
    // background primary finds the program the same way again; else the file we run from.
    let start = |program: &std::ffi::OsStr, out: std::fs::File, err: std::fs::File| {
        Command::new(program)
            .args(&args)
            .env(DETACHED, "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
    };
    let clones = log_out.try_clone().and_then(|out| Ok((out, log_err.try_clone()?)));
    let as_started = match (std::env::args_os().next(), clones) {
        (Some(argv0), Ok((out, err))) => start(&argv0, out, err).ok(),
        _ => None,
    };
    let mut child = match as_started.map_or_else(|| start(exe.as_os_str(), log_out, log_err), Ok) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cluster: cannot start the background primary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limit = spec.start_timeout + Duration::from_secs(30);
    let deadline = std::time::Instant::now() + limit;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let Ok(runtime) = runtime else { return ExitCode::FAILURE };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "cluster: the background primary exited ({status}) before its workers were ready:"
            );
            eprint!("{}", log_since(log, log_start));
            return ExitCode::FAILURE;
        }
        if let Some(status) = runtime.block_on(ready(target)) {
            let listen = status["listen"].as_str().unwrap_or("?");
            println!(
                "cluster started in the background (pid {}): {} workers ready on http://{listen}",
                child.id(),
                status["readyWorkers"]
            );
            println!("log: {}; stop it with `cluster stop`", log.display());
            return ExitCode::SUCCESS;
        }
        if std::time::Instant::now() > deadline {
            eprintln!(
                "cluster: the workers were not ready within {} s; it keeps trying (see `cluster logs`, `cluster stop`)",
                limit.as_secs()
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status once every desired worker is in rotation.
async fn ready(target: &Target) -> Option<serde_json::Value> {
    // Only once the new primary holds its lock: a stale pid file is its to clean up.
    if !matches!(target.runtime.liveness(), Liveness::Running(_)) {
        return None;
    }
    let client = Client::of(&target.runtime).ok()?;
    let status = client.get(cluster_admin::routes::STATUS).await.ok()?.json();
    let (ready, desired) = (status["readyWorkers"].as_u64()?, status["desiredWorkers"].as_u64()?);
    (ready >= desired && desired > 0).then_some(status)
}

/// What the log file got since it was `from` bytes long (at most its last 64 KiB).
fn log_since(path: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(64 * 1024));
    let mut text = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_ok() {
        let _ = file.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// In the background primary: leaves the terminal's session, so that closing the terminal
/// (SIGHUP) or Ctrl-C in it never reaches the cluster.
pub(crate) fn leave_session() {
    if std::env::var_os(DETACHED).is_some() {
        let _ = rustix::process::setsid();
    }
}

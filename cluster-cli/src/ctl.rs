//! The commands that operate a running cluster over its control socket: `status`,
//! `health`, `scale`, `reload`, `restart`, `stop`, `force-stop`, `clean`. Each prints for
//! people and exits 0 when it did what it says, 1 otherwise (2 for a usage error).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{Answer, Client, ClientError, Events};
use crate::runtime::Liveness;
use crate::table;
use crate::target::Target;

/// Runs `f` on a fresh runtime and turns its result into an exit code, printing errors.
pub(crate) fn run<F>(f: impl FnOnce() -> F) -> ExitCode
where
    F: std::future::Future<Output = Result<ExitCode, ClientError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cluster status [--json]`.
pub(crate) async fn status(target: &Target, as_json: bool) -> Result<ExitCode, ClientError> {
    let answer = Client::of(&target.runtime)?.get(cluster_admin::routes::STATUS).await?;
    if !answer.ok() {
        return failed(&answer);
    }
    if as_json {
        println!("{}", String::from_utf8_lossy(&answer.body));
    } else {
        let status = answer.json();
        print!("{}", table::render(&status));
        println!("{}", table::summary(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cluster health`: 0 when healthy, 1 when degraded.
pub(crate) async fn health(target: &Target) -> Result<ExitCode, ClientError> {
    let answer = Client::of(&target.runtime)?.get(cluster_admin::routes::HEALTH).await?;
    let body = answer.json();
    let (ready, desired) = (&body["readyWorkers"], &body["desiredWorkers"]);
    match answer.status {
        200 => {
            println!("healthy: {ready} of {desired} workers ready");
            Ok(ExitCode::SUCCESS)
        }
        503 if body.get("reason").is_some() => {
            println!(
                "{}: {}",
                body["status"].as_str().unwrap_or("degraded"),
                body["reason"].as_str().unwrap_or("?")
            );
            Ok(ExitCode::FAILURE)
        }
        _ => failed(&answer),
    }
}

/// `cluster scale up|down|N`.
pub(crate) async fn scale(target: &Target, to: &str) -> Result<ExitCode, ClientError> {
    let body = match to {
        "up" | "+1" => json!({ "by": 1 }),
        "down" | "-1" => json!({ "by": -1 }),
        n => match n.parse::<u64>() {
            Ok(n) => json!({ "workers": n }),
            Err(_) => {
                eprintln!("cluster: scale takes `up`, `down` or a number of workers, not {n:?}");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let answer = Client::of(&target.runtime)?.post(cluster_admin::routes::SCALE, &body).await?;
    if !answer.ok() {
        return failed(&answer);
    }
    let body = answer.json();
    println!("scaled from {} to {} workers", body["from"], body["to"]);
    Ok(ExitCode::SUCCESS)
}

/// `cluster reload` (`mode` "rolling") and `cluster restart` (`mode` "all"): starts the
/// operation, prints its progress from the events stream, and waits for its end.
pub(crate) async fn replace(target: &Target, mode: &str) -> Result<ExitCode, ClientError> {
    let client = Client::of(&target.runtime)?;
    let answer = client.post(cluster_admin::routes::RESTART, &json!({ "mode": mode })).await?;
    if !answer.ok() {
        return failed(&answer);
    }
    let started = answer.json();
    let id = started["operation"].as_u64().unwrap_or(0);
    let kind = started["kind"].as_str().unwrap_or("operation").replace('-', " ");
    println!("{kind} #{id} started: {} workers to replace", started["workers"]);
    // Resume right after the event the operation started from: nothing is missed.
    let since = started["lastEventId"].as_u64().unwrap_or(0).to_string();
    let resp = client
        .send("GET", cluster_admin::routes::EVENTS, None, &[("last-event-id", since)])
        .await?;
    let mut events = Events::new(resp.into_body());
    while let Some(event) = events.next().await {
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        if data["operation"].as_u64() != Some(id) {
            continue;
        }
        match event.name.as_str() {
            "operationProgress" => {
                let old =
                    data["oldPid"].as_u64().map(|p| format!("pid {p} -> ")).unwrap_or_default();
                println!(
                    "  {} of {}: worker {} {old}pid {}",
                    data["done"], data["total"], data["slot"], data["newPid"]
                );
            }
            "operationFinished" => {
                let secs = data["tookMs"].as_u64().unwrap_or(0) as f64 / 1000.0;
                println!("{kind} #{id} done: {} workers replaced in {secs:.1} s", data["replaced"]);
                return Ok(ExitCode::SUCCESS);
            }
            "operationFailed" => {
                println!("{kind} #{id} failed: {}", data["reason"].as_str().unwrap_or("?"));
                let rolled = data["rolledBack"].as_u64().unwrap_or(0);
                if rolled > 0 {
                    println!("  rolling back {rolled} replaced workers to the previous generation");
                }
                return Ok(ExitCode::FAILURE);
            }
            _ => {}
        }
    }
    eprintln!("cluster: the events stream ended before {kind} #{id} did (the cluster stopped?)");
    Ok(ExitCode::FAILURE)
}

/// `cluster stop` (graceful) and `cluster force-stop` (immediate): asks, then waits until
/// the primary has gone.
pub(crate) async fn stop(target: &Target, immediate: bool) -> Result<ExitCode, ClientError> {
    let pid = match target.runtime.liveness() {
        Liveness::Running(pid) => pid,
        _ => None,
    };
    let mode = if immediate { "immediate" } else { "graceful" };
    let asked = match Client::of(&target.runtime) {
        Ok(client) => client.post(cluster_admin::routes::SHUTDOWN, &json!({ "mode": mode })).await,
        Err(e) => Err(e),
    };
    match asked {
        Ok(answer) if answer.ok() => {}
        Ok(answer) => return failed(&answer),
        Err(e) => match pid {
            // The primary holds its lock but does not answer: a force-stop does not need it to.
            Some(pid) if immediate => {
                eprintln!("cluster: the primary does not answer ({e}); sending it SIGQUIT");
                signal(pid, rustix::process::Signal::QUIT);
            }
            _ => return Err(e),
        },
    }
    println!("stopping{}...", pid.map(|p| format!(" (pid {p})")).unwrap_or_default());
    let deadline = tokio::time::Instant::now() + target.stop_wait;
    // Gone when its lock is released and its socket refuses (a socket given with --socket
    // may have no pid file beside it).
    let socket = target.runtime.socket.clone();
    while matches!(target.runtime.liveness(), Liveness::Running(_))
        || std::os::unix::net::UnixStream::connect(&socket).is_ok()
    {
        if tokio::time::Instant::now() > deadline {
            eprintln!("cluster: still running after {} s", target.stop_wait.as_secs());
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `cluster clean`: stop a running cluster, then remove its pid file, socket and log file.
pub(crate) async fn clean(target: &Target) -> Result<ExitCode, ClientError> {
    if matches!(target.runtime.liveness(), Liveness::Running(_)) {
        let code = stop(target, false).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    let rt = &target.runtime;
    let mut removed = Vec::new();
    for path in [&rt.pid_file, &rt.socket, &target.log_file] {
        if std::fs::remove_file(path).is_ok() {
            removed.push(path.display().to_string());
        }
    }
    // Rotated logs (cluster.log.1, ...) stay: they are logrotate's.
    let _ = std::fs::remove_dir(&rt.dir);
    if removed.is_empty() {
        println!("nothing to clean in {}", rt.dir.display());
    } else {
        println!("removed {}", removed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a refused request's message and fails.
fn failed(answer: &Answer) -> Result<ExitCode, ClientError> {
    eprintln!("cluster: {} ({})", answer.message(), answer.status);
    Ok(ExitCode::FAILURE)
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

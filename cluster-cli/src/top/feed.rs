//! What `cluster top` shows, fetched off the drawing thread: the status every second and the
//! lifecycle events as they come, sent to the screen loop as [`Update`]s over a channel.
//!
//! The feed runs a current-thread tokio runtime on a thread of its own, so a slow or hung
//! primary delays the figures, never the keys: the screen loop only ever `try_recv`s.

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use serde_json::Value;

use crate::client::{Client, ClientError, Events};
use crate::runtime::{Liveness, RuntimeDir};

/// How often the status is fetched.
const INTERVAL: Duration = Duration::from_secs(1);

/// Longest one status request may take before the screen says the cluster does not answer
/// (the client's own limit, 30 s, is for commands that wait).
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// What the feed learnt.
#[derive(Debug)]
pub(super) enum Update {
    /// A fresh status (the JSON of `GET` [`cluster_admin::routes::STATUS`]).
    Status(Value),
    /// The status request failed, but the primary still holds its pid file: it is busy or
    /// hung, and the figures on screen are getting old.
    Trouble(String),
    /// A lifecycle event: its name and JSON payload. `live` is false for the events the
    /// primary kept from before `top` started (replayed, so the time they came is unknown).
    Event { name: String, data: Value, live: bool },
    /// The events stream is not available (an older primary, or the route refused): the
    /// screen says so instead of an empty list.
    NoEvents(String),
    /// No cluster runs any more: "the cluster stopped", and how, for people. The feed stops
    /// after it.
    Gone(String),
    /// `top` was asked to end by a signal (SIGTERM, SIGINT, SIGHUP): the screen loop restores
    /// the terminal and exits as for `q`.
    Terminated,
}

/// Starts the feed for the cluster of `rt`. It ends by itself once the receiver is dropped
/// (at its next send) or after [`Update::Gone`].
///
/// # Errors
///
/// The thread or its runtime could not be started.
pub(super) fn start(rt: RuntimeDir) -> std::io::Result<Receiver<Update>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new().name("top-feed".into()).spawn(move || {
        runtime.block_on(async move {
            if let Some(watch) = signals(tx.clone()) {
                tokio::spawn(watch);
            }
            tokio::spawn(follow_events(rt.clone(), tx.clone()));
            poll_status(rt, tx).await;
        });
    })?;
    Ok(rx)
}

/// Fetches the status every [`INTERVAL`] until the cluster is gone or nobody listens.
async fn poll_status(rt: RuntimeDir, tx: Sender<Update>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let update = fetch(&rt).await;
        let gone = matches!(update, Update::Gone(_));
        if tx.send(update).is_err() || gone {
            return;
        }
    }
}

async fn fetch(rt: &RuntimeDir) -> Update {
    let before = rt.liveness();
    let Ok(client) = Client::of(rt) else { return Update::Gone(stopped(before)) };
    let failure =
        match tokio::time::timeout(STATUS_TIMEOUT, client.get(cluster_admin::routes::STATUS)).await
        {
            Ok(Ok(answer)) if answer.ok() => return Update::Status(answer.json()),
            Ok(Ok(answer)) => format!("{} ({})", answer.message(), answer.status),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", STATUS_TIMEOUT.as_secs()),
        };
    // A request fails because the primary is gone (the socket refuses) or because it is busy;
    // the pid file lock tells which.
    match rt.liveness() {
        Liveness::Running(_) => Update::Trouble(failure),
        now => {
            rt.clean_stale();
            Update::Gone(stopped(now))
        }
    }
}

/// Why no cluster runs, for people, from what its pid file says.
fn stopped(pid_file: Liveness) -> String {
    match pid_file {
        Liveness::Stale(pid) => {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            format!("the cluster stopped: its primary{pid} ended without removing its pid file")
        }
        _ => "the cluster stopped".into(),
    }
}

/// Follows the events stream: first the events the primary kept (the last few are what the
/// screen shows), then live ones. The stream ends when the cluster stops (the status poll
/// reports that) or when this client falls behind; it is then reopened, live only.
async fn follow_events(rt: RuntimeDir, tx: Sender<Update>) {
    let mut replay = true;
    loop {
        if let Ok(client) = Client::of(&rt) {
            // `Last-Event-ID: 0` asks for every kept event before the live ones.
            let headers: Vec<(&str, String)> =
                if replay { vec![("last-event-id", "0".into())] } else { Vec::new() };
            match client.send("GET", cluster_admin::routes::EVENTS, None, &headers).await {
                Ok(resp) if resp.status().is_success() => {
                    let mut events = Events::new(resp.into_body());
                    // The stream sends a status snapshot right after the replayed events.
                    let mut live = !replay;
                    while let Some(event) = events.next().await {
                        if event.name == "status" {
                            live = true;
                            continue;
                        }
                        let data = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                        if tx.send(Update::Event { name: event.name, data, live }).is_err() {
                            return;
                        }
                    }
                    replay = false;
                }
                Ok(resp) => {
                    let why = format!("the events stream answered {}", resp.status());
                    let _ = tx.send(Update::NoEvents(why));
                    return;
                }
                Err(ClientError::NotRunning(_)) => {}
                Err(e) => {
                    let _ = tx.send(Update::NoEvents(e.to_string()));
                    return;
                }
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Watches the signals that would end `top`; the returned future sends
/// [`Update::Terminated`] when one comes, so that the screen loop restores the terminal first
/// (in raw mode Ctrl-C is a key, not a SIGINT, but `kill` still sends one). Called before the
/// screen changes, so no signal falls between; `None` (and the default actions) when they
/// cannot be watched.
fn signals(tx: Sender<Update>) -> Option<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok()?;
    let mut int = signal(SignalKind::interrupt()).ok()?;
    let mut hup = signal(SignalKind::hangup()).ok()?;
    Some(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        let _ = tx.send(Update::Terminated);
    })
}

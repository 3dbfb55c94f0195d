//! The routes that read health and operate the cluster: each validates its input, calls one
//! [`ClusterHandle`] method and maps the typed result to a status code.

use cluster_core::{ClusterHandle, ControlError, FrontBody, ShutdownMode};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::api::{error, gone, json};
use crate::hub::Hub;
use crate::routes::Route;

/// `GET /health`: 200 while at least `min_percent` of the desired workers are in rotation
/// (and at least one), else 503 with the reason.
pub(crate) async fn health(handle: &ClusterHandle, min_percent: f64) -> Response<FrontBody> {
    let Ok(status) = handle.status().await else { return gone() };
    let desired = status.desired_workers;
    let needed = ((desired as f64 * min_percent / 100.0).ceil() as usize).clamp(1, desired.max(1));
    let ready = status.ready_workers;
    let body = |state: &str, reason: Option<String>| {
        json!({
            "status": state,
            "readyWorkers": ready,
            "desiredWorkers": desired,
            "neededWorkers": needed,
            "reason": reason,
        })
    };
    if status.shutting_down && handle.handed_over() {
        // A hot upgrade: the new primary serves (and answers probes once this one stops
        // accepting); this one only drains what it has.
        let reason = "handed over to a new primary; this one drains its connections";
        return json(StatusCode::OK, &body("healthy", Some(reason.into())));
    }
    if status.shutting_down {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &body("stopping", Some("shutting down".into())),
        );
    }
    if ready >= needed {
        return json(StatusCode::OK, &body("healthy", None));
    }
    let mut reason = format!("{ready} of {desired} workers ready; at least {needed} needed");
    if !status.crash_looping_slots.is_empty() {
        reason.push_str(&format!(" (crash-looping slots: {:?})", status.crash_looping_slots));
    }
    json(StatusCode::SERVICE_UNAVAILABLE, &body("degraded", Some(reason)))
}

/// The operating routes.
pub(crate) async fn act(
    handle: &ClusterHandle,
    hub: &Hub,
    route: Route,
    body: Value,
) -> Response<FrontBody> {
    match route {
        Route::Scale => scale(handle, &body).await,
        Route::Restart => restart(handle, hub, &body).await,
        Route::WorkerRestart(id) => match handle.restart_worker(id).await {
            Ok(()) => json(StatusCode::ACCEPTED, &json!({ "workerId": id, "accepted": true })),
            Err(e) => refused(&e),
        },
        Route::Shutdown => shutdown(handle, &body),
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

/// `POST /scale`: `{"workers": N}` (absolute) or `{"by": ±N}` (relative).
async fn scale(handle: &ClusterHandle, body: &Value) -> Response<FrontBody> {
    let Ok(status) = handle.status().await else { return gone() };
    let (min, max) = (status.scaling.min_workers, status.scaling.max_workers);
    let bounds =
        format!("an integer from {min} (scaling.minWorkers) to {max} (scaling.maxWorkers)");
    let expected = format!("expected a JSON object such as {{\"workers\": N}}, with N {bounds}");
    if let Err(message) = only_keys(body, &["workers", "by"], &expected) {
        return error(StatusCode::BAD_REQUEST, message);
    }
    let result = match (body.get("workers"), body.get("by")) {
        (Some(n), None) => match integer(n).and_then(|n| u64::try_from(n).ok()) {
            Some(n) => handle.scale(usize::try_from(n).unwrap_or(usize::MAX)).await,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`workers` must be {bounds}, not {n}"),
                );
            }
        },
        (None, Some(d)) => match integer(d) {
            Some(d) => handle.scale_by(d).await,
            None => {
                return error(StatusCode::BAD_REQUEST, format!("`by` must be an integer, not {d}"));
            }
        },
        (Some(_), Some(_)) => {
            return error(StatusCode::BAD_REQUEST, "give either `workers` or `by`, not both");
        }
        (None, None) => return error(StatusCode::BAD_REQUEST, expected),
    };
    match result {
        Ok(scaled) => json(StatusCode::OK, &json!({ "from": scaled.from, "to": scaled.to })),
        Err(e) => refused(&e),
    }
}

/// An integer, also when written as a number with no fraction (`2.0`, as JSON allows).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

/// Checks that `body` is empty (`null`) or a JSON object with no key but `keys`.
pub(crate) fn only_keys(body: &Value, keys: &[&str], expected: &str) -> Result<(), String> {
    match body {
        Value::Null => Ok(()),
        Value::Object(map) => match map.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(unknown) => {
                let known: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                Err(format!("unknown key `{unknown}`: expected {}", known.join(" or ")))
            }
            None => Ok(()),
        },
        other => Err(format!("{expected}, not {other}")),
    }
}

/// The `mode` of a body that takes one of `modes` (the first is the default).
fn mode<'a>(body: &Value, modes: &[&'a str]) -> Result<&'a str, String> {
    let quoted: Vec<String> = modes.iter().map(|m| format!("{m:?}")).collect();
    let expected = format!("expected {{\"mode\": {}}} or no body", quoted.join(" | "));
    only_keys(body, &["mode"], &expected)?;
    match body.get("mode") {
        None => Ok(modes[0]),
        Some(Value::String(m)) if modes.contains(&m.as_str()) => {
            Ok(modes.iter().find(|x| **x == m).copied().unwrap_or(modes[0]))
        }
        Some(other) => Err(format!("`mode` must be {}, not {other}", quoted.join(" or "))),
    }
}

/// `POST /restart`: a rolling restart (the default), or all at once with `{"mode": "all"}`.
/// 202 with the operation's id and the event id to resume the events stream from.
async fn restart(handle: &ClusterHandle, hub: &Hub, body: &Value) -> Response<FrontBody> {
    let mode = match mode(body, &["rolling", "all"]) {
        Ok(mode) => mode,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    // Every event of the operation comes after this one.
    let since = hub.last_id();
    let started = match mode {
        "all" => handle.restart().await,
        _ => handle.rolling_restart().await,
    };
    match started {
        Ok(op) => json(
            StatusCode::ACCEPTED,
            &json!({
                "operation": op.id(),
                "kind": op.kind(),
                "workers": op.workers(),
                "events": crate::routes::EVENTS,
                "lastEventId": since,
            }),
        ),
        Err(e) => refused(&e),
    }
}

/// `POST /shutdown`: graceful (the default) or `{"mode": "immediate"}`.
fn shutdown(handle: &ClusterHandle, body: &Value) -> Response<FrontBody> {
    let mode = match mode(body, &["graceful", "immediate"]) {
        Ok("immediate") => ShutdownMode::Immediate,
        Ok(_) => ShutdownMode::Graceful,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match handle.shutdown(mode) {
        Ok(()) => json(StatusCode::ACCEPTED, &json!({ "shutdown": mode })),
        Err(_) => gone(),
    }
}

/// The status code of a refused operation.
fn refused(e: &ControlError) -> Response<FrontBody> {
    let status = match e {
        ControlError::OutOfRange { .. } | ControlError::Config { .. } => StatusCode::BAD_REQUEST,
        ControlError::Busy { .. } | ControlError::NotServing { .. } => StatusCode::CONFLICT,
        ControlError::NoSuchWorker { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

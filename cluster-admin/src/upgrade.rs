//! `POST /upgrade`: hot upgrade of the primary through [`ClusterHandle::upgrade`].

use std::time::Duration;

use cluster_core::upgrade::{UpgradeError, UpgradeOptions};
use cluster_core::{ClusterHandle, ControlError, FrontBody};
use http::{Response, StatusCode};
use serde_json::Value;

use crate::access::Entry;
use crate::api::{error, json};
use crate::control::only_keys;

/// Longest `timeoutMs` taken: an hour.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Starts the upgrade and answers once the new primary serves (200 with both pids), or with
/// why it does not (this primary keeps serving). `binary` is only taken on the control
/// socket: it runs a program of the caller's choosing as the primary's user, which a token
/// on a TCP port must not allow.
pub(crate) async fn upgrade(
    handle: &ClusterHandle,
    entry: Entry,
    body: &Value,
) -> Response<FrontBody> {
    let options = match options(body) {
        Ok(options) => options,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if options.binary.is_some() && entry != Entry::Socket {
        return error(
            StatusCode::FORBIDDEN,
            "`binary` is only taken on the control socket (`cluster upgrade --binary`)",
        );
    }
    match handle.upgrade(options).await {
        Ok(done) => json(StatusCode::OK, &done),
        Err(e) => {
            let status = match &e {
                UpgradeError::Refused(ControlError::Busy { .. })
                | UpgradeError::Pid1
                | UpgradeError::NotUpgradable => StatusCode::CONFLICT,
                UpgradeError::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, e.to_string())
        }
    }
}

/// The options of a body: none, or an object with `binary` (a path) and `timeoutMs`.
fn options(body: &Value) -> Result<UpgradeOptions, String> {
    let expected = "expected {\"binary\": PATH, \"timeoutMs\": N} (both optional) or no body";
    only_keys(body, &["binary", "timeoutMs"], expected)?;
    let mut options = UpgradeOptions::default();
    match body.get("binary") {
        None => {}
        Some(Value::String(path)) if !path.is_empty() => options = options.binary(path),
        Some(other) => {
            return Err(format!("`binary` must be the path of a program, not {other}"));
        }
    }
    if let Some(n) = body.get("timeoutMs") {
        match n.as_u64().filter(|&ms| ms > 0) {
            Some(ms) => options = options.timeout(Duration::from_millis(ms).min(MAX_TIMEOUT)),
            None => {
                return Err(format!(
                    "`timeoutMs` must be a positive number of milliseconds, not {n}"
                ));
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_checked() {
        assert_eq!(options(&Value::Null).unwrap(), UpgradeOptions::default());
        let given =
            options(&json!({"binary": "/usr/local/bin/cluster", "timeoutMs": 5000})).unwrap();
        assert_eq!(
            given,
            UpgradeOptions::default()
                .binary("/usr/local/bin/cluster")
                .timeout(Duration::from_secs(5))
        );
        assert!(options(&json!({"binary": 3})).unwrap_err().contains("path of a program"));
        assert!(options(&json!({"timeoutMs": -1})).unwrap_err().contains("positive"));
        assert!(options(&json!({"binry": "x"})).unwrap_err().contains("unknown key `binry`"));
        assert!(options(&json!([1])).unwrap_err().contains("expected"));
    }
}

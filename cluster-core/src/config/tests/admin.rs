//! The `admin` section and the runtime paths: defaults, checks, the loopback rule, where
//! relative paths lead, and the token kept out of every report.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::super::{ClusterSpec, ConfigError, Source, changes};
use super::{Dir, no_flags};

/// A token that passes the checks.
const TOKEN: &str = "s3cret-t0ken-0123456789";

#[test]
fn defaults() {
    let dir = Dir::new();
    let loaded = dir.load(&no_flags(), &[]).unwrap();
    let spec = &loaded.spec;
    let admin = &spec.admin;
    assert_eq!(admin.token, None);
    assert_eq!(admin.listen, None);
    assert!(!admin.public_health);
    assert_eq!(admin.min_healthy_percent, 50.0);
    assert_eq!(admin.events_interval, Duration::from_millis(2_000));
    assert_eq!(admin.socket, None);
    assert_eq!(spec.runtime_dir, dir.path().join(".cluster"));
    assert_eq!(spec.log_file, dir.path().join("logs/cluster.log"));
    assert_eq!(spec.control_socket(), dir.path().join(".cluster/cluster.sock"));

    let json = loaded.effective.to_json();
    let shown = |key: &str| json[key]["value"].clone();
    assert_eq!(shown("admin.token"), serde_json::Value::Null);
    assert_eq!(shown("admin.minHealthyPercent"), serde_json::json!(50));
    assert_eq!(shown("admin.eventsInterval"), serde_json::json!(2_000));
    assert_eq!(shown("runtimeDir"), serde_json::json!(".cluster"), "as configured");
    assert_eq!(shown("logFile"), serde_json::json!("logs/cluster.log"));

    let default = ClusterSpec::default();
    assert_eq!(default.runtime_dir, PathBuf::from("./.cluster"));
    assert_eq!(default.control_socket(), PathBuf::from("./.cluster/cluster.sock"));
}

#[test]
fn values_are_read() {
    let dir = Dir::new();
    dir.config(&format!(
        r#"{{"admin": {{"token": "{TOKEN}", "listen": "0.0.0.0:9090", "publicHealth": true,
            "minHealthyPercent": 100, "eventsInterval": 100, "socket": "/run/cluster/ctl.sock"}},
          "runtimeDir": "/var/run/cluster", "logFile": "/var/log/cluster.log"}}"#
    ));
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    let admin = &spec.admin;
    assert_eq!(admin.token.as_deref(), Some(TOKEN));
    assert_eq!(admin.listen, Some("0.0.0.0:9090".parse().unwrap()));
    assert!(admin.public_health);
    assert_eq!(admin.min_healthy_percent, 100.0);
    assert_eq!(admin.events_interval, Duration::from_millis(100));
    assert_eq!(admin.socket.as_deref(), Some("/run/cluster/ctl.sock".as_ref()));
    assert_eq!(spec.control_socket(), PathBuf::from("/run/cluster/ctl.sock"));
    assert_eq!(spec.runtime_dir, PathBuf::from("/var/run/cluster"), "absolute paths are kept");
    assert_eq!(spec.log_file, PathBuf::from("/var/log/cluster.log"));
}

#[test]
fn listen_forms() {
    let dir = Dir::new();
    let cases = [
        ("127.0.0.1:9090", "127.0.0.1:9090"),
        ("localhost:9090", "127.0.0.1:9090"),
        ("LOCALHOST:0", "127.0.0.1:0"),
        ("[::1]:9090", "[::1]:9090"),
        (" 127.0.0.2:80 ", "127.0.0.2:80"),
    ];
    for (text, expected) in cases {
        dir.config(&format!(r#"{{"admin": {{"listen": "{text}"}}}}"#));
        let listen = dir.load(&no_flags(), &[]).unwrap().spec.admin.listen;
        assert_eq!(listen, Some(expected.parse::<SocketAddr>().unwrap()), "{text}");
    }
    let source = dir.file_source();
    for bad in ["127.0.0.1", "9090", "localhost", "localhost:http", "example.com:80", ":9090"] {
        dir.config(&format!(r#"{{"admin": {{"listen": "{bad}"}}}}"#));
        assert_eq!(
            dir.error(&no_flags(), &[]),
            format!(
                r#"invalid value for `admin.listen` from {source}: "{bad}" (expected an address such as "127.0.0.1:9090")"#
            ),
        );
    }
}

#[test]
fn a_non_loopback_listener_needs_a_token() {
    let dir = Dir::new();
    // Loopback without a token: only this machine can reach it.
    for loopback in ["127.0.0.1:9090", "localhost:9090", "[::1]:9090", "[::ffff:127.0.0.1]:1"] {
        dir.config(&format!(r#"{{"admin": {{"listen": "{loopback}"}}}}"#));
        assert!(dir.load(&no_flags(), &[]).is_ok(), "{loopback}");
    }
    // Any other address without a token is refused.
    let source = dir.file_source();
    for open in ["0.0.0.0:9090", "[::]:9090", "10.0.0.5:9090"] {
        dir.config(&format!(r#"{{"admin": {{"listen": "{open}"}}}}"#));
        assert_eq!(
            dir.error(&no_flags(), &[]),
            format!(
                "invalid value for `admin.listen` from {source}: \"{open}\" (is not a loopback \
                 address: set admin.token or CLUSTER_ADMIN_TOKEN to serve the admin API on it)"
            ),
        );
    }
    // With a token, from the file or from the environment, it is served.
    dir.config(&format!(r#"{{"admin": {{"listen": "0.0.0.0:9090", "token": "{TOKEN}"}}}}"#));
    assert!(dir.load(&no_flags(), &[]).is_ok());
    dir.config(r#"{"admin": {"listen": "0.0.0.0:9090"}}"#);
    let spec = dir.load(&no_flags(), &[("CLUSTER_ADMIN_TOKEN", TOKEN)]).unwrap().spec;
    assert_eq!(spec.admin.listen, Some("0.0.0.0:9090".parse().unwrap()));
    // A token that is set but bad is reported alone, not as missing too.
    dir.config(r#"{"admin": {"listen": "0.0.0.0:9090", "token": "short"}}"#);
    let error = dir.error(&no_flags(), &[]);
    assert!(error.contains("`admin.token`"), "{error}");
}

#[test]
fn token_from_the_environment() {
    let dir = Dir::new();
    dir.config(r#"{"admin": {"token": "file-token-0123456789"}}"#);
    let loaded = dir.load(&no_flags(), &[("CLUSTER_ADMIN_TOKEN", TOKEN)]).unwrap();
    assert_eq!(loaded.spec.admin.token.as_deref(), Some(TOKEN), "the environment wins");
    let entry = loaded.effective.get("admin.token").unwrap();
    assert_eq!(entry.source, Source::Env("CLUSTER_ADMIN_TOKEN".into()));

    // Empty counts as unset, like every other variable.
    let loaded = dir.load(&no_flags(), &[("CLUSTER_ADMIN_TOKEN", "")]).unwrap();
    assert_eq!(loaded.spec.admin.token.as_deref(), Some("file-token-0123456789"));
    assert_eq!(loaded.effective.get("admin.token").unwrap().source.to_string(), dir.file_source());

    // Taken as text: a token of digits stays a string.
    let digits = "12345678901234567890";
    let spec = Dir::new().load(&no_flags(), &[("CLUSTER_ADMIN_TOKEN", digits)]).unwrap().spec;
    assert_eq!(spec.admin.token.as_deref(), Some(digits));
}

#[test]
fn token_checks_never_show_the_token() {
    let dir = Dir::new();
    let source = dir.file_source();
    let cases = [
        ("", "must be at least 16 characters"),
        ("fifteen-chars-x", "must be at least 16 characters"),
        ("sixteen chars ok", "must not contain whitespace or control characters"),
        ("0123456789abcdef\\n", "must not contain whitespace or control characters"),
        ("0123456789abcdef\\u0007", "must not contain whitespace or control characters"),
    ];
    for (token, reason) in cases {
        dir.config(&format!(r#"{{"admin": {{"token": "{token}"}}}}"#));
        assert_eq!(
            dir.error(&no_flags(), &[]),
            format!(r#"invalid value for `admin.token` from {source}: "***" ({reason})"#),
            "{token}"
        );
    }
    // Characters, not bytes: 16 non-ASCII characters are enough.
    dir.config(r#"{"admin": {"token": "ééééééééééééééé€"}}"#);
    assert!(dir.load(&no_flags(), &[]).is_ok());

    let error = Dir::new().error(&no_flags(), &[("CLUSTER_ADMIN_TOKEN", "hunter2")]);
    assert_eq!(
        error,
        "invalid value for `admin.token` from environment variable CLUSTER_ADMIN_TOKEN: \"***\" \
         (must be at least 16 characters)"
    );
    // A value of the wrong type is masked too.
    dir.config(r#"{"admin": {"token": 12345678901234567890}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(r#"invalid value for `admin.token` from {source}: "***" (expected a string)"#)
    );
}

#[test]
fn ranges() {
    let dir = Dir::new();
    let cases = [
        (r#"{"admin": {"minHealthyPercent": 0}}"#, ": 0 (must be greater than 0 and at most 100)"),
        (
            r#"{"admin": {"minHealthyPercent": 100.5}}"#,
            ": 100.5 (must be greater than 0 and at most 100)",
        ),
        (r#"{"admin": {"eventsInterval": 99}}"#, ": 99 (must be at least 100)"),
        (r#"{"admin": {"eventsInterval": 3600001}}"#, ": 3600001 (must be at most 3600000)"),
        (r#"{"admin": {"publicHealth": "yes"}}"#, r#": "yes" (expected a boolean)"#),
        (r#"{"admin": {"listen": 9090}}"#, ": 9090 (expected a string)"),
        (r#"{"admin": {"socket": ""}}"#, r#": "" (must not be empty)"#),
        (r#"{"runtimeDir": ""}"#, r#": "" (must not be empty)"#),
        (r#"{"logFile": " "}"#, r#": " " (must not be empty)"#),
        (r#"{"logFile": "a\u0000b"}"#, r#": "a\u0000b" (must not contain a NUL character)"#),
    ];
    for (json, tail) in cases {
        dir.config(json);
        let error = dir.error(&no_flags(), &[]);
        assert!(error.ends_with(tail), "{json}: {error}");
        assert!(error.contains(&dir.file_source()), "{json}: {error}");
    }
    dir.config(r#"{"admin": {"minHealthyPercent": 0.5, "eventsInterval": 3600000}}"#);
    let admin = dir.load(&no_flags(), &[]).unwrap().spec.admin;
    assert_eq!(admin.min_healthy_percent, 0.5);
    assert_eq!(admin.events_interval, Duration::from_secs(3_600));
}

#[test]
fn relative_paths_resolve_against_the_base() {
    let dir = Dir::new();
    dir.config(
        r#"{"runtimeDir": "run/cluster", "logFile": "var/cluster.log",
            "admin": {"socket": "ctl.sock"}}"#,
    );
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.runtime_dir, dir.path().join("run/cluster"));
    assert_eq!(spec.log_file, dir.path().join("var/cluster.log"), "not inside runtimeDir");
    // Not inside runtimeDir either: against the same base as `cwd`.
    assert_eq!(spec.admin.socket, Some(dir.path().join("ctl.sock")));
    assert_eq!(spec.control_socket(), dir.path().join("ctl.sock"));

    // From the environment, and the default socket follows runtimeDir.
    dir.config("{}");
    let loaded = dir.load(&no_flags(), &[("CLUSTER_RUNTIME_DIR", "state")]).unwrap();
    assert_eq!(loaded.spec.runtime_dir, dir.path().join("state"));
    assert_eq!(loaded.spec.control_socket(), dir.path().join("state/cluster.sock"));
    let entry = loaded.effective.get("runtimeDir").unwrap();
    assert_eq!(entry.source, Source::Env("CLUSTER_RUNTIME_DIR".into()));
    assert_eq!(entry.value, serde_json::json!("state"));
    let spec = dir.load(&no_flags(), &[("CLUSTER_RUNTIME_DIR", "")]).unwrap().spec;
    assert_eq!(spec.runtime_dir, dir.path().join(".cluster"), "empty counts as unset");
}

#[test]
fn runtime_paths_must_be_usable() {
    let dir = Dir::new();
    let file = dir.write("taken", "");
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    dir.config(r#"{"runtimeDir": "taken", "logFile": "logs"}"#);
    let errors = dir.errors(&no_flags(), &[]);
    let source = dir.file_source();
    assert_eq!(
        errors,
        [
            format!(
                r#"invalid value for `runtimeDir` from {source}: "taken" ({} is not a directory)"#,
                file.display()
            ),
            format!(
                r#"invalid value for `logFile` from {source}: "logs" ({} is a directory)"#,
                dir.path().join("logs").display()
            ),
        ]
    );

    // The control socket's path must fit a Unix socket address.
    let long = format!("/tmp/{}", "d".repeat(100));
    dir.config(&format!(r#"{{"runtimeDir": "{long}"}}"#));
    let error = dir.error(&no_flags(), &[]);
    assert!(error.starts_with("invalid value for `runtimeDir`"), "{error}");
    assert!(error.contains("is too long for a Unix socket path"), "{error}");
    assert!(error.ends_with("set admin.socket to a shorter path)"), "{error}");
    dir.config(&format!(r#"{{"runtimeDir": "{long}", "admin": {{"socket": "/tmp/c.sock"}}}}"#));
    assert!(dir.load(&no_flags(), &[]).is_ok(), "a short socket elsewhere is enough");
    dir.config(&format!(r#"{{"admin": {{"socket": "{long}/cluster.sock"}}}}"#));
    let error = dir.error(&no_flags(), &[]);
    assert!(error.starts_with("invalid value for `admin.socket`"), "{error}");
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let dir = Dir::new();
    let source = dir.file_source();
    dir.config(r#"{"admin": {"tokn": "x"}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!("unknown key `admin.tokn` in {source}; did you mean `admin.token`?")
    );
    dir.config(r#"{"runtimedir": "x"}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!("unknown key `runtimedir` in {source}; did you mean `runtimeDir`?")
    );
    dir.config(r#"{"admin": {"public_health": true}}"#);
    match dir.load(&no_flags(), &[]).unwrap_err() {
        ConfigError::UnknownKey { key, suggestion, .. } => {
            assert_eq!(key, "admin.public_health");
            assert_eq!(suggestion.as_deref(), Some("admin.publicHealth"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_effective_report_masks_the_token() {
    let dir = Dir::new();
    dir.config(&format!(r#"{{"admin": {{"token": "{TOKEN}"}}}}"#));
    let loaded = dir.load(&no_flags(), &[]).unwrap();
    let effective = &loaded.effective;
    let entry = effective.get("admin.token").unwrap();
    assert_eq!(entry.value, serde_json::json!("***"));
    assert_eq!(entry.source.to_string(), dir.file_source(), "the source is kept");
    assert_eq!(
        effective.to_json()["admin.token"],
        serde_json::json!({"value": "***", "source": dir.file_source()})
    );
    let table = effective.render();
    let line = table.lines().find(|l| l.starts_with("admin.token ")).unwrap();
    assert!(line.contains(r#""***""#), "{line}");
    for text in [table, effective.to_json().to_string(), format!("{effective:?}")] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    // Nor does the spec's `Debug` show it.
    let debug = format!("{:?}", loaded.spec);
    assert!(!debug.contains(TOKEN) && debug.contains(r#"token: Some("***")"#), "{debug}");
}

#[test]
fn changes_mask_the_token() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.admin.token = Some(TOKEN.into());
    let shown = |old: &ClusterSpec, new: &ClusterSpec| -> Vec<(&str, String, String)> {
        changes(old, new).into_iter().map(|c| (c.key, c.from, c.to)).collect()
    };
    let row = |from: &str, to: &str| vec![("admin.token", from.to_owned(), to.to_owned())];
    assert_eq!(shown(&old, &new), row("unset", "***"));
    let mut other = new.clone();
    other.admin.token = Some("another-t0ken-0123456789".into());
    assert_eq!(shown(&new, &other), row("***", "***"), "a new token is still a change");
    assert_eq!(shown(&other, &old), row("***", "unset"));
    let text = format!("{:?}", changes(&new, &other));
    assert!(!text.contains(TOKEN) && !text.contains("another"), "{text}");
}

#[test]
fn every_admin_key_waits_for_a_restart() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.admin.listen = Some("127.0.0.1:9090".parse().unwrap());
    new.admin.public_health = true;
    new.admin.min_healthy_percent = 75.0;
    new.admin.events_interval = Duration::from_millis(500);
    new.admin.socket = Some("/tmp/c.sock".into());
    new.runtime_dir = "/tmp/run".into();
    new.log_file = "/tmp/cluster.log".into();
    let shown: Vec<(&str, String, String)> =
        changes(&old, &new).into_iter().map(|c| (c.key, c.from, c.to)).collect();
    let row = |k: &'static str, from: &str, to: &str| (k, from.to_owned(), to.to_owned());
    assert_eq!(
        shown,
        [
            row("admin.listen", "unset", "127.0.0.1:9090"),
            row("admin.publicHealth", "false", "true"),
            row("admin.minHealthyPercent", "50", "75"),
            row("admin.eventsInterval", "2000", "500"),
            row("admin.socket", "unset", "/tmp/c.sock"),
            row("runtimeDir", "./.cluster", "/tmp/run"),
            row("logFile", "./logs/cluster.log", "/tmp/cluster.log"),
        ]
    );
    let live = super::super::live_spec(&old, &new);
    assert_eq!(live, old, "none applies before a restart");
}

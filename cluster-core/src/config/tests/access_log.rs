//! The `accessLog` section: defaults, where the file goes, stdout, and bad values.

use super::super::{AccessLogFormat, AccessLogPath, ClusterSpec, changes};
use super::{Dir, no_flags};

#[test]
fn defaults() {
    let dir = Dir::new();
    let loaded = dir.load(&no_flags(), &[]).unwrap();
    let log = &loaded.spec.access_log;
    assert_eq!(log.format, AccessLogFormat::Combined);
    assert_eq!(log.path, AccessLogPath::File(dir.path().join("logs/access.log")));
    assert_eq!(log.queue, 16_384);
    assert!(!loaded.spec.security.enable_request_logging, "off unless asked for");

    let json = loaded.effective.to_json();
    assert_eq!(json["accessLog.format"]["value"], serde_json::json!("combined"));
    assert_eq!(json["accessLog.path"]["value"], serde_json::json!("logs/access.log"));
    assert_eq!(json["accessLog.queue"]["value"], serde_json::json!(16_384));
}

#[test]
fn values_as_written() {
    let dir = Dir::new();
    dir.config(r#"{"accessLog": {"format": "JSON", "path": "var/a.log", "queue": 1}}"#);
    let log = dir.load(&no_flags(), &[]).unwrap().spec.access_log;
    assert_eq!(log.format, AccessLogFormat::Json);
    assert_eq!(log.path, AccessLogPath::File(dir.path().join("var/a.log")));
    assert_eq!(log.queue, 1);
    for stdout in ["stdout", "-", " - "] {
        dir.config(&format!(r#"{{"accessLog": {{"path": "{stdout}"}}}}"#));
        let log = dir.load(&no_flags(), &[]).unwrap().spec.access_log;
        assert_eq!(log.path, AccessLogPath::Stdout, "{stdout:?}");
    }
    dir.config(r#"{"accessLog": {"path": "/var/log/app/access.log", "queue": 1048576}}"#);
    let log = dir.load(&no_flags(), &[]).unwrap().spec.access_log;
    assert_eq!(log.path, AccessLogPath::File("/var/log/app/access.log".into()));
    assert_eq!(log.queue, 1 << 20);
}

#[test]
fn bad_values_name_the_key_and_the_reason() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let cases = [
        (
            r#"{"accessLog": {"format": "combine"}}"#,
            "`accessLog.format`",
            r#": "combine" (expected "combined" or "json"; did you mean "combined"?)"#,
        ),
        (
            r#"{"accessLog": {"format": "xml"}}"#,
            "`accessLog.format`",
            r#": "xml" (expected "combined" or "json")"#,
        ),
        (r#"{"accessLog": {"queue": 0}}"#, "`accessLog.queue`", ": 0 (must be at least 1)"),
        (
            r#"{"accessLog": {"queue": 1048577}}"#,
            "`accessLog.queue`",
            ": 1048577 (must be at most 1048576)",
        ),
        (r#"{"accessLog": {"path": ""}}"#, "`accessLog.path`", r#": "" (must not be empty)"#),
        (
            r#"{"accessLog": {"path": "logs"}}"#,
            "`accessLog.path`",
            &format!(r#": "logs" ({} is a directory)"#, dir.path().join("logs").display()),
        ),
        (r#"{"accessLog": {"queue": true}}"#, "`accessLog.queue`", ": true (expected an integer)"),
    ];
    for (json, key, tail) in cases {
        dir.config(json);
        let error = dir.error(&no_flags(), &[]);
        assert!(error.contains(key), "{json}: {error}");
        assert!(error.ends_with(tail), "{json}: {error}");
    }
    dir.config(r#"{"accessLog": {"fromat": "json"}}"#);
    let error = dir.error(&no_flags(), &[]);
    assert!(error.contains("format"), "suggests the known key: {error}");
}

#[test]
fn changes_apply_at_the_next_start() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.access_log.format = AccessLogFormat::Json;
    new.access_log.path = AccessLogPath::Stdout;
    new.access_log.queue = 8;
    let shown: Vec<_> = changes(&old, &new)
        .into_iter()
        .map(|c| (c.key, c.from, c.to, c.applies))
        .map(|(k, f, t, a)| format!("{k} {f} -> {t} {a:?}"))
        .collect();
    assert_eq!(
        shown,
        [
            "accessLog.format combined -> json Restart",
            "accessLog.path ./logs/access.log -> stdout Restart",
            "accessLog.queue 16384 -> 8 Restart",
        ]
    );
}

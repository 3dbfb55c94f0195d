//! `upstream`: how the proxy reaches the workers.

use super::super::{Applies, Upstream, changes};
use super::{Dir, no_flags};

#[test]
fn tcp_by_default_unix_when_asked() {
    let dir = Dir::new();
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.upstream, Upstream::Tcp);
    dir.config(r#"{"upstream": "unix"}"#);
    let loaded = dir.load(&no_flags(), &[]).unwrap();
    assert_eq!(loaded.spec.upstream, Upstream::Unix);
    let shown = loaded.effective.entries().iter().find(|e| e.key == "upstream").cloned();
    assert_eq!(
        shown.map(|e| e.value),
        Some(serde_json::json!("unix")),
        "`cluster config` shows it"
    );
}

#[test]
fn an_unknown_kind_is_refused_with_a_suggestion() {
    let dir = Dir::new();
    dir.config(r#"{"upstream": "unx"}"#);
    let error = dir.error(&no_flags(), &[]);
    assert!(error.starts_with("invalid value for `upstream`"), "{error}");
    assert!(
        error.ends_with(r#": "unx" (expected one of "tcp", "unix"; did you mean "unix"?)"#),
        "{error}"
    );
}

#[test]
fn a_change_reaches_the_next_generation() {
    let dir = Dir::new();
    let old = dir.load(&no_flags(), &[]).unwrap().spec;
    dir.config(r#"{"upstream": "unix"}"#);
    let new = dir.load(&no_flags(), &[]).unwrap().spec;
    let changed = changes(&old, &new);
    assert_eq!(changed.len(), 1);
    assert_eq!((changed[0].key, changed[0].applies), ("upstream", Applies::NextGeneration));
    assert_eq!((changed[0].from.as_str(), changed[0].to.as_str()), ("tcp", "unix"));
}

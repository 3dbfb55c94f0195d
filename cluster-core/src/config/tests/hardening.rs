//! `user`, `group`, `cpuAffinity` and `limits`: accepted forms and bad values.

use super::super::LimitValue;
use super::{Dir, MIB, no_flags};

#[test]
fn off_by_default() {
    let spec = Dir::new().load(&no_flags(), &[]).unwrap().spec;
    assert!(!spec.hardening.is_active());
}

#[test]
fn limits_forms() {
    let dir = Dir::new();
    dir.config(
        r#"{"cpuAffinity": true, "limits": {"nofile": 256, "core": 0, "memoryMax": "64M"}}"#,
    );
    let h = dir.load(&no_flags(), &[]).unwrap().spec.hardening;
    assert!(h.cpu_affinity);
    assert_eq!(h.nofile, Some(256));
    assert_eq!(h.core, Some(LimitValue::Max(0)));
    assert_eq!(h.memory_max, Some(64 * MIB));
    dir.config(r#"{"limits": {"memoryMax": 128}}"#);
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.hardening.memory_max, Some(128 * MIB));
    // Whether the primary may raise a hard limit is checked at start, not by loading.
    dir.config(r#"{"limits": {"core": "Unlimited"}}"#);
    let h = dir.load(&no_flags(), &[]).unwrap().spec.hardening;
    assert_eq!(h.core, Some(LimitValue::Unlimited));
}

#[test]
fn bad_limits() {
    let dir = Dir::new();
    let source = dir.file_source();
    dir.config(r#"{"limits": {"nofile": 3}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!("invalid value for `limits.nofile` from {source}: 3 (must be at least 64)")
    );
    dir.config(r#"{"limits": {"nofile": 1000000000000}}"#);
    assert!(dir.error(&no_flags(), &[]).contains("(must be at most "));
    dir.config(r#"{"limits": {"core": "lots"}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            r#"invalid value for `limits.core` from {source}: "lots" (expected a size in bytes (0: no core dumps) or "unlimited")"#
        )
    );
    dir.config(r#"{"limits": {"core": -1}}"#);
    assert!(
        dir.error(&no_flags(), &[])
            .ends_with(r#"-1 (must be at least 0 (no core dumps), or "unlimited")"#)
    );
    dir.config(r#"{"limits": {"core": true}}"#);
    assert!(
        dir.error(&no_flags(), &[]).ends_with(r#"true (expected a size in bytes or "unlimited")"#)
    );
    dir.config(r#"{"limits": {"memoryMax": 0}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 0 (must be at least 1 MB)"));
    dir.config(r#"{"limits": {"memoryMax": "12K"}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(r#": "12K" (must be at least 1 MB)"#));
    dir.config(r#"{"limits": {"nofle": 100}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!("unknown key `limits.nofle` in {source}; did you mean `limits.nofile`?")
    );
}

#[test]
fn unknown_accounts() {
    let dir = Dir::new();
    let source = dir.file_source();
    dir.config(r#"{"user": "no-such-user-zz9"}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            r#"invalid value for `user` from {source}: "no-such-user-zz9" (no such user in the user database)"#
        )
    );
    dir.config(r#"{"group": "no-such-group-zz9"}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            r#"invalid value for `group` from {source}: "no-such-group-zz9" (no such group in the group database)"#
        )
    );
    // A user id with no entry has no known primary group.
    dir.config(r#"{"user": 3999999}"#);
    assert!(
        dir.error(&no_flags(), &[])
            .ends_with("3999999 (no such user: a user id with no entry needs `group` too)")
    );
    dir.config(r#"{"user": -5}"#);
    assert!(
        dir.error(&no_flags(), &[])
            .ends_with("-5 (must be a user name or a user id (0 to 4294967295))")
    );
    dir.config(r#"{"user": ["root"]}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(r#"(expected a name or a numeric id)"#));
}

#[test]
fn accounts_resolve_to_ids() {
    // Loading resolves names whoever loads; only starting needs root (`WorkerHardening`).
    let dir = Dir::new();
    dir.config(r#"{"user": "nobody", "group": "nogroup"}"#);
    let h = dir.load(&no_flags(), &[]).unwrap().spec.hardening;
    let user = h.user.expect("user");
    assert_eq!((user.name.as_deref(), user.uid, user.gid), (Some("nobody"), 65534, 65534));
    assert_eq!(h.group.expect("group").gid, 65534);
    // Numeric forms, as `chown` takes them; an id with no entry is taken as it is.
    dir.config(r#"{"user": "65534", "group": 3999999}"#);
    let h = dir.load(&no_flags(), &[]).unwrap().spec.hardening;
    assert_eq!(h.user.unwrap().uid, 65534);
    let group = h.group.expect("group");
    assert_eq!((group.name.as_deref(), group.gid), (None, 3999999));
    // The primary's own account is no change, and allowed to anyone.
    let uid = nix::unistd::geteuid();
    dir.config(&format!(r#"{{"user": {uid}, "group": {}}}"#, nix::unistd::getegid()));
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.hardening.user.unwrap().uid, uid.as_raw());
}

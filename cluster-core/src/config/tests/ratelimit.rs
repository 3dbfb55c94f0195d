//! The rate limit keys of `security`: defaults, the exempt list, the store and its fallback.

use std::time::Duration;

use super::super::{DEFAULT_EXEMPT, RateLimitFallback, RateLimitStore, changes};
use super::{Dir, no_flags};

#[test]
fn defaults() {
    let dir = Dir::new();
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    let s = &spec.security;
    assert!(!s.enable_rate_limit);
    assert_eq!(s.rate_limit_store, RateLimitStore::Local);
    assert_eq!(s.rate_limit_exempt, DEFAULT_EXEMPT);
    assert_eq!(s.rate_limit_redis_timeout, Duration::from_millis(50));
    assert_eq!(s.rate_limit_redis_fallback, RateLimitFallback::Local);
}

#[test]
fn health_check_path_is_exempt_by_default_only() {
    let dir = Dir::new();
    dir.config(r#"{"healthCheckPath": "/healthz"}"#);
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.security.rate_limit_exempt, ["/api/admin/", "/admin/cluster", "/healthz"]);

    dir.config(r#"{"healthCheckPath": "/healthz", "security": {"rateLimitExempt": ["/static/"]}}"#);
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.security.rate_limit_exempt, ["/static/"], "a list replaces the defaults");

    dir.config(r#"{"security": {"rateLimitExempt": []}}"#);
    assert!(dir.load(&no_flags(), &[]).unwrap().spec.security.rate_limit_exempt.is_empty());

    dir.config(r#"{"security": {"rateLimitExempt": ["/ok", "static/"]}}"#);
    assert!(
        dir.error(&no_flags(), &[]).ends_with(r#": "static/" (each prefix must start with "/")"#)
    );
}

#[test]
fn redis_store_needs_redis_url() {
    let dir = Dir::new();
    dir.config(r#"{"security": {"enableRateLimit": true, "rateLimitStore": "redis"}}"#);
    let error = dir.error(&no_flags(), &[]);
    assert!(error.starts_with("invalid value for `security.rateLimitStore`"), "{error}");
    assert!(
        error.ends_with(r#": "redis" ("redis" needs `redisUrl` (e.g. "redis://127.0.0.1:6379"))"#),
        "{error}"
    );

    dir.config(
        r#"{"redisUrl": "redis://127.0.0.1:6399", "security": {"rateLimitStore": "Redis",
            "rateLimitRedisTimeout": 20, "rateLimitRedisFallback": "deny"}}"#,
    );
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.security.rate_limit_store, RateLimitStore::Redis);
    assert_eq!(spec.security.rate_limit_redis_timeout, Duration::from_millis(20));
    assert_eq!(spec.security.rate_limit_redis_fallback, RateLimitFallback::Deny);
}

#[test]
fn bad_names_and_timeouts() {
    let dir = Dir::new();
    dir.config(r#"{"security": {"rateLimitStore": "memcached"}}"#);
    assert!(
        dir.error(&no_flags(), &[])
            .ends_with(r#": "memcached" (expected one of "local", "redis")"#)
    );
    dir.config(r#"{"security": {"rateLimitRedisFallback": "alow"}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(
        r#": "alow" (expected one of "local", "allow", "deny"; did you mean "allow"?)"#
    ));
    dir.config(r#"{"security": {"rateLimitRedisTimeout": 0}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 0 (must be at least 1)"));
    dir.config(r#"{"security": {"rateLimitRedisTimeout": 60000}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 60000 (must be at most 10000)"));
    dir.config(r#"{"security": {"rateLimitMax": 0}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 0 (must be at least 1)"));
}

#[test]
fn changes_need_a_restart() {
    let dir = Dir::new();
    let old = dir.load(&no_flags(), &[]).unwrap().spec;
    dir.config(
        r#"{"redisUrl": "redis://127.0.0.1:6399", "security": {"rateLimitStore": "redis",
            "rateLimitExempt": ["/x"], "rateLimitRedisTimeout": 80,
            "rateLimitRedisFallback": "allow"}}"#,
    );
    let new = dir.load(&no_flags(), &[]).unwrap().spec;
    let changed: Vec<_> = changes(&old, &new)
        .into_iter()
        .filter(|c| c.key.starts_with("security."))
        .map(|c| (c.key, c.applies))
        .collect();
    assert_eq!(changed.len(), 4, "{changed:?}");
    assert!(changed.iter().all(|(_, applies)| *applies == super::super::Applies::Restart));
}

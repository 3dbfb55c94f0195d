//! Values with several accepted forms: workers, sizes, hosts, address blocks.

use std::net::IpAddr;

use super::super::validate::{auto_proxy_threads, cpu_count};
use super::{Dir, MIB, flags, no_flags};

#[test]
fn proxy_threads_forms() {
    let dir = Dir::new();
    for (json, threads) in [
        (r#""auto""#, auto_proxy_threads(cpu_count())),
        (r#"" AUTO ""#, auto_proxy_threads(cpu_count())),
        ("3", 3),
        (r#""2""#, 2),
    ] {
        dir.config(&format!(r#"{{"performance": {{"proxyThreads": {json}}}}}"#));
        let spec = dir.load(&no_flags(), &[]).unwrap().spec;
        assert_eq!(spec.performance.proxy_threads, threads, "{json}");
    }
    dir.config(r#"{"performance": {"proxyThreads": "many"}}"#);
    assert!(
        dir.error(&no_flags(), &[])
            .ends_with(r#": "many" (expected an integer from 1 to 64, or "auto")"#)
    );
    dir.config(r#"{"performance": {"proxyThreads": 0}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 0 (must be at least 1)"));
    dir.config(r#"{"performance": {"proxyThreads": 1.5}}"#);
    assert!(dir.error(&no_flags(), &[]).contains(r#"an integer or "auto""#));
}

#[test]
fn auto_proxy_threads_is_two_on_small_machines_then_a_quarter_of_the_cpus() {
    let picks: Vec<usize> = [1, 2, 3, 4, 7, 8, 12, 16, 64, 128].map(auto_proxy_threads).to_vec();
    assert_eq!(picks, [1, 2, 2, 2, 2, 2, 3, 4, 16, 16]);
}

#[test]
fn memory_sizes() {
    let dir = Dir::new();
    for (json, mb) in [
        ("1024", 1024),
        (r#""1G""#, 1024),
        (r#""1gb""#, 1024),
        (r#""512M""#, 512),
        (r#""256""#, 256),
    ] {
        dir.config(&format!(r#"{{"maxMemoryUsage": {json}}}"#));
        assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.max_memory_bytes, mb * MIB, "{json}");
    }
    let spec = dir.load(&no_flags(), &[("MAX_MEMORY_USAGE", "800K")]).unwrap().spec;
    assert_eq!(spec.max_memory_bytes, 800 * 1024);

    dir.config(r#"{"maxMemoryUsage": "lots"}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(
        r#": "lots" (expected a size in MB, or a number with a unit such as "512M" or "1G")"#
    ));
    dir.config(r#"{"maxMemoryUsage": 0}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 0 (must be greater than 0)"));
}

#[test]
fn workers_forms() {
    let dir = Dir::new();
    dir.config(r#"{"workers": "max"}"#);
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.workers, cpu_count());
    dir.config(r#"{"workers": "4"}"#);
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.workers, 4);
    let spec = dir.load(&no_flags(), &[("CLUSTER_WORKERS", "MAX")]).unwrap().spec;
    assert_eq!(spec.workers, cpu_count());
    let spec = dir.load(&flags(|o| o.workers = Some("3".into())), &[]).unwrap().spec;
    assert_eq!(spec.workers, 3);

    dir.config(r#"{"workers": 1025}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 1025 (must be at most 1024)"));
}

#[test]
fn hosts() {
    let dir = Dir::new();
    for (host, ip) in
        [("localhost", "127.0.0.1"), ("::", "::"), ("[::1]", "::1"), ("10.1.2.3", "10.1.2.3")]
    {
        let spec = dir.load(&flags(|o| o.host = Some(host.into())), &[]).unwrap().spec;
        assert_eq!(spec.host(), ip.parse::<IpAddr>().unwrap(), "{host}");
    }
    assert_eq!(
        dir.error(&no_flags(), &[("HOST", "example.com")]),
        r#"invalid value for `host` from environment variable HOST: "example.com" (expected an IP address or "localhost")"#
    );
}

#[test]
fn trusted_proxies() {
    let dir = Dir::new();
    dir.config(
        r#"{"security": {"trustedProxies": ["10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"]}}"#,
    );
    let nets = dir.load(&no_flags(), &[]).unwrap().spec.security.trusted_proxies;
    let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "192.168.1.7/32", "::1/128", "fd00::/8"]);
}

#[test]
fn other_checks() {
    let dir = Dir::new();
    let cases = [
        (r#"{"healthCheckPath": "healthz"}"#, r#": "healthz" (must start with "/")"#),
        (
            r#"{"redisUrl": "http://cache"}"#,
            r#": "http://cache" (must start with "redis://" or "rediss://")"#,
        ),
        (r#"{"healthCheckInterval": 50}"#, ": 50 (must be at least 100)"),
        (r#"{"gracefulShutdownTimeout": 3600001}"#, ": 3600001 (must be at most 3600000)"),
        (r#"{"scaling": {"cpuThreshold": 0}}"#, ": 0 (must be greater than 0 and at most 100)"),
        (
            r#"{"scaling": {"memoryThreshold": 100.5}}"#,
            ": 100.5 (must be greater than 0 and at most 100)",
        ),
        (r#"{"performance": {"proxyThreads": 65}}"#, ": 65 (must be at most 64)"),
        (r#"{"performance": {"requestTimeout": 0}}"#, ": 0 (must be at least 1)"),
        (r#"{"security": {"rateLimitMax": 0}}"#, ": 0 (must be at least 1)"),
        (r#"{"logLevel": " "}"#, r#": " " (must not be empty)"#),
        (
            r#"{"env": {"A=B": "c"}}"#,
            r#": "A=B" (variable names must not be empty or contain `=`)"#,
        ),
    ];
    for (json, tail) in cases {
        dir.config(json);
        let error = dir.error(&no_flags(), &[]);
        assert!(error.ends_with(tail), "{json}: {error}");
    }
}

#[test]
fn request_limits() {
    let dir = Dir::new();
    dir.config("{}");
    let limits = dir.load(&no_flags(), &[]).unwrap().spec.performance.limits;
    assert_eq!(limits, crate::config::RequestLimits::default());
    assert_eq!((limits.max_body_size, limits.max_connections), (None, None));
    assert_eq!((limits.max_header_size, limits.max_headers), (64 * 1024, 100));

    dir.config(
        r#"{"performance": {"maxBodySize": "10MB", "maxHeaderSize": "16KiB",
            "maxHeaders": 50, "maxConnections": 2}}"#,
    );
    let limits = dir.load(&no_flags(), &[]).unwrap().spec.performance.limits;
    assert_eq!(limits.max_body_size, Some(10 * MIB));
    assert_eq!((limits.max_header_size, limits.max_headers), (16 * 1024, 50));
    assert_eq!(limits.max_connections, Some(2));
    dir.config(r#"{"performance": {"maxBodySize": 1000}}"#);
    let limits = dir.load(&no_flags(), &[]).unwrap().spec.performance.limits;
    assert_eq!(limits.max_body_size, Some(1000));

    dir.config(r#"{"performance": {"maxBodySize": "ten megs"}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "invalid value for `performance.maxBodySize` from {}: \"ten megs\" ({})",
            dir.file_source(),
            super::super::scalar::ByteSize::EXPECTING
        )
    );
    dir.config(r#"{"performance": {"maxBodySize": -1}}"#);
    assert!(dir.error(&no_flags(), &[]).contains("`performance.maxBodySize`"));
    dir.config(r#"{"performance": {"maxHeaderSize": "1KB"}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(r#": "1KB" (must be at least 8192 bytes)"#));
    dir.config(r#"{"performance": {"maxHeaders": 0}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": 0 (must be at least 1)"));
    dir.config(r#"{"performance": {"maxConnections": -3}}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": -3 (must be at least 0)"));
    dir.config(r#"{"performance": {"maxBodySize": true}}"#);
    assert!(dir.error(&no_flags(), &[]).contains("maxBodySize"));
}

#[test]
fn mode_names_the_data_plane() {
    let dir = Dir::new();
    dir.config(r#"{"mode": "shared-socket"}"#);
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.mode, crate::config::Mode::SharedSocket);
    let spec = dir.load(&no_flags(), &[("CLUSTER_MODE", "proxy")]).unwrap().spec;
    assert_eq!(spec.mode, crate::config::Mode::Proxy);

    dir.config(r#"{"mode": "shared-sockets"}"#);
    let err = dir.load(&no_flags(), &[]).unwrap_err().to_string();
    assert!(err.contains("mode"), "{err}");
    assert!(err.contains(r#"expected one of "proxy", "shared-socket""#), "{err}");
    assert!(err.contains(r#"did you mean "shared-socket"?"#), "{err}");
}

//! What changed between two specs, and the spec a running cluster switches to.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cluster_balancer::Strategy;

use super::super::diff::classes;
use super::super::validate::cpu_count;
use super::super::{Applies, ClusterSpec, changes, live_spec};
use super::{Dir, no_flags};

/// Keys that apply to the next generation of workers.
const NEXT_GENERATION: &[&str] = &[
    "command",
    "args",
    "cwd",
    "env",
    "health.nodeIpc",
    "user",
    "group",
    "cpuAffinity",
    "limits.nofile",
    "limits.core",
    "limits.memoryMax",
    "upstream",
];

/// Keys that apply only when the primary restarts.
const RESTART: &[&str] = &[
    "port",
    "host",
    "mode",
    "enableStickySession",
    "redisUrl",
    "logLevel",
    "performance.requestTimeout",
    "performance.keepAliveTimeout",
    "performance.headerReadTimeout",
    "performance.upstreamIdleTimeout",
    "performance.proxyThreads",
    "performance.enableCompression",
    "performance.compressionLevel",
    "performance.maxBodySize",
    "performance.maxHeaderSize",
    "performance.maxHeaders",
    "performance.maxConnections",
    "performance.compressionMinSize",
    "security.enableRateLimit",
    "security.rateLimitWindow",
    "security.rateLimitMax",
    "security.trustedProxies",
    "security.enableRequestLogging",
    "security.rateLimitStore",
    "security.rateLimitExempt",
    "security.rateLimitRedisTimeout",
    "security.rateLimitRedisFallback",
    "admin.token",
    "admin.listen",
    "admin.publicHealth",
    "admin.minHealthyPercent",
    "admin.eventsInterval",
    "admin.socket",
    "accessLog.format",
    "accessLog.path",
    "accessLog.queue",
    "runtimeDir",
    "logFile",
];

/// The keys that changed, with their class.
fn changed(old: &ClusterSpec, new: &ClusterSpec) -> Vec<(&'static str, Applies)> {
    changes(old, new).into_iter().map(|c| (c.key, c.applies)).collect()
}

#[test]
fn no_change() {
    let spec = ClusterSpec::default();
    assert!(changes(&spec, &spec.clone()).is_empty());
    assert_eq!(live_spec(&spec, &spec), spec);
}

#[test]
fn every_key_of_the_file_is_classified_once() {
    let effective = Dir::new().load(&no_flags(), &[]).unwrap().effective;
    let file: BTreeSet<&str> = effective.entries().iter().map(|e| e.key.as_str()).collect();
    let classified: Vec<&str> = classes().into_iter().map(|(key, _)| key).collect();
    assert_eq!(classified.iter().copied().collect::<BTreeSet<_>>(), file);
    assert_eq!(classified.len(), file.len(), "no key twice");
    for (key, applies) in classes() {
        let expected = if NEXT_GENERATION.contains(&key) {
            Applies::NextGeneration
        } else if RESTART.contains(&key) {
            Applies::Restart
        } else {
            Applies::Now
        };
        assert_eq!(applies, expected, "{key}");
    }
}

#[test]
fn each_class() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.workers = old.workers + 1;
    new.graceful_shutdown_timeout = std::time::Duration::from_millis(1500);
    new.health.node_ipc = Some(true);
    new.command.args = vec!["--fast".into()];
    new.listen.set_port(4000);
    new.security.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    let all = changes(&old, &new);
    let shown: Vec<(&str, &str, &str, Applies)> =
        all.iter().map(|c| (c.key, c.from.as_str(), c.to.as_str(), c.applies)).collect();
    let (workers, more) = (old.workers.to_string(), new.workers.to_string());
    assert_eq!(
        shown,
        [
            ("workers", workers.as_str(), more.as_str(), Applies::Now),
            ("port", "3000", "4000", Applies::Restart),
            ("gracefulShutdownTimeout", "15000", "1500", Applies::Now),
            ("security.trustedProxies", "[]", r#"["10.0.0.0/8"]"#, Applies::Restart),
            ("health.nodeIpc", "unset", "true", Applies::NextGeneration),
            ("args", "[]", r#"["--fast"]"#, Applies::NextGeneration),
        ]
    );
}

#[test]
fn values_are_shown_in_the_file_units() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.max_memory_bytes = 800 * 1024;
    new.health.hard_memory_bytes = None;
    new.performance.slow_start_window = Some(std::time::Duration::from_secs(2));
    new.health.leak_min_slope = 0.5;
    new.strategy = Strategy::P2c;
    new.health_check_path = Some("/healthz".into());
    let shown: Vec<(&str, String, String)> =
        changes(&old, &new).into_iter().map(|c| (c.key, c.from, c.to)).collect();
    let row = |k: &'static str, from: &str, to: &str| (k, from.to_owned(), to.to_owned());
    assert_eq!(
        shown,
        [
            row("healthCheckPath", "unset", "/healthz"),
            row("maxMemoryUsage", "512 MB", "800 KB"),
            row("loadBalancingStrategy", "least-connections", "p2c"),
            row("performance.slowStartWindow", "0", "2000"),
            row("health.hardMemoryLimit", "768 MB", "0"),
            row("health.leakMinSlope", "1", "0.5"),
        ]
    );
}

#[test]
fn env_is_one_key() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.command.env.insert("NODE_ENV".into(), "production".into());
    new.command.env.insert("DEBUG".into(), "1".into());
    let all = changes(&old, &new);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!((all[0].key, all[0].applies), ("env", Applies::NextGeneration));
    assert_eq!(all[0].from, "none");
    assert_eq!(all[0].to, "DEBUG (added), NODE_ENV (added)");
}

#[test]
fn no_secret_reaches_a_change() {
    let mut old = ClusterSpec::default();
    old.command.env.insert("TOKEN".into(), "s3cret".into());
    old.command.env.insert("LEGACY".into(), "x".into());
    old.command.env.insert("ORIGIN".into(), "https://a.example".into());
    old.redis_url = Some("redis://user:hunter2@cache:6379/0".into());
    let mut new = old.clone();
    new.command.env.insert("TOKEN".into(), "n3w-s3cret".into());
    new.command.env.remove("LEGACY");
    new.redis_url = Some("redis://:pa:ss@cache2:6379".into());
    let all = changes(&old, &new);
    let env = all.iter().find(|c| c.key == "env").unwrap();
    assert_eq!(env.from, "LEGACY, ORIGIN, TOKEN");
    assert_eq!(env.to, "ORIGIN, TOKEN (changed), -LEGACY");
    let redis = all.iter().find(|c| c.key == "redisUrl").unwrap();
    assert_eq!(redis.from, "redis://user:***@cache:6379/0");
    assert_eq!(redis.to, "redis://:***@cache2:6379");
    let text = format!("{all:?}");
    for secret in ["s3cret", "hunter2", "pa:ss"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn live_spec_keeps_restart_keys() {
    let old = ClusterSpec::default();
    let mut new = old.clone();
    new.listen = "127.0.0.1:4000".parse().unwrap();
    new.security.enable_rate_limit = true;
    new.security.rate_limit_max = 5;
    new.performance.proxy_threads = 4;
    new.log_level = "debug".into();
    new.workers = old.workers + 1;
    new.scaling.max_workers = new.workers;
    new.strategy = Strategy::RoundRobin;
    new.command.program = Some(PathBuf::from("/bin/true"));
    new.health.node_ipc = Some(false);
    new.rolling_restart.max_surge = 2;

    let live = live_spec(&old, &new);
    assert_eq!(live.listen, old.listen);
    assert_eq!(live.security, old.security);
    assert_eq!(live.performance.proxy_threads, old.performance.proxy_threads);
    assert_eq!(live.log_level, "info");
    assert_eq!(live.workers, new.workers);
    assert_eq!(live.scaling, new.scaling);
    assert_eq!(live.strategy, Strategy::RoundRobin);
    assert_eq!(live.command, new.command);
    assert_eq!(live.health, new.health);
    assert_eq!(live.rolling_restart, new.rolling_restart);
    // The live spec takes every change but those that wait for a restart.
    assert!(changed(&old, &live).iter().all(|&(_, applies)| applies != Applies::Restart));
    let waiting: Vec<&str> = changed(&live, &new).into_iter().map(|(key, _)| key).collect();
    assert_eq!(
        waiting,
        [
            "port",
            "host",
            "performance.proxyThreads",
            "security.enableRateLimit",
            "security.rateLimitMax",
            "logLevel",
        ]
    );
}

/// A file that sets every key to a value other than its default.
fn everything_changed(dir: &Dir) -> String {
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let program = dir.executable("server.sh");
    let workers = cpu_count() + 1;
    let max = workers + 1;
    // The primary's own account: allowed whether or not the tests run as root.
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    format!(
        r#"{{"workers": {workers}, "port": 4000, "host": "127.0.0.1",
        "mode": "shared-socket", "gracefulShutdownTimeout": 1000, "healthCheckInterval": 1000, "unresponsiveTimeout": 4000,
        "startTimeout": 5000, "healthCheckPath": "/health", "maxMemoryUsage": 1024,
        "restartOnHighMemory": false, "loadBalancingStrategy": "p2c", "enableStickySession": true,
        "redisUrl": "redis://cache", "command": "{program}", "args": ["a"], "cwd": "app",
        "env": {{"A": "1"}}, "logLevel": "debug",
        "scaling": {{"autoScale": true, "minWorkers": 2, "maxWorkers": {max}, "cpuThreshold": 50,
            "memoryThreshold": 60, "cooldown": 1, "scaleUpAfter": 2, "scaleDownAfter": 3}},
        "performance": {{"maxRequestsPerWorker": 10, "requestTimeout": 5, "keepAliveTimeout": 6,
            "headerReadTimeout": 7, "upstreamIdleTimeout": 8, "slowStartWindow": 9,
            "proxyThreads": 63, "enableCompression": true, "compressionLevel": 9,
            "maxBodySize": "1MB", "maxHeaderSize": "16KB", "maxHeaders": 50,
            "maxConnections": 100, "compressionMinSize": "2KiB"}},
        "security": {{"enableRateLimit": true, "rateLimitWindow": 1000, "rateLimitMax": 5,
            "trustedProxies": ["10.0.0.0/8"], "enableRequestLogging": true,
            "rateLimitStore": "redis", "rateLimitExempt": ["/static/"],
            "rateLimitRedisTimeout": 20, "rateLimitRedisFallback": "deny"}},
        "health": {{"probeTimeout": 100, "probeFailures": 3, "hardMemoryLimit": "2G",
            "memorySamples": 4, "memoryMinAge": 1, "metricsWindow": 200, "outlierDetection": false,
            "outlierErrorRate": 30, "outlierMinRequests": 5, "ejectionTime": 200,
            "maxEjectedPercent": 50, "maxConcurrentRecycles": 2, "heartbeatTimeout": 300,
            "nodeIpc": true, "unresponsiveGrace": 1, "leakDetection": false, "leakWindow": 1000,
            "leakMinSlope": 0.5}},
        "rollingRestart": {{"maxSurge": 2, "minReady": 500}},
        "admin": {{"token": "0123456789abcdef", "listen": "127.0.0.1:9090",
            "publicHealth": true, "minHealthyPercent": 75, "eventsInterval": 500,
            "socket": "ctl.sock"}},
        "accessLog": {{"format": "json", "path": "stdout", "queue": 64}},
        "runtimeDir": "run", "logFile": "cluster.log",
        "user": {uid}, "group": "{gid}", "cpuAffinity": true,
        "limits": {{"nofile": 256, "core": 0, "memoryMax": "64M"}}, "upstream": "unix"}}"#,
        program = program.display()
    )
}

#[test]
fn every_key_is_compared() {
    let dir = Dir::new();
    dir.config(&everything_changed(&dir));
    let new = dir.load(&no_flags(), &[]).unwrap().spec;
    let old = ClusterSpec::default();
    let keys: Vec<&str> = changes(&old, &new).iter().map(|c| c.key).collect();
    let all: Vec<&str> = classes().into_iter().map(|(key, _)| key).collect();
    assert_eq!(keys, all, "every key, in a stable order");

    let live = live_spec(&old, &new);
    let mut restart: Vec<&str> = changed(&live, &new).into_iter().map(|(key, _)| key).collect();
    restart.sort_unstable();
    let mut expected = RESTART.to_vec();
    expected.sort_unstable();
    assert_eq!(restart, expected, "only the keys that wait for a restart are kept");
}

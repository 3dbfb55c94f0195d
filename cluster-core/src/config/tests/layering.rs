//! Layers, precedence, sources and the effective report.

use std::net::SocketAddr;
use std::time::Duration;

use cluster_balancer::Strategy;

use super::super::validate::{auto_proxy_threads, cpu_count};
use super::super::{AccessLogPath, ClusterSpec, Source};
use super::{Dir, SAMPLE, flags, no_flags};

#[test]
fn sample_file_is_accepted_as_written() {
    let dir = Dir::new();
    dir.config(SAMPLE);
    let spec = dir.load(&no_flags(), &[]).expect("sample loads").spec;

    assert_eq!(spec.workers, 4);
    assert_eq!(spec.listen, "0.0.0.0:3000".parse::<SocketAddr>().unwrap());
    assert_eq!(spec.graceful_shutdown_timeout, Duration::from_secs(15));
    assert_eq!(spec.health_check_interval, Duration::from_secs(5));
    assert_eq!(spec.max_memory_bytes, 768 * 1024 * 1024);
    assert!(spec.restart_on_high_memory);
    assert_eq!(spec.strategy, Strategy::LeastConnections);
    assert!(!spec.sticky_sessions);
    assert_eq!(spec.redis_url.as_deref(), Some("redis://localhost:6379"));
    assert!(!spec.scaling.auto_scale);
    assert_eq!((spec.scaling.min_workers, spec.scaling.max_workers), (2, 8));
    assert_eq!((spec.scaling.cpu_threshold, spec.scaling.memory_threshold), (80.0, 85.0));
    assert_eq!(spec.performance.max_requests_per_worker, Some(1000));
    assert_eq!(spec.performance.request_timeout, Duration::from_secs(30));
    assert!(spec.performance.enable_compression);
    assert!(spec.security.enable_rate_limit);
    assert_eq!(spec.security.rate_limit_window, Duration::from_secs(60));
    assert_eq!(spec.security.rate_limit_max, 100);
    // Keys the sample leaves out keep their defaults.
    let defaults = ClusterSpec::default();
    assert_eq!(spec.unresponsive_timeout, defaults.unresponsive_timeout);
    assert_eq!(spec.performance.keep_alive_timeout, Duration::from_secs(65));
    assert_eq!(spec.command, defaults.command);
}

#[test]
fn defaults_alone() {
    let dir = Dir::new();
    let loaded = dir.load(&no_flags(), &[]).expect("defaults load");
    // The runtime paths are resolved against the directory loaded in, the default's against
    // the current directory (".").
    let mut expected = ClusterSpec {
        runtime_dir: dir.path().join(".cluster"),
        log_file: dir.path().join("logs/cluster.log"),
        ..ClusterSpec::default()
    };
    expected.access_log.path = AccessLogPath::File(dir.path().join("logs/access.log"));
    assert_eq!(loaded.spec, expected);

    let spec = loaded.spec;
    assert_eq!(spec.workers, cpu_count());
    assert_eq!(spec.listen, "0.0.0.0:3000".parse::<SocketAddr>().unwrap());
    assert_eq!(spec.graceful_shutdown_timeout, Duration::from_millis(15_000));
    assert_eq!(spec.health_check_interval, Duration::from_millis(5_000));
    assert_eq!(spec.unresponsive_timeout, Duration::from_millis(10_000));
    assert_eq!(spec.start_timeout, Duration::from_millis(30_000));
    assert_eq!(spec.health_check_path, None);
    assert_eq!(spec.max_memory_bytes, 512 * 1024 * 1024);
    assert_eq!(spec.strategy, Strategy::LeastConnections);
    assert_eq!((spec.scaling.min_workers, spec.scaling.max_workers), (1, cpu_count()));
    assert_eq!(spec.performance.max_requests_per_worker, None);
    assert_eq!(spec.performance.upstream_idle_timeout, Duration::from_millis(4_000));
    assert_eq!(spec.performance.slow_start_window, None);
    assert_eq!(spec.performance.proxy_threads, auto_proxy_threads(cpu_count()));
    assert_eq!(spec.performance.compression_level, 6);
    assert!(spec.security.trusted_proxies.is_empty());
    assert_eq!(spec.command.program, None);
    assert_eq!(spec.log_level, "info");
    assert!(loaded.effective.entries().iter().all(|e| e.source == Source::Default));
}

#[test]
fn precedence_is_default_file_env_flag() {
    let dir = Dir::new();
    dir.config(r#"{"port": 4000, "host": "127.0.0.1", "logLevel": "debug"}"#);
    let env = [("PORT", "5000"), ("LOG_LEVEL", "warn")];
    let flag = flags(|o| o.port = Some("6000".into()));

    let loaded = dir.load(&flag, &env).unwrap();
    assert_eq!(loaded.spec.listen, "127.0.0.1:6000".parse::<SocketAddr>().unwrap());
    assert_eq!(loaded.spec.log_level, "warn");
    let source = |key: &str| loaded.effective.get(key).unwrap().source.to_string();
    assert_eq!(source("port"), "command-line flag --port");
    assert_eq!(source("logLevel"), "environment variable LOG_LEVEL");
    assert_eq!(source("host"), dir.file_source());
    assert_eq!(source("workers"), "default");

    let loaded = dir.load(&no_flags(), &env).unwrap();
    assert_eq!(loaded.spec.listen.port(), 5000);
    assert_eq!(loaded.effective.get("port").unwrap().source, Source::Env("PORT".into()));

    let loaded = dir.load(&no_flags(), &[]).unwrap();
    assert_eq!(loaded.spec.listen.port(), 4000);
    assert_eq!(loaded.spec.log_level, "debug");
}

#[test]
fn nested_keys_keep_their_own_source() {
    let dir = Dir::new();
    dir.config(r#"{"performance": {"enableCompression": true}}"#);
    let effective = dir.load(&no_flags(), &[]).unwrap().effective;
    let compression = effective.get("performance.enableCompression").unwrap();
    assert_eq!(compression.source.to_string(), dir.file_source());
    assert_eq!(compression.value, serde_json::json!(true));
    assert_eq!(effective.get("performance.requestTimeout").unwrap().source, Source::Default);
}

#[test]
fn every_environment_variable_is_read() {
    let dir = Dir::new();
    let env = [
        ("CLUSTER_WORKERS", "3"),
        ("PORT", "8080"),
        ("HOST", "::1"),
        ("MAX_MEMORY_USAGE", "1G"),
        ("GRACEFUL_SHUTDOWN_TIMEOUT", "2000"),
        ("HEALTH_CHECK_INTERVAL", "250"),
        ("LOAD_BALANCING_STRATEGY", "round-robin"),
        ("ENABLE_STICKY_SESSION", "true"),
        ("REDIS_URL", "rediss://cache:6380"),
        ("LOG_LEVEL", "info,hyper=warn"),
        ("UNRELATED", "ignored"),
    ];
    let spec = dir.load(&no_flags(), &env).unwrap().spec;
    assert_eq!(spec.workers, 3);
    assert_eq!(spec.listen, "[::1]:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(spec.max_memory_bytes, 1024 * 1024 * 1024);
    assert_eq!(spec.graceful_shutdown_timeout, Duration::from_secs(2));
    assert_eq!(spec.health_check_interval, Duration::from_millis(250));
    assert_eq!(spec.strategy, Strategy::RoundRobin);
    assert!(spec.sticky_sessions);
    assert_eq!(spec.redis_url.as_deref(), Some("rediss://cache:6380"));
    assert_eq!(spec.log_level, "info,hyper=warn");
}

#[test]
fn empty_environment_variable_is_unset() {
    let dir = Dir::new();
    dir.config(r#"{"port": 4000}"#);
    let loaded = dir.load(&no_flags(), &[("PORT", ""), ("CLUSTER_CONFIG_PATH", "")]).unwrap();
    assert_eq!(loaded.spec.listen.port(), 4000);
    assert_eq!(loaded.effective.get("port").unwrap().source.to_string(), dir.file_source());
}

#[test]
fn every_flag_is_read() {
    let dir = Dir::new();
    let sh = dir.executable("server.sh");
    let overrides = flags(|o| {
        o.workers = Some("max".into());
        o.port = Some("0".into());
        o.host = Some("localhost".into());
        o.strategy = Some("round-robin".into());
        o.health_check_path = Some("/healthz".into());
        o.log_level = Some("debug".into());
        o.command = vec![sh.display().to_string(), "--fast".into()];
    });
    let loaded = dir.load(&overrides, &[]).unwrap();
    let spec = &loaded.spec;
    assert_eq!(spec.workers, cpu_count());
    assert_eq!(spec.listen, "127.0.0.1:0".parse::<SocketAddr>().unwrap());
    assert_eq!(spec.strategy, Strategy::RoundRobin);
    assert_eq!(spec.health_check_path.as_deref(), Some("/healthz"));
    assert_eq!(spec.log_level, "debug");
    assert_eq!(spec.command.program.as_deref(), Some(sh.as_path()));
    assert_eq!(spec.command.args, ["--fast"]);
    let source = |key: &str| loaded.effective.get(key).unwrap().source.to_string();
    assert_eq!(source("healthCheckPath"), "command-line flag --health-path");
    assert_eq!(source("loadBalancingStrategy"), "command-line flag --strategy");
    assert_eq!(source("args"), "command line after --");
}

#[test]
fn command_after_double_dash_replaces_configured_args() {
    let dir = Dir::new();
    let sh = dir.executable("server.sh");
    dir.config(&format!(r#"{{"command": "{}", "args": ["a", "b"]}}"#, sh.display()));
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.command.args, ["a", "b"]);
    let overrides = flags(|o| o.command = vec![sh.display().to_string()]);
    assert!(dir.load(&overrides, &[]).unwrap().spec.command.args.is_empty());
}

#[test]
fn file_is_found_by_flag_then_variable_then_default_name() {
    let dir = Dir::new();
    dir.config(r#"{"port": 1}"#);
    let by_var = dir.write("var.json", r#"{"port": 2}"#);
    dir.write("flag.json", r#"{"port": 3}"#);
    let var = [("CLUSTER_CONFIG_PATH", "var.json")];
    let flag = flags(|o| o.config_path = Some("flag.json".into()));

    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.listen.port(), 1);
    let loaded = dir.load(&no_flags(), &var).unwrap();
    assert_eq!(loaded.spec.listen.port(), 2);
    assert_eq!(loaded.effective.get("port").unwrap().source, Source::File(by_var));
    assert_eq!(dir.load(&flag, &var).unwrap().spec.listen.port(), 3);
}

#[test]
fn effective_report() {
    let dir = Dir::new();
    dir.config(r#"{"scaling": {"minWorkers": 4096}, "env": {"NODE_ENV": "production"}}"#);
    // 4096 is out of range: the report is only made for a valid configuration.
    assert!(dir.load(&no_flags(), &[]).is_err());

    // More workers than CPUs: the default maxWorkers is raised to the worker count.
    let workers = cpu_count() + 2;
    dir.config(&format!(
        r#"{{"workers": {workers}, "scaling": {{"minWorkers": 3}}, "env": {{"NODE_ENV": "production"}}}}"#
    ));
    let effective = dir.load(&no_flags(), &[("PORT", "8080")]).unwrap().effective;
    let json = effective.to_json();
    assert_eq!(
        json["port"],
        serde_json::json!({"value": 8080, "source": "environment variable PORT"})
    );
    let file = dir.file_source();
    assert_eq!(json["workers"], serde_json::json!({"value": workers, "source": file}));
    assert_eq!(json["env"]["value"], serde_json::json!({"NODE_ENV": "production"}));
    assert_eq!(
        json["scaling.maxWorkers"],
        serde_json::json!({"value": workers, "source": "default"}),
        "shown resolved"
    );
    assert_eq!(json["scaling.cpuThreshold"]["value"], serde_json::json!(80));
    assert!(json.get("scaling").is_none(), "sections are flattened");
    assert!(json.get("rollingRestart").is_none(), "sections are flattened");
    let new_keys = [
        ("scaling.cooldown", serde_json::json!(30_000)),
        ("scaling.scaleUpAfter", serde_json::json!(15_000)),
        ("scaling.scaleDownAfter", serde_json::json!(60_000)),
        ("health.unresponsiveGrace", serde_json::json!(2_000)),
        ("health.leakDetection", serde_json::json!(true)),
        ("health.leakWindow", serde_json::json!(300_000)),
        ("health.leakMinSlope", serde_json::json!(1)),
        ("rollingRestart.maxSurge", serde_json::json!(1)),
        ("rollingRestart.minReady", serde_json::json!(0)),
    ];
    for (key, value) in new_keys {
        assert_eq!(json[key], serde_json::json!({"value": value, "source": "default"}), "{key}");
    }

    let table = effective.render();
    assert_eq!(table.lines().count(), effective.entries().len());
    let key_width = effective.entries().iter().map(|e| e.key.len()).max().unwrap();
    for (line, entry) in table.lines().zip(effective.entries()) {
        assert!(line.starts_with(&format!("{}  ", entry.key)), "{line}");
        let value = entry.value.to_string();
        assert_eq!(line[key_width + 2..].split_once("  ").unwrap().0.trim_end(), value);
        assert!(line.ends_with(&format!("  {}", entry.source)), "{line}");
    }
}

//! Every kind of bad input gives its message, naming key, value and source.

use super::super::{ConfigError, Source};
use super::{Dir, flags, make_executable, no_flags};

#[test]
fn unknown_key_suggests_the_nearest() {
    let dir = Dir::new();
    dir.config(r#"{"wokers": 4}"#);
    let source = dir.file_source();
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!("unknown key `wokers` in {source}; did you mean `workers`?")
    );

    dir.config(r#"{"performance": {"requestTimeot": 100}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "unknown key `performance.requestTimeot` in {source}; did you mean \
             `performance.requestTimeout`?"
        )
    );

    dir.config(r#"{"banana": true}"#);
    assert_eq!(dir.error(&no_flags(), &[]), format!("unknown key `banana` in {source}"));
}

#[test]
fn unknown_key_error_carries_data() {
    let dir = Dir::new();
    let path = dir.config(r#"{"max_memory_usage": 512}"#);
    let error = dir.load(&no_flags(), &[]).unwrap_err();
    match error {
        ConfigError::UnknownKey { key, origin, suggestion } => {
            assert_eq!(key, "max_memory_usage");
            assert_eq!(origin, Source::File(path));
            assert_eq!(suggestion.as_deref(), Some("maxMemoryUsage"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn wrong_types() {
    let dir = Dir::new();
    let source = dir.file_source();
    let cases = [
        (r#"{"port": "abc"}"#, r#"`port` from {}: "abc" (expected an integer)"#),
        (r#"{"port": 3000.5}"#, "`port` from {}: 3000.5 (expected an integer)"),
        (
            r#"{"restartOnHighMemory": "yes"}"#,
            r#"`restartOnHighMemory` from {}: "yes" (expected a boolean)"#,
        ),
        (r#"{"workers": true}"#, r#"`workers` from {}: true (expected an integer or "max")"#),
        (r#"{"scaling": 5}"#, "`scaling` from {}: 5 (expected an object)"),
        (r#"{"args": "-v"}"#, r#"`args` from {}: "-v" (expected an array)"#),
        (r#"{"args": ["-v", 2]}"#, "`args` from {}: 2 (expected a string)"),
        (r#"{"env": {"A": 1}}"#, "`env.A` from {}: 1 (expected a string)"),
        (
            r#"{"scaling": {"cpuThreshold": "high"}}"#,
            r#"`scaling.cpuThreshold` from {}: "high" (expected a number)"#,
        ),
        (r#"{"host": null}"#, "`host` from {}: null (expected a string)"),
    ];
    for (json, expected) in cases {
        dir.config(json);
        let expected = format!("invalid value for {}", expected.replace("{}", &source));
        assert_eq!(dir.error(&no_flags(), &[]), expected, "{json}");
    }
}

#[test]
fn wrong_type_from_environment() {
    let dir = Dir::new();
    assert_eq!(
        dir.error(&no_flags(), &[("ENABLE_STICKY_SESSION", "1")]),
        "invalid value for `enableStickySession` from environment variable ENABLE_STICKY_SESSION: \
         1 (expected a boolean)"
    );
    assert_eq!(
        dir.error(&no_flags(), &[("PORT", "http")]),
        r#"invalid value for `port` from environment variable PORT: "http" (expected an integer)"#
    );
}

#[test]
fn zero_workers() {
    let dir = Dir::new();
    let path = dir.config(r#"{"workers": 0}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            r#"invalid value for `workers` from config file {}: 0 (must be at least 1, or "max")"#,
            path.display()
        )
    );
    assert_eq!(
        dir.error(&flags(|o| o.workers = Some("many".into())), &[]),
        r#"invalid value for `workers` from command-line flag --workers: "many" (expected an integer or "max")"#
    );
}

#[test]
fn min_workers_above_max_workers() {
    let dir = Dir::new();
    dir.config(r#"{"scaling": {"minWorkers": 6, "maxWorkers": 4}}"#);
    let source = dir.file_source();
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "invalid value for `scaling.minWorkers` from {source}: 6 (greater than \
             `scaling.maxWorkers` = 4 from {source})"
        )
    );
}

#[test]
fn unknown_strategy() {
    let dir = Dir::new();
    assert_eq!(
        dir.error(&flags(|o| o.strategy = Some("fastest".into())), &[]),
        r#"invalid value for `loadBalancingStrategy` from command-line flag --strategy: "fastest" (expected one of "round-robin", "least-connections", "cpu-based", "p2c", "peak-ewma")"#
    );
    assert_eq!(
        dir.error(&no_flags(), &[("LOAD_BALANCING_STRATEGY", "round-robn")]),
        r#"invalid value for `loadBalancingStrategy` from environment variable LOAD_BALANCING_STRATEGY: "round-robn" (expected one of "round-robin", "least-connections", "cpu-based", "p2c", "peak-ewma"; did you mean "round-robin"?)"#
    );
}

#[test]
fn port_out_of_range_from_each_source() {
    let dir = Dir::new();
    dir.config(r#"{"port": 70000}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "invalid value for `port` from {}: 70000 (must be at most 65535)",
            dir.file_source()
        )
    );
    assert_eq!(
        dir.error(&no_flags(), &[("PORT", "70000")]),
        "invalid value for `port` from environment variable PORT: 70000 (must be at most 65535)"
    );
    assert_eq!(
        dir.error(&flags(|o| o.port = Some("70000".into())), &[("PORT", "80")]),
        "invalid value for `port` from command-line flag --port: 70000 (must be at most 65535)"
    );
    dir.config(r#"{"port": -1}"#);
    assert!(dir.error(&no_flags(), &[]).ends_with(": -1 (must be at least 0)"));
}

#[test]
fn missing_explicit_file() {
    let dir = Dir::new();
    let missing = dir.path().join("nope.json");
    assert_eq!(
        dir.error(&flags(|o| o.config_path = Some("nope.json".into())), &[]),
        format!(
            "config file {} (from command-line flag --config) does not exist",
            missing.display()
        )
    );
    assert_eq!(
        dir.error(&no_flags(), &[("CLUSTER_CONFIG_PATH", "nope.json")]),
        format!(
            "config file {} (from environment variable CLUSTER_CONFIG_PATH) does not exist",
            missing.display()
        )
    );
}

#[test]
fn invalid_json_names_file_line_and_column() {
    let dir = Dir::new();
    let path = dir.config("{\n  \"port\": 3000\n  \"host\": \"::\"\n}");
    let error = dir.load(&no_flags(), &[]).unwrap_err();
    assert!(
        matches!(&error, ConfigError::InvalidJson { path: p, line: 3, column: 3, .. } if *p == path),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "config file {} is not valid: expected `,` or `}}` at line 3, column 3",
            path.display()
        )
    );

    dir.config("[1, 2]");
    assert!(
        dir.error(&no_flags(), &[])
            .ends_with("the top level must be an object at line 1, column 1")
    );
}

#[test]
fn command_not_in_path() {
    let dir = Dir::new();
    let bin = tempfile::tempdir().unwrap();
    let path_var = bin.path().display().to_string();
    let env = [("PATH", path_var.as_str())];
    let overrides = flags(|o| o.command = vec!["my-server".into()]);
    assert_eq!(
        dir.error(&overrides, &env),
        r#"invalid value for `command` from command line after --: "my-server" (command `my-server` not found in PATH)"#
    );

    let program = bin.path().join("my-server");
    std::fs::write(&program, "#!/bin/sh\n").unwrap();
    assert!(dir.error(&overrides, &env).contains("not found in PATH"), "not executable yet");
    make_executable(&program);
    let spec = dir.load(&overrides, &env).unwrap().spec;
    assert_eq!(spec.command.program.as_deref(), Some(std::path::Path::new("my-server")));
}

#[test]
fn command_paths_resolve_against_cwd() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    let script = dir.path().join("app").join("run.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    make_executable(&script);
    dir.config(r#"{"command": "./run.sh", "cwd": "app"}"#);
    let command = dir.load(&no_flags(), &[]).unwrap().spec.command;
    assert_eq!(command.program.as_deref(), Some(std::path::Path::new("./run.sh")));

    dir.config(r#"{"command": "./run.sh", "cwd": "missing"}"#);
    let lines = dir.errors(&no_flags(), &[]);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with(r#"invalid value for `cwd` from config file"#), "{}", lines[0]);
    assert!(lines[0].ends_with("missing does not exist)"), "{}", lines[0]);
    assert!(lines[1].contains(r#": "./run.sh" ("#) && lines[1].ends_with("does not exist)"));
}

#[test]
fn every_problem_is_reported() {
    let dir = Dir::new();
    dir.config(
        r#"{"wokers": 4, "port": "abc", "workers": 0, "host": "nowhere",
            "scaling": {"minWorkers": 6, "maxWorkers": 4, "cpuTreshold": 50},
            "performance": {"compressionLevel": 10}, "security": {"trustedProxies": ["10.0.0.0/8", "bogus"]}}"#,
    );
    let lines = dir.errors(&no_flags(), &[("MAX_MEMORY_USAGE", "0")]);
    let expected = [
        "invalid value for `port`",
        "unknown key `scaling.cpuTreshold`",
        "unknown key `wokers`",
        "invalid value for `workers`",
        "invalid value for `host`",
        "invalid value for `maxMemoryUsage` from environment variable MAX_MEMORY_USAGE: 0 (must be greater than 0)",
        "invalid value for `scaling.minWorkers`",
        "invalid value for `performance.compressionLevel`",
        r#"invalid value for `security.trustedProxies`"#,
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, start) in lines.iter().zip(expected) {
        assert!(line.starts_with(start), "{line:?} should start with {start:?}\nall: {lines:#?}");
    }
    assert!(lines[8].ends_with(r#": "bogus" (expected an IP address or a CIDR block)"#));
}

#[test]
fn bad_compression_min_size() {
    let dir = Dir::new();
    let source = dir.file_source();
    dir.config(r#"{"performance": {"compressionMinSize": "12 parsecs"}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            r#"invalid value for `performance.compressionMinSize` from {source}: "12 parsecs" (expected a size in bytes, or a number with a unit such as "64KB", "10MB" or "1GiB")"#
        )
    );
    dir.config(r#"{"performance": {"compressionMinSize": -1}}"#);
    assert!(dir.error(&no_flags(), &[]).contains("compressionMinSize"));
    dir.config(r#"{"performance": {"compressionMinSize": true}}"#);
    assert!(dir.error(&no_flags(), &[]).contains("compressionMinSize"));
}

#[test]
fn compression_min_size_units() {
    let dir = Dir::new();
    dir.config(r#"{"performance": {"compressionMinSize": "64KB"}}"#);
    assert_eq!(
        dir.load(&no_flags(), &[]).unwrap().spec.performance.compression_min_size,
        64 * 1024
    );
    dir.config(r#"{"performance": {"compressionMinSize": 200}}"#);
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.performance.compression_min_size, 200);
}

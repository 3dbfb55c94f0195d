//! `cluster import pm2`: real ecosystem files (JavaScript, JSON, .config.cjs, .config.mjs,
//! YAML) evaluated by the real node, the report, every error case, and an imported
//! configuration run by the real `cluster` with the Node example worker.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::cli;
use crate::util::{ClusterCmd, alive, get, node_server};

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Writes `name` with `body` in `dir`.
fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write the ecosystem file");
}

/// The configuration `cluster import` wrote in `dir`.
fn written(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("cluster.config.json")).expect("written");
    serde_json::from_str(&text).expect("JSON")
}

/// A scratch directory with an `app.js` script (the scripts must exist, as for PM2).
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("scratch dir");
    write(dir.path(), "app.js", "require('http').createServer().listen(process.env.PORT)\n");
    dir
}

/// `cluster import pm2 <args>` in `dir`, expected to succeed.
fn import_ok(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["import", "pm2"];
    all.extend(args);
    let out = cli(dir, &all);
    assert!(out.status.success(), "import failed: {}", text(&out));
    text(&out)
}

/// `cluster import pm2 <args>` in `dir`, expected to fail with `code`; its output.
fn import_err(dir: &Path, args: &[&str], code: i32) -> String {
    let mut all = vec!["import", "pm2"];
    all.extend(args);
    let out = cli(dir, &all);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    assert!(!dir.join("cluster.config.json").exists(), "nothing is written on an error");
    text(&out)
}

#[test]
fn a_javascript_ecosystem_file_with_computed_values_is_imported_and_loads() {
    let dir = scratch();
    write(
        dir.path(),
        "ecosystem.config.js",
        r#"
const os = require('os');
const base = { NODE_ENV: 'development', LOG_LEVEL: 'debug' };
console.log('the file may print');
module.exports = {
  apps: [{
    name: 'api',
    script: 'app.js',
    args: '--title "my api" -v',
    node_args: ['--max-old-space-size=' + 256 * 2],
    instances: os.cpus().length > 0 ? 2 : 1,
    exec_mode: 'cluster',
    max_memory_restart: 300 + 'M',
    kill_timeout: 4 * 1000,
    listen_timeout: 8000,
    env: { ...base, PORT: 4000 + 1, SHELL_HOME: process.env.HOME },
    cron_restart: '0 3 * * *',
    watch: ['src'],
    post_start: () => 'a function',
  }],
  deploy: { production: { user: 'deploy' } },
};
"#,
    );
    let report = import_ok(dir.path(), &["ecosystem.config.js"]);
    assert_eq!(
        written(dir.path()),
        json!({
            "command": "node",
            "args": ["--max-old-space-size=512", "app.js", "--title", "my api", "-v"],
            "workers": 2,
            "port": 4001,
            "env": {"NODE_ENV": "development", "LOG_LEVEL": "debug", "SHELL_HOME": std::env::var("HOME").unwrap()},
            "maxMemoryUsage": "300M",
            "restartOnHighMemory": true,
            "gracefulShutdownTimeout": 4000,
            "startTimeout": 8000,
        })
    );
    for needle in [
        "Imported app \"api\" from ecosystem.config.js.",
        "Mapped:\n",
        "  instances: workers: 2",
        "Approximated (mapped, but read the note):\n",
        "  kill_timeout: gracefulShutdownTimeout: 4000",
        "SIGTERM, not PM2's SIGINT",
        "  env.PORT: port: 4001, the front port",
        "  (evaluation): the file read HOME from this shell's environment",
        "No equivalent (not carried over):\n",
        "  cron_restart: run `cluster reload`",
        "  watch: use `cluster dev`",
        "  deploy: PM2's deployment",
        "  post_start: a function, which a JSON file cannot hold",
        "Wrote cluster.config.json. Run it with `cluster start`.",
    ] {
        assert!(report.contains(needle), "{needle:?} not in:\n{report}");
    }
    assert!(!report.contains("the file may print"), "the file's output is not ours:\n{report}");
    // The real loader takes it, as `cluster start` would.
    let out = cli(dir.path(), &["config", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let effective = String::from_utf8_lossy(&out.stdout);
    assert!(effective.contains("cluster.config.json"), "{effective}");
}

#[test]
fn json_cjs_mjs_and_yaml_ecosystem_files_are_read_as_pm2_reads_them() {
    let dir = scratch();
    // PM2 reads .json as a JavaScript object literal: comments and unquoted keys pass.
    write(
        dir.path(),
        "ecosystem.json",
        "{\n  // the API\n  apps: [{ name: 'json', script: 'app.js', instances: 'max' }]\n}\n",
    );
    write(
        dir.path(),
        "ecosystem.config.cjs",
        "module.exports = { apps: [{ name: 'cjs', script: 'app.js', instances: -1 }] };\n",
    );
    write(
        dir.path(),
        "ecosystem.config.mjs",
        "export default { apps: [{ name: 'mjs', script: 'app.js', instances: 3 }] };\n",
    );
    write(
        dir.path(),
        "ecosystem.yml",
        "apps:\n  - name: yaml\n    script: app.js\n    instances: 2\n",
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cases = [
        ("ecosystem.json", "json", json!("max")),
        ("ecosystem.config.cjs", "cjs", json!(cpus.saturating_sub(1).max(1))),
        ("ecosystem.config.mjs", "mjs", json!(3)),
        ("ecosystem.yml", "yaml", json!(2)),
    ];
    for (file, name, workers) in cases {
        let report = import_ok(dir.path(), &[file, "--force"]);
        assert!(report.contains(&format!("Imported app \"{name}\"")), "{report}");
        let config = written(dir.path());
        assert_eq!(config["workers"], workers, "{file}: {config}");
        assert_eq!(config["args"], json!(["app.js"]), "{file}");
    }
}

#[test]
fn app_chooses_among_several_and_env_applies_a_block() {
    let dir = scratch();
    write(dir.path(), "jobs.js", "setInterval(() => {}, 1000)\n");
    write(
        dir.path(),
        "ecosystem.config.js",
        r#"module.exports = { apps: [
  { name: 'api', script: 'app.js', env: { NODE_ENV: 'development', A: '1' },
    env_production: { NODE_ENV: 'production', PORT: 8080 }, env_staging: { NODE_ENV: 'staging' } },
  { name: 'jobs', script: 'jobs.js', instances: 1 },
] };
"#,
    );
    let out = import_err(dir.path(), &["ecosystem.config.js"], 2);
    assert!(
        out.contains("the file defines 2 apps: choose one with --app NAME (api, jobs)"),
        "{out}"
    );
    let out = import_err(dir.path(), &["ecosystem.config.js", "--app", "web"], 2);
    assert!(out.contains("no app named \"web\" in the file; its apps are: api, jobs"), "{out}");

    import_ok(dir.path(), &["ecosystem.config.js", "--app", "jobs"]);
    assert_eq!(written(dir.path())["args"], json!(["jobs.js"]));

    let report = import_ok(
        dir.path(),
        &["ecosystem.config.js", "--app", "api", "--env", "production", "--force"],
    );
    let config = written(dir.path());
    assert_eq!(config["env"], json!({"NODE_ENV": "production", "A": "1"}));
    assert_eq!(config["port"], json!(8080));
    assert!(report.contains("with --env production."), "{report}");
    assert!(report.contains("env_production: applied over env (--env production)"), "{report}");
    assert!(report.contains("env_staging: not applied: import with --env staging"), "{report}");

    std::fs::remove_file(dir.path().join("cluster.config.json")).unwrap();
    let out = import_err(dir.path(), &["ecosystem.config.js", "--app", "api", "--env", "prod"], 2);
    assert!(
        out.contains("no `env_prod` block for --env prod; it has: env_production, env_staging"),
        "{out}"
    );
}

#[test]
fn errors_say_what_is_wrong_and_write_nothing() {
    let dir = scratch();
    let d = dir.path();
    write(d, "ok.config.js", "module.exports = { apps: [{ script: 'app.js' }] };\n");
    let out = import_err(d, &["ok.config.js", "--node", "/nonexistent/node"], 1);
    assert!(out.contains("cannot run `/nonexistent/node`") && out.contains("--node PATH"), "{out}");

    let out = import_err(d, &["missing.config.js"], 2);
    assert!(out.contains("missing.config.js: no such file"), "{out}");

    write(d, "syntax.config.js", "module.exports = { apps: [\n");
    let out = import_err(d, &["syntax.config.js"], 2);
    assert!(out.contains("node could not evaluate syntax.config.js"), "{out}");
    assert!(out.contains("SyntaxError: Unexpected end of input"), "{out}");
    assert!(!out.contains("[eval]"), "our own frames are left out: {out}");

    write(
        d,
        "throws.config.js",
        "if (!process.env.NOPE_DB_URL) throw new Error('set NOPE_DB_URL');\n",
    );
    let out = import_err(d, &["throws.config.js"], 2);
    assert!(out.contains("Error: set NOPE_DB_URL"), "{out}");
    assert!(out.contains("throws.config.js:1"), "where it threw: {out}");

    write(d, "empty.config.js", "module.exports = { apps: [] };\n");
    let out = import_err(d, &["empty.config.js"], 2);
    assert!(out.contains("the file defines no app"), "{out}");

    write(d, "string.config.js", "module.exports = { apps: ['app.js'] };\n");
    let out = import_err(d, &["string.config.js"], 2);
    assert!(out.contains("apps[0] is a string, not an object"), "{out}");

    for (app, said) in [
        (
            "{ script: 'app.js', max_memory_restart: '1.5G' }",
            "invalid `max_memory_restart`: \"1.5G\"",
        ),
        ("{ script: 'app.js', exec_mode: 'spawn' }", "invalid `exec_mode`"),
        ("{ script: 'app.js', kill_timeout: '3s' }", "invalid `kill_timeout`"),
        ("{ name: 'x' }", "the app has no `script`"),
        ("{ script: 'nowhere.js' }", "script not found: \"nowhere.js\""),
    ] {
        write(d, "bad.config.js", &format!("module.exports = {{ apps: [{app}] }};\n"));
        let out = import_err(d, &["bad.config.js"], 2);
        assert!(out.contains(said), "{app}: {out}");
    }

    // A value PM2 takes but cluster would reject is caught by the real loader.
    write(d, "many.config.js", "module.exports = { script: 'app.js', instances: 5000 };\n");
    let out = import_err(d, &["many.config.js"], 2);
    assert!(out.contains("would not load, so nothing was written"), "{out}");
    assert!(out.contains("`workers`") && out.contains("must be at most 1024"), "{out}");
    assert!(out.contains("cluster.config.json"), "named as the output: {out}");
    assert!(!out.contains(".cluster-import-"), "the temporary file is not named: {out}");

    // An existing output needs --force; `-` prints.
    import_ok(d, &["ok.config.js"]);
    let out = cli(d, &["import", "pm2", "ok.config.js"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cluster.config.json exists; pass --force"), "{}", text(&out));
    import_ok(d, &["ok.config.js", "--force"]);
    let out = cli(d, &["import", "pm2", "ok.config.js", "--output", "-"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON alone");
    assert_eq!(printed["command"], "node");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mapped:"));
    let leftovers = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".cluster-import-"))
        .count();
    assert_eq!(leftovers, 0, "temporary files are removed");
}

#[test]
fn an_imported_node_app_serves_with_its_worker_count_and_stops_cleanly() {
    let cmd = ClusterCmd::bare(&["start"]).env("WORKER_QUIET", "1");
    let dir = cmd.dir().to_path_buf();
    let examples = node_server().parent().unwrap().display().to_string();
    write(
        &dir,
        "ecosystem.config.js",
        &format!(
            r#"module.exports = {{ apps: [{{
  name: 'node-example', cwd: {examples:?}, script: 'server.js',
  instances: 3, exec_mode: 'cluster', kill_timeout: 5000, listen_timeout: 10000,
  max_memory_restart: '400M',
  env: {{ NODE_ENV: 'production', HOST: '127.0.0.1', PORT: 0 }},
}}] }};
"#
        ),
    );
    import_ok(&dir, &["ecosystem.config.js"]);
    let c = cmd.spawn(3);
    let pids = c.worker_pids();
    assert_eq!(pids.len(), 3, "{:?}", c.log());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut served = std::collections::BTreeSet::new();
    rt.block_on(async {
        for _ in 0..30 {
            let (status, body) = get(c.addr, "/pid").await;
            assert_eq!(status, 200);
            served.insert(String::from_utf8_lossy(&body).parse::<u32>().expect("a pid"));
        }
        let (status, body) = get(c.addr, "/").await;
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).starts_with("hello from node worker"));
    });
    assert!(served.iter().all(|pid| pids.contains(pid)), "{served:?} from {pids:?}");
    let out = cli(&dir, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["workers"].as_array().map(Vec::len), Some(3), "{status}");

    let primary = c.pid();
    let out = cli(&dir, &["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(primary) || pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "the cluster or a worker is still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(c);
}

//! Unit tests of the PM2 mapping: every PM2 key ends up in the report, and each mapping
//! decision of `import/mod.rs` holds.

use serde_json::{Value, json};

use super::*;

/// A machine with 4 CPUs where every script exists as a text file, except `app-bin` (a
/// binary), `npm` (only in PATH) and `missing.js`; `bun` and `python` are not in PATH.
fn host_of<'a>(
    script: &'a dyn Fn(&str, Option<&str>) -> ScriptFile,
    on_path: &'a dyn Fn(&str) -> bool,
) -> Host<'a> {
    Host { cpus: 4, script, on_path }
}

fn script_file(script: &str, _cwd: Option<&str>) -> ScriptFile {
    match script {
        "app-bin" | "./app-bin" => ScriptFile::Binary,
        "npm" => ScriptFile::OnPath,
        "missing.js" => ScriptFile::Missing,
        _ => ScriptFile::Text,
    }
}

fn on_path(name: &str) -> bool {
    !matches!(name, "bun" | "python")
}

fn map_env(app: Value, env: Option<&str>) -> Result<Imported, MapError> {
    map_app(app.as_object().expect("an object"), env, &host_of(&script_file, &on_path))
}

fn map(app: Value) -> Imported {
    map_env(app, None).expect("maps")
}

fn err(app: Value) -> String {
    map_env(app, None).expect_err("an error").to_string()
}

#[test]
fn the_main_keys_map() {
    let imported = map(json!({
        "name": "api",
        "script": "server.js",
        "args": "--verbose --title \"my api\"",
        "node_args": ["--max-old-space-size=512"],
        "cwd": "/srv/api",
        "instances": 4,
        "exec_mode": "cluster",
        "max_memory_restart": "300M",
        "kill_timeout": 5000,
        "listen_timeout": 8000,
        "env": {"NODE_ENV": "production", "PORT": 8080, "DEBUG": false},
    }));
    assert_eq!(
        Value::Object(imported.config),
        json!({
            "command": "node",
            "args": ["--max-old-space-size=512", "server.js", "--verbose", "--title", "my api"],
            "cwd": "/srv/api",
            "workers": 4,
            "port": 8080,
            "env": {"NODE_ENV": "production", "DEBUG": "false"},
            "maxMemoryUsage": "300M",
            "restartOnHighMemory": true,
            "gracefulShutdownTimeout": 5000,
            "startTimeout": 8000,
        })
    );
    let r = &imported.report;
    assert!(r.find("kill_timeout")[0].text.contains("SIGTERM, not PM2's SIGINT"));
    assert!(r.find("env.PORT")[0].text.contains("process.env.PORT"));
    assert!(r.find("name")[0].text.contains("one app"));
    assert!(r.approximated.iter().any(|e| e.key == "max_memory_restart"));
}

#[test]
fn every_pm2_option_appears_in_the_report() {
    let mut app = Map::new();
    for name in super::super::pm2_keys::names() {
        let value = match name {
            "script" => json!("server.js"),
            "args" | "node_args" => json!([]),
            "exec_interpreter" => json!("node"),
            "env" | "watch_options" | "io" => json!({}),
            "max_memory_restart" => json!("1G"),
            "instances" => json!(2),
            "exec_mode" => json!("cluster"),
            "kill_timeout" | "listen_timeout" | "restart_delay" | "port" | "max_restarts" => {
                json!(3000)
            }
            "cwd" => json!("."),
            "uid" | "gid" => json!(0),
            "stop_exit_codes" | "post_update" => json!([0]),
            n if n.starts_with("disable") || matches!(n, "time" | "wait_ready" | "autorestart") => {
                json!(true)
            }
            _ => json!("x"),
        };
        app.insert(name.to_owned(), value);
    }
    app.insert("env_production".into(), json!({}));
    app.insert("colour".into(), json!("blue"));
    let imported = map_app(&app, None, &host_of(&script_file, &on_path)).expect("maps");
    for key in app.keys() {
        assert!(!imported.report.find(key).is_empty(), "`{key}` is missing from the report");
    }
    assert!(imported.report.find("colour")[0].text.contains("not a PM2 7 option"));
    assert!(imported.report.find("env_production")[0].text.contains("--env production"));
}

#[test]
fn instances_forms() {
    let workers = |instances: Value| {
        map(json!({"script": "a.js", "instances": instances})).config["workers"].clone()
    };
    assert_eq!(workers(json!("max")), json!("max"));
    assert_eq!(workers(json!(0)), json!("max"));
    assert_eq!(workers(json!("3")), json!(3));
    assert_eq!(workers(json!(-1)), json!(3), "4 CPUs but one");
    assert_eq!(workers(json!(-9)), json!(1), "at least one");
    assert_eq!(map(json!({"script": "a.js"})).config["workers"], json!(1), "PM2's default");
    let r = map(json!({"script": "a.js", "instances": -1})).report;
    assert!(r.approximated[0].text.contains("this machine's 4 CPUs"), "{r}");
    let fork = map(json!({"script": "a.js", "exec_mode": "fork_mode"}));
    assert_eq!(fork.config["workers"], json!(1));
    assert!(
        fork.report.find("exec_mode")[0].text.starts_with("fork: cluster runs the app as a worker")
    );
    let fork4 = map(json!({"script": "a.js", "exec_mode": "fork", "instances": 4}));
    assert!(fork4.report.find("exec_mode")[0].text.contains("separate processes"));
    assert!(err(json!({"script": "a.js", "instances": true})).contains("a boolean, not a number"));
}

#[test]
fn interpreters_as_pm2_picks_them() {
    let cmd = |app: Value| {
        let c = map(app).config;
        (c["command"].clone(), c.get("args").cloned().unwrap_or(json!([])))
    };
    assert_eq!(cmd(json!({"script": "w.py"})), (json!("python3"), json!(["w.py"])));
    assert_eq!(map(json!({"script": "w.py"})).config["env"]["PYTHONUNBUFFERED"], "1");
    assert_eq!(
        cmd(json!({"script": "run.sh", "args": ["a"]})),
        (json!("bash"), json!(["run.sh", "a"]))
    );
    assert_eq!(
        cmd(json!({"script": "app-bin", "args": "-p 1"})),
        (json!("./app-bin"), json!(["-p", "1"]))
    );
    assert_eq!(cmd(json!({"script": "tool", "interpreter": "none"})), (json!("./tool"), json!([])));
    assert_eq!(cmd(json!({"script": "main.ts"})), (json!("node"), json!(["main.ts"])));
    assert_eq!(cmd(json!({"script": "main.mjs"})), (json!("node"), json!(["main.mjs"])));
    assert_eq!(cmd(json!({"script": "server"})), (json!("node"), json!(["server"])), "a text file");
    assert_eq!(
        cmd(json!({"script": "npm", "args": "start"})),
        (json!("npm"), json!(["start"])),
        "found in PATH"
    );
    assert_eq!(
        cmd(
            json!({"script": "a.js", "interpreter": "node@18.1.0", "interpreter_args": "--inspect"})
        ),
        (json!("node"), json!(["--inspect", "a.js"]))
    );
    let spaced = map(json!({"script": "python3 -m http.server", "args": ["x"]}));
    assert_eq!(spaced.config["command"], "bash");
    assert_eq!(spaced.config["args"], json!(["-c", "python3 -m http.server"]));
    assert!(spaced.report.find("args")[0].text.contains("bash -c"));
    let pinned = map(json!({"script": "a.js", "interpreter": "node@18.1.0"}));
    assert!(pinned.report.find("script")[0].text.contains("nvm"));
    assert!(map(json!({"script": "main.ts"})).report.find("script")[0].text.contains("bun"));
    let alias = map(json!({"cmd": "a.js"}));
    assert_eq!(alias.config["args"], json!(["a.js"]));
}

#[test]
fn env_blocks_and_the_variables_cluster_sets() {
    let app = json!({
        "script": "a.js",
        "env": {"NODE_ENV": "development", "HOST": "127.0.0.1", "NODE_APP_INSTANCE": "7", "OBJ": {"a": 1}},
        "env_production": {"NODE_ENV": "production", "PORT": "8080"},
        "env_staging": {"NODE_ENV": "staging"},
    });
    let prod = map_env(app.clone(), Some("production")).expect("maps");
    assert_eq!(prod.config["env"], json!({"NODE_ENV": "production", "OBJ": "{\"a\":1}"}));
    assert_eq!(prod.config["port"], json!(8080));
    assert_eq!(prod.config["host"], json!("127.0.0.1"));
    assert!(prod.report.find("env_staging")[0].text.contains("--env staging"));
    assert!(prod.report.find("env.NODE_APP_INSTANCE")[0].text.contains("set by cluster"));
    let dev = map_env(app.clone(), None).expect("maps");
    assert_eq!(dev.config["env"]["NODE_ENV"], "development");
    assert!(dev.report.find("port")[0].text.contains("3000"));
    assert_eq!(
        map_env(app, Some("prod")).unwrap_err().to_string(),
        "the app has no `env_prod` block for --env prod; it has: env_production, env_staging"
    );
    let port_key = map(json!({"script": "a.js", "port": 4000, "env": {"PORT": 1}}));
    assert_eq!(port_key.config["port"], json!(4000), "`port` wins over env.PORT");
    assert!(err(json!({"script": "a.js", "port": 70000})).contains("not a port number"));
    let string_env = map(json!({"script": "a.js", "env": "A=1"}));
    assert!(string_env.config.get("env").is_none());
    assert!(string_env.report.find("env")[0].text.contains("sets no usable variable"));
    assert!(err(json!({"script": "a.js", "env": [1]})).contains("an array, not an object"));
}

#[test]
fn memory_limits() {
    let none = map(json!({"script": "a.js"}));
    assert_eq!(none.config["restartOnHighMemory"], json!(false));
    assert_eq!(none.config["health"], json!({"hardMemoryLimit": 0}));
    let zero = map(json!({"script": "a.js", "max_memory_restart": 0}));
    assert_eq!(zero.config["restartOnHighMemory"], json!(false));
    let bytes = map(json!({"script": "a.js", "max_memory_restart": 1_073_741_824u64}));
    assert_eq!(bytes.config["maxMemoryUsage"], "1G");
    let odd = map(json!({"script": "a.js", "maxMemoryRestart": "1000"}));
    assert_eq!(odd.config["maxMemoryUsage"], "1K");
    assert!(odd.report.find("maxMemoryRestart")[0].text.contains("rounded up"));
    for bad in [json!("1.5G"), json!("512MB"), json!("300X"), json!(-1), json!(true)] {
        let message = err(json!({"script": "a.js", "max_memory_restart": bad}));
        assert!(message.starts_with("invalid `max_memory_restart`"), "{message}");
        assert!(message.ends_with("(PM2 rejects it too)"), "{message}");
    }
}

#[test]
fn timeouts_and_readiness() {
    let app = map(
        json!({"script": "a.js", "kill_timeout": "3000", "listen_timeout": 10, "wait_ready": true}),
    );
    assert_eq!(app.config["gracefulShutdownTimeout"], json!(3000));
    assert_eq!(app.config["startTimeout"], json!(100), "our least");
    assert_eq!(app.config["health"], json!({"hardMemoryLimit": 0, "nodeIpc": true}));
    assert!(app.report.find("listen_timeout")[0].text.contains("within 100 ms"));
    let long = map(json!({"script": "a.js", "kill_timeout": 7_200_000}));
    assert_eq!(long.config["gracefulShutdownTimeout"], json!(3_600_000));
    assert!(
        err(json!({"script": "a.js", "kill_timeout": "3s"}))
            .contains("not a number of milliseconds")
    );
    assert!(err(json!({"script": "a.js", "wait_ready": "yes"})).contains("not a boolean"));
}

#[test]
fn logs_accounts_and_built_in_behaviour() {
    let app = map(json!({
        "script": "a.js", "out_file": "/var/log/out.log", "error_file": "/var/log/err.log",
        "uid": "www-data", "gid": 33, "autorestart": false, "merge_logs": true, "watch": ["src"],
        "cron_restart": "0 3 * * *",
    }));
    assert_eq!(app.config["logFile"], "/var/log/out.log");
    assert_eq!(app.config["user"], "www-data");
    assert_eq!(app.config["group"], json!(33));
    let r = &app.report;
    assert!(r.find("error_file")[0].text.contains("one log"));
    assert!(r.find("autorestart")[0].text.contains("run-once"));
    assert!(r.mapped.iter().any(|e| e.key == "merge_logs"));
    assert!(r.find("watch")[0].text.contains("cluster dev"));
    assert!(r.find("cron_restart")[0].text.contains("cluster reload"));
    let both = map(json!({"script": "a.js", "log_file": "all.log", "out": "out.log"}));
    assert_eq!(both.config["logFile"], "all.log");
    assert!(both.report.find("out")[0].text.contains("`log_file` is used"));
}

#[test]
fn what_pm2_refuses() {
    assert_eq!(err(json!({"name": "x"})), MapError::NoScript.to_string());
    assert!(err(json!({"script": "missing.js"})).starts_with("script not found: \"missing.js\""));
    assert_eq!(
        err(json!({"script": "a.js", "exec_mode": "spawn"})),
        "invalid `exec_mode`: \"spawn\": expected \"cluster\" or \"fork\" (PM2 rejects it too)"
    );
    assert!(err(json!({"script": 3})).contains("a number, not a string"));
    assert!(err(json!({"script": "a.js", "args": {"a": 1}})).contains("not a string or an array"));
    assert!(err(json!({"script": "a.js", "cwd": false})).starts_with("invalid `cwd`"));
    // PM2 treats null as absent.
    assert_eq!(map(json!({"script": "a.js", "instances": null})).config["workers"], json!(1));
}

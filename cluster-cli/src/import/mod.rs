//! `cluster import pm2`: reading a PM2 ecosystem file (work in progress).
//!
//! Done so far: `evaluate.js`, the Node snippet that evaluates an ecosystem file as PM2 does
//! and reports the values JSON cannot hold and the environment variables it read;
//! [`pm2_keys`], PM2 7's options and aliases; [`pm2_values`], PM2's value forms (argument
//! strings, memory sizes, instance counts). The mapping to `cluster.config.json` and the
//! command itself are not written yet, so these parts are only used by their tests.
//!
//! The mapping decided (PM2 7.0.4 sources checked: `lib/Common.js`, `lib/God.js`,
//! `lib/API/schema.json`), to be written as a pure function from the app's JSON:
//!
//! - `script`/`interpreter`/`node_args`/`args` -> `command` + `args`: interpreter given ->
//!   `command: <interpreter>`, `args: node_args ++ [script] ++ args`; `interpreter: "none"`
//!   -> the script itself (`./name` when a bare name exists in `cwd`); `node@VER` -> `node`
//!   (version pin reported); no interpreter -> by extension as PM2's `interpreter.json`
//!   (.js/.cjs/.mjs node, .ts bun else node, .py python else python3 + `PYTHONUNBUFFERED=1`,
//!   .sh bash, .rb ruby, .php php, .pl perl), other: executable file -> run directly, else
//!   node; a script with a space -> `bash -c <script>` (PM2 does; args dropped).
//! - `instances`: absent -> `workers: 1` (PM2's default); n -> n; 0/"max"/non-number string
//!   -> "max"; -k -> CPUs - k computed here (min 1), reported as machine-specific.
//! - `env` (+ `deploy.<NAME>.env` under it, + `env_<NAME>` over it with `--env NAME`; a
//!   missing block is an error listing the names; unchosen blocks reported); values
//!   stringified as PM2 does (objects/null as JSON). `port` key, then `env.PORT` -> `port`
//!   (the front port); `env.HOST` -> `host` if an IP/localhost; NODE_APP_INSTANCE,
//!   CLUSTER_WORKER_ID, SOCKET_PATH... reported as set by cluster per worker.
//! - `max_memory_restart` -> `maxMemoryUsage` (`"<n>G"`/`"<n>M"`/`"<n>K"`) + `restartOnHighMemory:
//!   true`; absent or 0 -> `restartOnHighMemory: false`, `health.hardMemoryLimit: 0` (PM2
//!   never restarts on memory then, and our 768 MB default hard limit would kill big apps).
//! - `kill_timeout` -> `gracefulShutdownTimeout` (note: SIGTERM, not PM2's SIGINT);
//!   `listen_timeout` -> `startTimeout` (a late worker is replaced, PM2 calls it ready);
//!   `wait_ready: true` -> `health.nodeIpc: true` (`process.send('ready')` is understood, but
//!   a port accepting also counts: set `healthCheckPath` to gate on the app).
//! - `log_file` (else `out_file`) -> `logFile` (written with `--detach`); `error_file`
//!   reported (one merged log); `uid`/`user` -> `user`, `gid` -> `group`.
//! - Built in: exec_mode cluster/fork, autorestart true, merge_logs true, treekill true
//!   (the worker's process group is signalled), autostart true, watch false.
//! - Not carried over (each listed with why): name, namespace, cron_restart (run `cluster
//!   reload` from cron), watch/ignore_watch/watch_delay (`cluster dev --watch/--ignore/
//!   --debounce`), min_uptime/max_restarts/restart_delay/exp_backoff_restart_delay (fixed
//!   back-off: 250 ms doubling to 30 s after exits within 10 s, never gives up),
//!   stop_exit_codes, shutdown_with_message, log_date_format/time/log_type/disable_logs,
//!   pid_file, filter_env, increment_var/instance_var, source_map_support, the
//!   pmx/trace/vizion/io family, `deploy`, unknown keys, shadowed aliases, and every value
//!   JSON cannot hold (from `evaluate.js`'s `nonJson`).
//! - Several apps: `--app NAME`; else the only one in cluster mode (as PM2 resolves it), the
//!   others listed; else an error listing the names. `.yml`/`.yaml` can be parsed in Rust
//!   (`serde_norway`), `.json` first with serde_json, then through node.
#![allow(dead_code)]

pub(crate) mod pm2_keys;
pub(crate) mod pm2_values;

/// The Node snippet run with `node -e` to evaluate an ecosystem file (see its header).
pub(crate) const EVALUATE_JS: &str = include_str!("evaluate.js");

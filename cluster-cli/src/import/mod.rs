//! `cluster import pm2`: writes `cluster.config.json` from a PM2 ecosystem file.
//!
//! The parts: [`evaluate`] runs `evaluate.js`, the Node snippet that evaluates an ecosystem
//! file as PM2 does and reports the values JSON cannot hold and the environment variables it
//! read (YAML is read here); [`select`] picks the app (`--app`); [`pm2_keys`], PM2 7's
//! options and aliases; [`pm2_values`], PM2's value forms (argument strings, memory sizes,
//! instance counts); [`pm2_map`] (with [`pm2_command`], [`pm2_env`], [`pm2_runtime`] and
//! [`pm2_dropped`]), the pure mapping to our configuration and its [`report`]; [`mod@write`],
//! the check through the real configuration loader and the writing. docs/pm2.md is the user's version of this.
//!
//! The mapping (PM2 7.0.4 sources checked: `lib/Common.js`, `lib/God.js`,
//! `lib/API/schema.json`), a pure function of the app's JSON ([`pm2_map::map_app`]):
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
//! - `env` (+ `env_<NAME>` over it with `--env NAME`; a
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
//! - Several apps: `--app NAME` is required (an error lists the names). `.yml`/`.yaml` are
//!   parsed in Rust (`serde_norway`), `.json` (a JavaScript object literal for PM2) and
//!   JavaScript through node.
//! - Values PM2 itself rejects (its schema's types, `exec_mode`, `max_memory_restart`'s
//!   form) are errors; the written file is loaded by the real configuration loader first.

mod evaluate;
mod pm2_command;
mod pm2_dropped;
mod pm2_env;
mod pm2_keys;
mod pm2_map;
mod pm2_runtime;
mod pm2_values;
mod report;
mod select;
mod write;

pub(crate) use write::run_pm2;

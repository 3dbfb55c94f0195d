//! The PM2 options that have no equivalent in `cluster`, each with why and what to do
//! instead: what `cluster import pm2` prints for them and docs/pm2.md lists.

/// Why the PM2 option `name` (canonical spelling) is not carried over, and what to do
/// instead; `None` for the options the mapping carries over.
pub(crate) fn no_equivalent(name: &str) -> Option<&'static str> {
    Some(match name {
        "name" | "name_prefix" | "namespace" | "append_env_to_name" => {
            "a configuration runs one app, so it needs no name; run each app from its own \
             directory (or its own `runtimeDir`) to run several side by side"
        }
        "filter_env" => {
            "workers inherit the environment `cluster` is started with, plus `env`; start it \
             with `env -u VAR cluster start` to leave variables out"
        }
        "install_url" | "post_update" | "force" | "execute_command" | "username" | "write" => {
            "PM2 internals or CLI behaviour with no meaning for cluster"
        }
        "disable_logs" | "log_type" | "log_date_format" | "time" => {
            "workers' output goes to the cluster's log, each line prefixed with [wN]; there is \
             no per-line date or JSON log format (the access log has one: \
             `security.enableRequestLogging` with `accessLog.format: \"json\"`)"
        }
        "pid_file" => {
            "cluster keeps one pid file, the primary's (`runtimeDir`/cluster.pid); workers' \
             pids are in `cluster status`"
        }
        "restart_delay" | "exp_backoff_restart_delay" | "min_uptime" | "max_restarts" => {
            "cluster's restart back-off is fixed: a worker that exits within 10 s of starting \
             is replaced at once the first time, then after 250 ms doubling up to 30 s; it \
             never gives up (PM2 stops after max_restarts)"
        }
        "source_map_support" | "disable_source_map_support" => {
            "add `--enable-source-maps` to node's arguments (`args` before the script) for \
             source-mapped stack traces"
        }
        "shutdown_with_message" => {
            "cluster stops a worker with SIGTERM (after draining its requests); handle \
             `process.on('SIGTERM')`"
        }
        "cron_restart" => {
            "run `cluster reload` (a rolling restart, no request lost) from cron or a systemd \
             timer"
        }
        "vizion"
        | "pmx"
        | "automation"
        | "trace"
        | "disable_trace"
        | "v8"
        | "event_loop_inspector"
        | "deep_monitoring"
        | "io" => {
            "PM2.io/Keymetrics monitoring; cluster serves Prometheus metrics at \
             /api/admin/cluster/metrics, live events at /api/admin/cluster/events, and \
             `cluster top`"
        }
        "stop_exit_codes" => {
            "cluster replaces every worker that exits while it runs, whatever its exit code"
        }
        "watch" | "ignore_watch" | "watch_options" | "watch_delay" => {
            "use `cluster dev` in development: a rolling restart on every change (`--watch \
             DIR`, `--ignore GLOB`, `--debounce MS`)"
        }
        "increment_var" => {
            "cluster gives each worker its own PORT already; use CLUSTER_WORKER_ID or \
             NODE_APP_INSTANCE to tell workers apart"
        }
        "instance_var" => {
            "cluster sets NODE_APP_INSTANCE (0, 1, ...) and CLUSTER_WORKER_ID in each worker; \
             read one of those"
        }
        "windowsHide" => "Windows only; cluster runs on Linux",
        "kill_retry_time" => {
            "cluster sends SIGTERM once and SIGKILL after `gracefulShutdownTimeout`"
        }
        "merge_logs" => {
            "cluster always merges the workers' output into one log, each line prefixed with \
             [wN]"
        }
        "autorestart" => {
            "cluster always replaces a worker that exits: there is no run-once mode; run \
             one-shot jobs with systemd or cron"
        }
        "autostart" => "cluster starts every worker when it starts",
        "treekill" => "cluster always signals the worker's whole process group (its children too)",
        "error_file" => {
            "one log: workers' stderr lines go to the same log as stdout (`logFile`, written \
             with `cluster start --detach`)"
        }
        "out_file" => "`log_file` is used for `logFile`; there is one log",
        "log_file" => "PM2's default log path; cluster writes `logFile` (logs/cluster.log)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pm2_option_is_mapped_or_explained() {
        // What the mapping carries over itself (see pm2_map.rs).
        let mapped = [
            "script",
            "cwd",
            "args",
            "exec_interpreter",
            "node_args",
            "env",
            "max_memory_restart",
            "instances",
            "kill_timeout",
            "listen_timeout",
            "wait_ready",
            "exec_mode",
            "port",
            "uid",
            "gid",
        ];
        for name in super::super::pm2_keys::names() {
            assert!(
                mapped.contains(&name) || no_equivalent(name).is_some(),
                "PM2's `{name}` is neither mapped nor explained"
            );
        }
    }
}

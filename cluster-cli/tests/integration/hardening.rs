//! Worker hardening with real processes: the account a worker runs as, its resource limits
//! and CPU affinity, read back from `/proc/<pid>`; the refusals; the cgroup memory limit (its
//! real path where `/sys/fs/cgroup` is a writable cgroup v2 tree, its notice elsewhere).
//!
//! Most of these need root (the primary must be root to run workers as `nobody`). Outside CI
//! they skip with a printed reason when not root; in CI (`CI` set) they fail instead.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{Cluster, ShutdownMode};

use crate::util::{ClusterCmd, ClusterProc, alive, get, hello_bin, node_server};

const NOBODY: u32 = 65534;

/// Whether this test can run: true as root; otherwise prints why it skips (or fails in CI).
fn root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs root (workers run as nobody), and CI runs as root"
    );
    println!("skipped {test}: needs root to run workers as another user");
    false
}

/// Opens the scratch folder to every user (whatever the umask made it): it is the workers'
/// working directory, which `nobody` must be able to enter.
fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

/// A copy of `program` in `dir`, so that `nobody` can run it wherever the build put it (a
/// target directory under `/root` is closed to other users).
fn copy_into(dir: &Path, program: &Path) -> PathBuf {
    let copy = dir.join(program.file_name().expect("file name"));
    std::fs::copy(program, &copy).expect("copy program");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy
}

/// `(slot, pid)` of every worker the log reports ready.
fn ready_workers(proc: &ClusterProc) -> Vec<(usize, u32)> {
    proc.log()
        .iter()
        .filter_map(|line| {
            let rest = line.split("worker ").nth(1)?;
            let (slot, rest) = rest.split_once(" ready: pid ")?;
            Some((slot.parse().ok()?, rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// The value of `field` in `/proc/<pid>/status`, whitespace collapsed.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find_map(|l| l.strip_prefix(field)).unwrap_or_default();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Soft and hard values of the limit named `name` in `/proc/<pid>/limits`.
fn limit(pid: u32, name: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits.lines().find(|l| l.starts_with(name)).expect("limit line");
    let mut values = line[name.len()..].split_whitespace();
    (values.next().unwrap().to_owned(), values.next().unwrap().to_owned())
}

/// The CPUs in a `Cpus_allowed_list` value (`0-2,4`).
fn cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

#[tokio::test]
async fn workers_run_as_nobody_with_their_limits_and_cpus() {
    if !root("workers_run_as_nobody_with_their_limits_and_cpus") {
        return;
    }
    let workers = 3;
    let cmd = ClusterCmd::start(&["--workers", &workers.to_string()]);
    open_to_all(cmd.dir());
    let hello = copy_into(cmd.dir(), &hello_bin());
    let config = format!(
        r#"{{"command": "{}", "user": "nobody", "group": "nogroup", "cpuAffinity": true,
            "limits": {{"nofile": 4096, "core": 0}}}}"#,
        hello.display()
    );
    let proc = cmd.config(&config).spawn(workers);

    let allowed = cpu_list(&status_field(std::process::id(), "Cpus_allowed_list:"));
    let passwd = Command::new("getent").args(["passwd", "nobody"]).output().expect("getent");
    let home = String::from_utf8_lossy(&passwd.stdout).trim().split(':').nth(5).unwrap().to_owned();
    let mut seen = ready_workers(&proc);
    seen.sort_unstable();
    assert_eq!(seen.len(), workers, "{:?}", proc.log());
    for (slot, pid) in seen {
        // Real, effective, saved and file-system ids all dropped; no group of root's left.
        assert_eq!(status_field(pid, "Uid:"), format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}"));
        assert_eq!(status_field(pid, "Gid:"), format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}"));
        assert_eq!(status_field(pid, "Groups:"), NOBODY.to_string());
        assert_eq!(limit(pid, "Max open files"), ("4096".into(), "4096".into()));
        assert_eq!(limit(pid, "Max core file size"), ("0".into(), "0".into()));
        let pinned = allowed[slot % allowed.len()];
        assert_eq!(status_field(pid, "Cpus_allowed_list:"), pinned.to_string(), "slot {slot}");
        // The account's own environment, not root's.
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        let home_var = format!("HOME={home}");
        assert!(vars.contains(&home_var.as_bytes()), "HOME of nobody");
        assert!(vars.contains(&&b"USER=nobody"[..]), "USER of nobody");
    }
    // And they serve: each bound its port and answers through the proxy.
    for _ in 0..workers * 2 {
        let (status, body) = get(proc.addr, "/").await;
        assert_eq!(status, 200, "{body:?}");
    }
}

#[tokio::test]
async fn a_node_worker_as_nobody_keeps_its_ipc_channel_logs_and_heartbeats() {
    if !root("a_node_worker_as_nobody_keeps_its_ipc_channel_logs_and_heartbeats") {
        return;
    }
    let dir = tempfile::tempdir().expect("scratch dir");
    open_to_all(dir.path());
    let server = copy_into(dir.path(), &node_server());
    let config = dir.path().join("cluster.config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"workers": 1, "host": "127.0.0.1", "port": 0, "command": "node",
                "args": ["{}"], "cwd": "{}", "user": "nobody", "healthCheckPath": "/not-a-route",
                "startTimeout": 15000, "unresponsiveTimeout": 60000}}"#,
            server.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let mut o = Overrides::default();
    o.config_path = Some(config);
    let path = std::env::var("PATH").unwrap_or_default();
    let spec = config::load(&o, &Environment::from_vars([("PATH", path)])).expect("config").spec;
    // No spawner given: the cluster builds one from the spec, with its hardening.
    let cluster = Cluster::builder(spec).build().await.expect("build");
    let handle = cluster.handle();
    let run = tokio::spawn(cluster.run());

    // Ready although its probe fails: it said so over its IPC channel (fd 3), as nobody.
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker = loop {
        let status = handle.status().await.expect("status");
        let beating = status.workers.iter().find(|w| {
            w.heartbeat_status.as_deref().is_some_and(|s| s.starts_with("serving on"))
                && w.last_heartbeat_ms_ago.is_some_and(|ms| ms < 2000)
        });
        if let Some(w) = beating {
            break w.clone();
        }
        assert!(Instant::now() < deadline, "no heartbeat over IPC: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status_field(worker.pid, "Uid:"), format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}"));
    let (status, body) = get(handle.local_addr(), "/").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"hello from node worker 0"), "{body:?}");

    handle.shutdown(ShutdownMode::Graceful).expect("shutdown");
    tokio::time::timeout(Duration::from_secs(20), run).await.expect("stops").unwrap().unwrap();
}

#[test]
fn no_worker_running_as_nobody_outlives_a_killed_primary() {
    if !root("no_worker_running_as_nobody_outlives_a_killed_primary") {
        return;
    }
    let cmd = ClusterCmd::start(&["--workers", "2"]);
    open_to_all(cmd.dir());
    let hello = copy_into(cmd.dir(), &hello_bin());
    let config = format!(r#"{{"command": "{}", "user": "nobody"}}"#, hello.display());
    let mut proc = cmd.config(&config).spawn(2);
    let pids: Vec<u32> = ready_workers(&proc).into_iter().map(|(_, pid)| pid).collect();
    proc.signal(rustix::process::Signal::KILL);
    proc.wait_exit(Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "workers {pids:?} outlived the primary");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_reload_takes_new_limits_to_the_next_generation() {
    if !root("a_reload_takes_new_limits_to_the_next_generation") {
        return;
    }
    let cmd = ClusterCmd::start(&["--workers", "2"]);
    open_to_all(cmd.dir());
    let hello = copy_into(cmd.dir(), &hello_bin());
    let config = |nofile: u32| {
        format!(
            r#"{{"command": "{}", "user": "nobody", "limits": {{"nofile": {nofile}}}}}"#,
            hello.display()
        )
    };
    let proc = cmd.config(&config(4096)).spawn(2);
    let first: Vec<u32> = ready_workers(&proc).into_iter().map(|(_, pid)| pid).collect();
    std::fs::write(proc.dir().join("cluster.config.json"), config(2048)).unwrap();
    proc.signal(rustix::process::Signal::USR2);
    proc.wait_for_line(
        "configuration reloaded: limits.nofile 4096 -> 2048 (applies from the next rolling restart)",
        Duration::from_secs(10),
    );
    // Running workers keep what they were started with.
    for &pid in &first {
        assert_eq!(limit(pid, "Max open files"), ("4096".into(), "4096".into()));
    }
    proc.signal(rustix::process::Signal::HUP);
    proc.wait_for_count(" ready: pid ", 4, Duration::from_secs(30));
    let replacements: Vec<u32> = ready_workers(&proc)
        .into_iter()
        .map(|(_, pid)| pid)
        .filter(|p| !first.contains(p))
        .collect();
    assert_eq!(replacements.len(), 2, "{:?}", proc.log());
    for pid in replacements {
        assert_eq!(limit(pid, "Max open files"), ("2048".into(), "2048".into()));
        assert_eq!(status_field(pid, "Uid:"), format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}"));
    }
}

#[test]
fn a_primary_that_is_not_root_refuses_another_user() {
    if !root("a_primary_that_is_not_root_refuses_another_user") {
        // Not root already: the refusal is the normal path.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster.config.json"), r#"{"user": "root"}"#).unwrap();
        let out = Command::new(crate::util::cluster_bin())
            .args(["start", "--port", "0", "--", "true"])
            .current_dir(dir.path())
            .output()
            .expect("run cluster");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("only root can run workers as another account"), "{stderr}");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        assert!(std::env::var_os("CI").is_none(), "setpriv (util-linux) is missing in CI");
        println!("skipped a_primary_that_is_not_root_refuses_another_user: no setpriv");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    open_to_all(dir.path());
    let cluster = copy_into(dir.path(), &crate::util::cluster_bin());
    std::fs::write(
        dir.path().join("cluster.config.json"),
        r#"{"user": "daemon", "limits": {"nofile": 4096}}"#,
    )
    .unwrap();
    // The primary itself as nobody, with no supplementary groups.
    let as_nobody = || {
        Command::new(&setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&cluster)
            .args(["start", "--host", "127.0.0.1", "--port", "0", "--", "true"])
            .current_dir(dir.path())
            .env("CLUSTER_RUNTIME_DIR", dir.path().join("run"))
            .output()
            .expect("run setpriv")
    };
    let out = as_nobody();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert!(
        stderr.contains(
            "cluster: `user` is set to daemon (1), but the primary runs as uid 65534, not as \
             root: only root can run workers as another account"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");

    // Nor can it raise a hard limit it inherited.
    let hard: u64 = limit(std::process::id(), "Max open files").1.parse().unwrap_or(u64::MAX);
    if hard < 65536 {
        let wanted = hard + 1;
        let config = format!(r#"{{"limits": {{"nofile": {wanted}}}}}"#);
        std::fs::write(dir.path().join("cluster.config.json"), config).unwrap();
        let out = as_nobody();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "exit status; stderr: {stderr}");
        let message = format!(
            "`limits.nofile` is set to {wanted}, above the primary's hard limit {hard}: only \
             root can raise it"
        );
        assert!(stderr.contains(&message), "{stderr}");
    }
}

#[test]
fn an_unknown_user_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.config.json"),
        r#"{"user": "no-such-user-zz9", "group": "no-such-group-zz9"}"#,
    )
    .unwrap();
    let out = Command::new(crate::util::cluster_bin())
        .args(["start", "--port", "0", "--", "true"])
        .current_dir(dir.path())
        .output()
        .expect("run cluster");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(r#"`user` from config file"#)
            && stderr.contains(r#""no-such-user-zz9" (no such user in the user database)"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#""no-such-group-zz9" (no such group in the group database)"#),
        "{stderr}"
    );
}

#[test]
fn a_working_directory_closed_to_the_user_fails_the_spawn_with_a_clear_error() {
    if !root("a_working_directory_closed_to_the_user_fails_the_spawn_with_a_clear_error") {
        return;
    }
    // The scratch folder, the workers' directory, closed to all but root.
    let cmd = ClusterCmd::start(&["--workers", "1"]);
    std::fs::set_permissions(cmd.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let hello = hello_bin();
    let config = format!(r#"{{"command": "{}", "user": "nobody"}}"#, hello.display());
    let proc = cmd.config(&config).launch();
    let line = proc.wait_for_line("as nobody (65534)", Duration::from_secs(20));
    assert!(line.contains("Permission denied"), "{line}");
    assert!(line.contains("working directory must be readable by that account"), "{line}");
}

/// The cgroup the test process is in, as a directory of the unified hierarchy, when
/// `/sys/fs/cgroup` is cgroup v2.
fn own_cgroup() -> Option<PathBuf> {
    let fs_type = Command::new("stat").args(["-fc", "%T", "/sys/fs/cgroup"]).output().ok()?;
    if String::from_utf8_lossy(&fs_type.stdout).trim() != "cgroup2fs" {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/')))
}

#[test]
fn memory_max_puts_each_worker_in_its_own_cgroup_or_says_once_why_not() {
    let cmd = ClusterCmd::start(&["--workers", "2"]);
    open_to_all(cmd.dir());
    let hello = copy_into(cmd.dir(), &hello_bin());
    let config =
        format!(r#"{{"command": "{}", "limits": {{"memoryMax": "64M"}}}}"#, hello.display());
    let cmd = cmd.config(&config);
    let v2 = own_cgroup();
    // The real path needs a group of the primary's own: cgroup v2 gives the memory controller
    // only to a group without processes, and ours holds the test runner. A sibling of ours
    // works where our parent delegates the memory controller.
    let sandbox = v2
        .as_ref()
        .filter(|_| rustix::process::geteuid().is_root())
        .and_then(|own| {
            own.parent().map(|p| p.join(format!("cluster-test-{}", std::process::id())))
        })
        .filter(|sandbox| std::fs::create_dir(sandbox).is_ok());
    let mut proc = match &sandbox {
        Some(group) => with_cgroup(cmd, group).spawn(2),
        None => cmd.spawn(2),
    };
    let notice = "limits.memoryMax is not applied: ";
    let notices = proc.count(notice);
    if notices > 0 {
        // cgroup v1 or hybrid, not root, or no writable tree: one notice, and the workers run.
        assert_eq!(notices, 1, "one notice: {:?}", proc.log());
        assert!(sandbox.is_none(), "a writable cgroup v2 group, yet: {:?}", proc.log());
        if v2.is_none() {
            proc.wait_for_line("is not a cgroup v2 (unified) hierarchy", Duration::from_secs(1));
        }
        assert_eq!(ready_workers(&proc).len(), 2, "the workers run without it");
        println!("memoryMax: the notice path was tested (no writable cgroup v2 tree here)");
        return;
    }
    assert!(v2.is_some(), "no notice without cgroup v2: {:?}", proc.log());
    let primary = proc.pid();
    let mut groups = Vec::new();
    for (_, pid) in ready_workers(&proc) {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::")).unwrap().trim();
        let name = rel.rsplit('/').next().unwrap();
        assert!(name.starts_with(&format!("cluster-{primary}-w")), "{rel}");
        let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        assert_eq!(std::fs::read_to_string(dir.join("memory.max")).unwrap().trim(), "67108864");
        groups.push(dir);
    }
    assert_eq!(groups.len(), 2);
    // A graceful stop removes the workers' groups.
    proc.signal(rustix::process::Signal::TERM);
    proc.wait_exit(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(5);
    while groups.iter().any(|g| g.exists()) {
        assert!(Instant::now() < deadline, "worker cgroups left: {groups:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("memoryMax: the cgroup v2 path was tested");
    if let Some(group) = &sandbox {
        remove_tree(group);
    }
}

/// Runs the primary inside `group` (a shell moves itself there, then execs the primary).
fn with_cgroup(cmd: ClusterCmd, group: &Path) -> ClusterCmd {
    cmd.wrap_with(&[
        "sh",
        "-c",
        &format!("echo $$ > {}/cgroup.procs && exec \"$@\"", group.display()),
        "sh",
    ])
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()).ok_or(())
}

#[tokio::test]
async fn workers_as_nobody_listen_on_unix_sockets_in_a_directory_of_theirs() {
    if !root("workers_as_nobody_listen_on_unix_sockets_in_a_directory_of_theirs") {
        return;
    }
    let cmd = ClusterCmd::start(&["--workers", "2"]);
    open_to_all(cmd.dir());
    let hello = copy_into(cmd.dir(), &hello_bin());
    let config =
        format!(r#"{{"command": "{}", "user": "nobody", "upstream": "unix"}}"#, hello.display());
    // root's own runtime directory is closed to nobody: the sockets go to the temp directory,
    // here the scratch folder (the primary is killed at the end, and leaves its directory).
    let scratch = cmd.dir().to_path_buf();
    let proc = cmd
        .config(&config)
        .env("XDG_RUNTIME_DIR", "/proc")
        .env("TMPDIR", &scratch.display().to_string())
        .spawn(2);
    for (_, pid) in ready_workers(&proc) {
        assert_eq!(status_field(pid, "Uid:"), format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}"));
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
        let socket = environ
            .split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(b"SOCKET_PATH="))
            .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
            .expect("SOCKET_PATH");
        let dir = socket.parent().unwrap();
        assert_eq!(dir.parent(), Some(scratch.as_path()), "{}", dir.display());
        let meta = std::fs::metadata(dir).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY, "given to nobody");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }
    for _ in 0..4 {
        let (status, body) = get(proc.addr, "/").await;
        assert_eq!(status, 200, "{body:?}");
    }
}

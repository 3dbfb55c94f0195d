//! `cluster dev`: saving a watched file replaces every worker through a rolling restart;
//! ignored paths do not; bursts are debounced; a bad `--ignore` pattern is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{ClusterCmd, ClusterProc, alive, hello_bin};

/// Generous bound for anything the cluster does on its own (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(30);

/// How long nothing must happen after a write the watcher has to ignore.
const QUIET: Duration = Duration::from_secs(2);

/// `cluster dev <args> -- hello` (two workers: dev mode's default).
fn dev(args: &[&str]) -> ClusterCmd {
    let hello = hello_bin().display().to_string();
    let mut all = args.to_vec();
    all.extend(["--", hello.as_str()]);
    ClusterCmd::dev(&all)
}

/// Starts `cmd` and waits for two ready workers and the file watcher.
fn spawn(cmd: ClusterCmd) -> ClusterProc {
    let cluster = cmd.spawn(2);
    cluster.wait_for_line("dev: watching ", WAIT);
    cluster
}

/// Writes `text` to `rel` under `dir`, creating the directories it needs.
fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
    std::fs::write(path, text).expect("write file");
}

/// The current worker of each slot: the last pid reported ready for it.
fn workers_by_slot(cluster: &ClusterProc) -> BTreeMap<u32, u32> {
    let mut slots = BTreeMap::new();
    for line in cluster.log() {
        let Some((before, after)) = line.split_once(" ready: pid ") else { continue };
        let slot = before.rsplit(' ').next().and_then(|s| s.parse().ok());
        let pid = after.split_whitespace().next().and_then(|p| p.parse().ok());
        if let (Some(slot), Some(pid)) = (slot, pid) {
            slots.insert(slot, pid);
        }
    }
    slots
}

/// The watcher's `dev: <path> changed: rolling restart` lines.
fn change_lines(cluster: &ClusterProc) -> Vec<String> {
    cluster.log().into_iter().filter(|l| l.contains("dev: ") && l.contains(" changed")).collect()
}

/// Waits `QUIET` and asserts that no change was seen and no rolling restart started.
fn assert_stays_quiet(cluster: &ClusterProc, what: &str) {
    std::thread::sleep(QUIET);
    let log = cluster.log().join("\n");
    assert!(change_lines(cluster).is_empty(), "{what} was taken for a change:\n{log}");
    assert_eq!(cluster.count("rolling restart"), 0, "{what} restarted the workers:\n{log}");
}

/// Waits until none of `pids` is alive.
fn wait_gone(cluster: &ClusterProc, pids: &[u32]) {
    let deadline = Instant::now() + WAIT;
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "old workers {pids:?} still alive; log:\n{}",
            cluster.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn saving_a_watched_file_replaces_every_worker() {
    let cmd = dev(&["--debounce", "200"]);
    write(cmd.dir(), "src/app.txt", "v1");
    let cluster = spawn(cmd);
    let before = workers_by_slot(&cluster);
    assert_eq!(before.len(), 2, "dev mode runs 2 workers by default: {before:?}");

    write(cluster.dir(), "src/app.txt", "v2");
    let line = cluster.wait_for_line("dev: rolling restart #1 done", WAIT);
    assert!(line.contains("2 workers replaced"), "{line}");
    let changes = change_lines(&cluster);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].contains("src/app.txt changed: rolling restart"), "{changes:?}");

    // Both slots have new workers, and the old ones are gone.
    cluster.wait_for_count(" ready: pid ", 4, WAIT);
    let after = workers_by_slot(&cluster);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (slot, pid) in &before {
        assert_ne!(after[slot], *pid, "worker {slot} was not replaced: {before:?} -> {after:?}");
    }
    wait_gone(&cluster, &before.values().copied().collect::<Vec<_>>());
}

#[test]
fn ignored_paths_do_not_restart_and_new_directories_are_watched() {
    let cmd = dev(&["--debounce", "200"]);
    write(cmd.dir(), "src/app.txt", "v1");
    write(cmd.dir(), "node_modules/pkg/index.js", "v1");
    write(cmd.dir(), ".git/HEAD", "v1");
    let cluster = spawn(cmd);
    let before = workers_by_slot(&cluster);
    let dir = cluster.dir();

    // Dependencies, version control, logs, and an ignored directory created after start.
    write(dir, "node_modules/x", "v2");
    write(dir, "node_modules/pkg/index.js", "v2");
    write(dir, ".git/y", "v2");
    write(dir, "server.log", "v2");
    write(dir, "src/server.log", "v2");
    write(dir, "target/debug/app", "v2");
    assert_stays_quiet(&cluster, "a write to an ignored path");
    write(dir, "target/debug/app", "v3");
    write(dir, "server.log", "v3");
    assert_stays_quiet(&cluster, "a second write to an ignored path");
    assert_eq!(workers_by_slot(&cluster), before);
    assert_eq!(cluster.count(" ready: pid "), 2);

    // A directory created after start is a change in its parent, and is watched from then on.
    std::fs::create_dir_all(dir.join("src/new")).expect("mkdir");
    cluster.wait_for_line("dev: rolling restart #1 done", WAIT);
    write(dir, "src/new/deep.txt", "v1");
    cluster.wait_for_line("dev: rolling restart #2 done", WAIT);
    let changes = change_lines(&cluster);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes[0].contains("src/new changed: rolling restart"), "{changes:?}");
    assert!(changes[1].contains("src/new/deep.txt changed: rolling restart"), "{changes:?}");
}

#[test]
fn a_burst_of_saves_makes_one_restart_and_a_save_during_a_restart_one_more() {
    // Workers that take 1.5 s to start make a rolling restart last at least 3 s, so a save
    // made when it has started lands while it runs. A long debounce keeps the burst whole
    // however slowly this thread is scheduled.
    let cmd = dev(&["--debounce", "1000"]).env("HELLO_START_DELAY_MS", "1500");
    write(cmd.dir(), "src/app.txt", "v0");
    let cluster = spawn(cmd);
    let first = workers_by_slot(&cluster);
    let dir = cluster.dir();

    for i in 1..=5 {
        write(dir, "src/app.txt", &format!("v{i}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    write(dir, "src/b.txt", "v1");
    cluster.wait_for_line("rolling restart #1 started", WAIT);

    write(dir, "src/app.txt", "during");
    assert_eq!(
        cluster.count("rolling restart #1 done"),
        0,
        "the save was meant to land during restart #1; log:\n{}",
        cluster.log().join("\n")
    );
    cluster.wait_for_line("dev: rolling restart #2 done", 2 * WAIT);

    // Nothing more comes: the burst made one restart, the save during it one more.
    std::thread::sleep(QUIET);
    let log = cluster.log().join("\n");
    assert_eq!(cluster.count("rolling restart #3"), 0, "{log}");
    let changes = change_lines(&cluster);
    assert_eq!(changes.len(), 2, "{log}");
    assert!(changes[0].contains("src/app.txt changed (and 1 more): rolling restart"), "{log}");
    assert!(changes[1].contains("src/app.txt changed: rolling restart"), "{log}");
    wait_gone(&cluster, &first.values().copied().collect::<Vec<_>>());
}

#[test]
fn the_primarys_own_output_file_does_not_restart_it() {
    // `cluster dev > dev.out` in the project folder: the workers' output lines land in a
    // watched file, which must not start the restart loop it would otherwise feed.
    let cmd = dev(&["--debounce", "200"]).stdout_to_file("dev.out");
    write(cmd.dir(), "src/app.txt", "v1");
    let cluster = spawn(cmd);
    assert_stays_quiet(&cluster, "the workers' output in ./dev.out");

    write(cluster.dir(), "src/app.txt", "v2");
    cluster.wait_for_line("dev: rolling restart #1 done", WAIT);
    std::thread::sleep(QUIET);
    let log = cluster.log().join("\n");
    assert_eq!(cluster.count("rolling restart #2"), 0, "{log}");
    let out = std::fs::read_to_string(cluster.dir().join("dev.out")).expect("read dev.out");
    assert!(out.matches("[w0] ").count() >= 2, "new workers wrote to dev.out: {out}");
}

#[test]
fn a_bad_ignore_pattern_is_refused() {
    let mut cluster = dev(&["--ignore", "a["]).launch();
    let status = cluster.wait_exit(WAIT);
    let line = cluster.wait_for_line("a[", WAIT);
    assert_eq!(status.code(), Some(2), "{}", cluster.log().join("\n"));
    assert!(line.contains("--ignore"), "{line}");
    assert_eq!(cluster.count("listening on"), 0, "{}", cluster.log().join("\n"));
}

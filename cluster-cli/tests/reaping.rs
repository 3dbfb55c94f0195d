//! The primary leaves no zombie behind: after a clean stop it has waited for every process
//! it started, the workers and the guardian.
//!
//! This is its own test binary because it makes the test process a child subreaper: a
//! process orphaned by the primary is then reparented to this process instead of init, where
//! the test can see it. A subreaper is a property of the whole process, so no other test may
//! share it.

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "integration/util.rs"]
mod util;

use util::{ClusterCmd, Worker};

/// A child of this process: pid, state letter (`Z` for a zombie) and command name.
struct Child {
    pid: u32,
    state: String,
    comm: String,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}) in state {}", self.pid, self.comm, self.state)
    }
}

/// Every process whose parent is this process.
fn children() -> Vec<Child> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid ...`; the command name may contain spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.get(1) == Some(&me.as_str()) {
            let comm = stat[open + 1..close].to_owned();
            found.push(Child { pid, state: rest[0].to_owned(), comm });
        }
    }
    found
}

/// On drop, kills and reaps every child of this process still there, so that a failing run
/// leaves nothing behind either.
struct ReapAll;

impl Drop for ReapAll {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = children();
            if left.is_empty() || Instant::now() > deadline {
                return;
            }
            for child in left {
                let Some(pid) = Pid::from_raw(child.pid as i32) else { continue };
                if child.state != "Z" {
                    let _ = rustix::process::kill_process(pid, Signal::KILL);
                }
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_clean_stop_leaves_no_zombie_and_no_process_behind() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .expect("make the test process a child subreaper");
    // Declared first, dropped last: after the cluster's own cleanup.
    let _reap = ReapAll;

    let mut cluster = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let workers = cluster.worker_pids();
    cluster.signal(Signal::TERM);
    let status = cluster.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}; log:\n{}", cluster.log().join("\n"));

    // The primary is reaped. Anything it started and did not wait for is now our child:
    // a zombie if it has exited, a live process if it has not. Give a process that is
    // still on its way out a moment to go.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = children();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = children();
    }
    assert!(
        left.is_empty(),
        "the primary left these behind (state Z: an exited process nobody waited for; \
         workers were {workers:?}): {left:?}\nlog:\n{}",
        cluster.log().join("\n")
    );
}

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

#[path = "common/children.rs"]
mod children;

use children::ProcEntry;
use util::{ClusterCmd, Worker};

/// Every process whose parent is this process.
fn children() -> Vec<ProcEntry> {
    children::children_of(std::process::id())
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
                if child.state != 'Z' {
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

//! Real-process tests of the procfs sampler and the CPU tracker.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::*;
use crate::CpuTracker;

/// A child in its own process group; the whole group is killed and reaped on drop.
struct Group(Child);

impl Group {
    fn spawn(script: &str) -> Group {
        let child = Command::new("sh").arg("-c").arg(script).process_group(0).spawn().unwrap();
        Group(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ =
            Command::new("kill").arg("-KILL").arg("--").arg(format!("-{}", self.pid())).status();
        let _ = self.0.wait();
    }
}

#[test]
fn counts_the_descendants_of_a_worker() {
    let group = Group::spawn("sleep 5 & sleep 5");
    let sampler = ProcfsSampler::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let sample = loop {
        let s = sampler.sample(group.pid()).unwrap();
        if s.processes >= 3 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // sh, the background sleep and the foreground sleep (2 where sh execs the last command).
    assert!(sample.processes >= 2, "{sample:?}");
    // The tree holds more memory than the worker's own process.
    let table = sampler.scan().unwrap();
    let own = table.get(group.pid()).unwrap().rss_bytes;
    assert!(sample.rss_bytes > own, "tree {} bytes, root alone {own} bytes", sample.rss_bytes);
    // One scan serves several workers, in order, and names the missing one.
    let many = sampler.sample_many(&[group.pid(), u32::MAX - 1]);
    assert!(many[0].as_ref().unwrap().processes >= 2);
    assert_eq!(many[1], Err(SampleError::NotFound { pid: u32::MAX - 1 }));
}

/// `ps -o %cpu`'s computation: CPU time over the time since the process started, from /proc.
fn ps_style_cpu_percent(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // Fields after the command start at field 3 (state), so field N is at index N - 3.
    let ticks: f64 =
        fields[14 - 3].parse::<f64>().unwrap() + fields[15 - 3].parse::<f64>().unwrap();
    let start: f64 = fields[22 - 3].parse().unwrap();
    let hz = procfs::ticks_per_second() as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    100.0 * (ticks / hz) / (uptime - start / hz)
}

#[test]
fn cpu_percent_of_a_busy_worker_matches_ps() {
    let group = Group::spawn("while :; do :; done");
    let sampler = ProcfsSampler::new();
    let mut tracker = CpuTracker::new(Duration::from_secs(5));
    let first = sampler.sample(group.pid()).unwrap();
    assert_eq!(tracker.update(first.cpu_time, Instant::now()), None);
    std::thread::sleep(Duration::from_millis(1000));
    let second = sampler.sample(group.pid()).unwrap();
    let reading = tracker.update(second.cpu_time, Instant::now()).unwrap();
    let ps = ps_style_cpu_percent(group.pid());
    assert!(
        (reading.percent - ps).abs() <= 10.0,
        "tracker {:.1} % against ps-style {ps:.1} %",
        reading.percent
    );
    // A busy loop on a machine loaded by other builds got 19 % of a core: the bound only has
    // to tell a running loop from an idle process (which reads 0).
    assert!(reading.percent > 5.0, "a busy loop should use CPU: {reading:?}");
}

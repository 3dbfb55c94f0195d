//! A lean reader of `/proc/<pid>/stat` for the once-per-tick scan of every process.
//!
//! The `procfs` crate opens each process's directory, reads `stat` into a new `String` and
//! parses all 52 fields into a struct; the health tick needs 7 of them for every process on
//! the host. This reader opens `stat` by path with one reused buffer and parses only those
//! fields, about twice as fast per process (measured in `benches/benches/sample.rs`), which
//! matters once there are hundreds of workers and the host runs thousands of processes.

use std::fs::File;
use std::io::{self, Read};
use std::time::Duration;

use crate::ProcessEntry;

/// The fields of `/proc/<pid>/stat` the health tick needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatFields {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    pub(crate) ticks: u64,
    /// Resident set size, in pages.
    pub(crate) rss_pages: u64,
}

impl StatFields {
    /// The entry the process table keeps for this process.
    pub(crate) fn entry(&self, page_size: u64, ticks_per_second: u64) -> ProcessEntry {
        ProcessEntry {
            pid: self.pid,
            ppid: self.ppid,
            rss_bytes: self.rss_pages.saturating_mul(page_size),
            cpu_time: ticks_to_duration(self.ticks, ticks_per_second),
        }
    }
}

/// Parses one `stat` line. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so the fields after it are found from the last `)`.
pub(crate) fn parse(line: &[u8]) -> Option<StatFields> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let pid = number(line[..open].trim_ascii())?;
    // Fields from 3 (state) on; index 0 here is field 3.
    let mut rest = line.get(close + 1..)?.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let mut field = |n: usize| rest.nth(n);
    let ppid = number(field(1)?)?; // field 4
    let utime = number(field(9)?)?; // field 14
    let stime = number(field(0)?)?; // field 15
    let cutime = signed(field(0)?)?; // field 16
    let cstime = signed(field(0)?)?; // field 17
    let rss = signed(field(6)?)?; // field 24
    Some(StatFields {
        pid: u32::try_from(pid).ok()?,
        ppid: u32::try_from(ppid).ok()?,
        ticks: utime + stime + cutime + cstime,
        rss_pages: rss,
    })
}

/// Reads and parses `/proc/<pid>/stat`, reusing `buf`. `None` when the process is gone (it
/// exited between the directory listing and the read) or the line does not parse.
pub(crate) fn read(pid: u32, buf: &mut Vec<u8>) -> io::Result<Option<StatFields>> {
    let path = format!("/proc/{pid}/stat");
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    buf.clear();
    match file.read_to_end(buf) {
        Ok(_) => Ok(parse(buf)),
        // ESRCH: the process exited after the open.
        Err(e) if e.raw_os_error() == Some(3) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Clock ticks to a duration without float rounding.
fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let secs = ticks / per_second;
    let rest = ticks % per_second;
    Duration::from_secs(secs) + Duration::from_nanos(rest * 1_000_000_000 / per_second)
}

fn number(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    field.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A signed field (cutime, cstime and rss are `long`); negative values count as zero.
fn signed(field: &[u8]) -> Option<u64> {
    match field.strip_prefix(b"-") {
        Some(digits) => number(digits).map(|_| 0),
        None => number(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_name() {
        let line = b"4242 (we (ird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
            250 50 7 3 20 0 1 0 123 456789 1024 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 \
            17 1 0 0 0 0 0\n";
        let s = parse(line).expect("parses");
        assert_eq!(s, StatFields { pid: 4242, ppid: 17, ticks: 310, rss_pages: 1024 });
    }

    #[test]
    fn negative_child_times_count_as_zero() {
        let line = b"1 (init) S 0 1 1 0 -1 0 0 0 0 0 5 5 -1 -2 20 0 1 0 1 1 -3 0\n";
        let s = parse(line).expect("parses");
        assert_eq!((s.ticks, s.rss_pages), (10, 0));
    }

    #[test]
    fn a_truncated_or_garbled_line_is_none() {
        assert_eq!(parse(b"12 (x) S 1 2 3"), None);
        assert_eq!(parse(b"12 x S 1"), None);
        assert_eq!(parse(b"ab (x) S 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 1 1 3 0"), None);
    }

    #[test]
    fn reads_this_process() {
        let mut buf = Vec::new();
        let me = read(std::process::id(), &mut buf).unwrap().expect("this process exists");
        assert_eq!(me.pid, std::process::id());
        assert!(me.rss_pages > 0);
        assert_eq!(read(u32::MAX - 1, &mut buf).unwrap(), None);
    }
}

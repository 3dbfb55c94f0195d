//! Running the worker program with `LISTEN_PID` set to its own pid.
//!
//! The socket-activation protocol (`sd_listen_fds(3)`) ignores `LISTEN_FDS` unless
//! `LISTEN_PID` is the pid of the process reading it, so the value can only be written in the
//! child, after fork and before exec. The primary is multi-threaded: the child may not
//! allocate (another thread may have held the allocator's lock at the fork) and may not call
//! `setenv`. And std sets the child's `environ` to the command's environment only *after* the
//! `pre_exec` closures have run (`library/std/src/sys/process/unix/unix.rs`, `do_exec`), so a
//! closure cannot patch std's copy in place either.
//!
//! So the closure registered last execs the program itself: [`ExecWithPid`] holds, built in
//! the parent, the program's candidate paths, its argv and the complete environment the child
//! would get, with a fixed-width `LISTEN_PID=` entry; in the child, [`write_pid`] fills in the
//! digits of `getpid()` and `execve` runs the program. Every step before it (standard streams,
//! working directory, process group, the other closures) has already been done by std.

use std::ffi::{CString, OsStr, OsString, c_char, c_int};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

unsafe extern "C" {
    /// `execve(2)` from the C library.
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
    -> c_int;
}

/// The entry's name and `=`.
const PREFIX: &[u8] = b"LISTEN_PID=";

/// Room for the digits of any pid (`u32::MAX` has 10), then the NUL.
const DIGITS: usize = 10;

/// Writes `LISTEN_PID=<pid>` and a NUL into `entry`, which must be `PREFIX.len() + DIGITS + 1`
/// bytes long. Allocation-free, for the child between fork and exec.
pub(crate) fn write_pid(entry: &mut [u8], pid: u32) {
    debug_assert_eq!(entry.len(), PREFIX.len() + DIGITS + 1);
    entry[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; DIGITS];
    let mut n = pid;
    let mut start = DIGITS;
    loop {
        start -= 1;
        // `n % 10` is below 10: the cast cannot truncate.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = DIGITS - start;
    let at = PREFIX.len();
    entry[at..at + len].copy_from_slice(&digits[start..]);
    entry[at + len] = 0;
}

/// Everything the child needs to exec the program with `LISTEN_PID` set, allocated in the
/// parent. See the module documentation.
pub(crate) struct ExecWithPid {
    /// Where the program may be: the program itself when its name has a `/`, else each
    /// directory of the child's `PATH` joined with it, tried in order as `execvp` would.
    candidates: Vec<CString>,
    /// The owners of the argv strings.
    _argv: Vec<CString>,
    /// argv, NULL-terminated.
    argv_ptrs: Vec<*const c_char>,
    /// The owners of the environment strings, the `LISTEN_PID` entry excepted.
    _env: Vec<CString>,
    /// envp, NULL-terminated; the slot at `pid_slot` is pointed at `pid_entry` in the child.
    envp: Vec<*const c_char>,
    pid_slot: usize,
    /// `LISTEN_PID=` and room for the digits and the NUL.
    pid_entry: Vec<u8>,
}

// SAFETY: the raw pointers point into the `CString`s and the buffer this value owns, whose
// heap allocations never move; they are only read by `execve` in the child.
unsafe impl Send for ExecWithPid {}
// SAFETY: as for `Send`; the only method that writes takes `&mut self`.
unsafe impl Sync for ExecWithPid {}

impl std::fmt::Debug for ExecWithPid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecWithPid").field("candidates", &self.candidates).finish_non_exhaustive()
    }
}

impl ExecWithPid {
    /// The plan for `cmd` as it is now: its program, arguments and environment (the
    /// parent's, with the command's changes applied). Any `LISTEN_PID` in it is replaced.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when a string holds a NUL byte.
    pub(crate) fn new(cmd: &std::process::Command) -> io::Result<Self> {
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        for (key, value) in cmd.get_envs() {
            env.retain(|(k, _)| k != key);
            if let Some(value) = value {
                env.push((key.to_owned(), value.to_owned()));
            }
        }
        env.retain(|(k, _)| k != "LISTEN_PID");
        let path = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
        let candidates = candidates(cmd.get_program(), path.as_deref())?;
        let argv: Vec<CString> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(c_string)
            .collect::<io::Result<_>>()?;
        let env: Vec<CString> = env
            .iter()
            .map(|(k, v)| {
                let mut entry = k.clone();
                entry.push("=");
                entry.push(v);
                c_string(&entry)
            })
            .collect::<io::Result<_>>()?;
        let argv_ptrs =
            argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        let pid_slot = env.len();
        let envp =
            env.iter().map(|e| e.as_ptr()).chain([std::ptr::null(), std::ptr::null()]).collect();
        Ok(Self {
            candidates,
            _argv: argv,
            argv_ptrs,
            _env: env,
            envp,
            pid_slot,
            pid_entry: vec![0; PREFIX.len() + DIGITS + 1],
        })
    }

    /// In the child: writes `LISTEN_PID` and execs the program. Returns only on failure, with
    /// the error of the most telling candidate (`EACCES` over `ENOENT`, as `execvp` does).
    /// Allocates nothing.
    pub(crate) fn exec(&mut self) -> io::Error {
        let pid = rustix::process::getpid().as_raw_nonzero().get().unsigned_abs();
        write_pid(&mut self.pid_entry, pid);
        self.envp[self.pid_slot] = self.pid_entry.as_ptr().cast();
        let mut error = io::Error::from(io::ErrorKind::NotFound);
        for path in &self.candidates {
            // SAFETY: every pointer is to a NUL-terminated string owned by `self`, and both
            // arrays end with a null pointer. execve returns only on failure.
            unsafe { execve(path.as_ptr(), self.argv_ptrs.as_ptr(), self.envp.as_ptr()) };
            let e = io::Error::last_os_error();
            let errno = e.raw_os_error();
            if errno != Some(rustix::io::Errno::NOENT.raw_os_error())
                && errno != Some(rustix::io::Errno::NOTDIR.raw_os_error())
            {
                if errno != Some(rustix::io::Errno::ACCESS.raw_os_error()) {
                    return e;
                }
                error = e;
            } else if error.raw_os_error() != Some(rustix::io::Errno::ACCESS.raw_os_error()) {
                error = e;
            }
        }
        error
    }
}

/// The paths `program` may be at, as `execvp` searches them.
fn candidates(program: &OsStr, path: Option<&OsStr>) -> io::Result<Vec<CString>> {
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![c_string(program)?]);
    }
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|dir| {
            let dir = if dir.as_os_str().is_empty() { Path::new(".").to_owned() } else { dir };
            c_string(dir.join(program).as_os_str())
        })
        .collect()
}

fn c_string(s: impl AsRef<OsStr>) -> io::Result<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in a worker's command or environment",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32) -> String {
        let mut buf = vec![b'x'; PREFIX.len() + DIGITS + 1];
        write_pid(&mut buf, pid);
        let end = buf.iter().position(|&b| b == 0).expect("NUL-terminated");
        String::from_utf8(buf[..end].to_vec()).unwrap()
    }

    #[test]
    fn writes_the_digits_then_a_nul() {
        assert_eq!(entry(0), "LISTEN_PID=0");
        assert_eq!(entry(7), "LISTEN_PID=7");
        assert_eq!(entry(4_194_304), "LISTEN_PID=4194304");
        assert_eq!(entry(u32::MAX), "LISTEN_PID=4294967295");
    }

    #[test]
    fn a_bare_name_is_searched_in_path() {
        let found = candidates(OsStr::new("node"), Some(OsStr::new("/a:/b/c::"))).unwrap();
        let found: Vec<_> = found.iter().map(|c| c.to_str().unwrap().to_owned()).collect();
        assert_eq!(found, ["/a/node", "/b/c/node", "./node", "./node"]);
        let direct = candidates(OsStr::new("./bin/app"), Some(OsStr::new("/a"))).unwrap();
        assert_eq!(direct, [CString::new("./bin/app").unwrap()]);
    }

    #[test]
    fn the_environment_is_the_commands_with_room_for_the_pid() {
        let mut cmd = std::process::Command::new("true");
        cmd.env("LISTEN_PID", "1").env("CLUSTER_TEST_VAR", "yes").env_remove("HOME");
        let plan = ExecWithPid::new(&cmd).unwrap();
        let env: Vec<_> = plan._env.iter().map(|e| e.to_str().unwrap().to_owned()).collect();
        assert!(env.contains(&"CLUSTER_TEST_VAR=yes".to_owned()));
        assert!(!env.iter().any(|e| e.starts_with("LISTEN_PID=") || e.starts_with("HOME=")));
        assert_eq!(plan.envp.len(), plan.pid_slot + 2);
        assert!(plan.envp[plan.pid_slot + 1].is_null());
    }
}

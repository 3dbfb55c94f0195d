//! The log file of a detached primary: its stdout (workers' lines) and stderr (its own lines)
//! both go to one file, opened for appending, and reopened on SIGUSR1 so that logrotate can
//! move it away.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Opens `path` (creating it and its directory) and makes it the process's stdout and stderr.
///
/// # Errors
///
/// The OS error when the file cannot be opened or the descriptors replaced.
pub(crate) fn redirect(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    rustix::stdio::dup2_stdout(&file)?;
    rustix::stdio::dup2_stderr(&file)?;
    Ok(())
}

//! `cluster logs [-f] [-n N]`: the log file of a detached cluster, followed across
//! logrotate's moves (a new file at the path is picked up from its start).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How often a followed file is looked at.
const POLL: Duration = Duration::from_millis(200);

/// Prints the last `lines` lines of `path`, then, with `follow`, every line appended to it
/// until interrupted.
pub(crate) fn run(path: &Path, lines: usize, follow: bool) -> ExitCode {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "cluster: no log at {} ({e}); `cluster start --detach` writes it",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut out = io::stdout().lock();
    match tail(&mut file, lines) {
        Ok(text) => {
            let _ = out.write_all(text.as_bytes());
        }
        Err(e) => {
            eprintln!("cluster: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let _ = out.flush();
    drop(out);
    if follow {
        follow_file(path, file);
    }
    ExitCode::SUCCESS
}

/// The last `n` lines of `file`, which is left positioned at its end.
fn tail(file: &mut File, n: usize) -> io::Result<String> {
    let len = file.seek(SeekFrom::End(0))?;
    // Read back in chunks until enough newlines are seen.
    let mut start = len;
    let mut buf = Vec::new();
    while start > 0 && buf.iter().filter(|&&b| b == b'\n').count() <= n {
        let step = start.min(64 * 1024);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    file.seek(SeekFrom::Start(len))?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(n);
    let mut out = all[from..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Prints what is appended to `path` from `file`'s position on. When logrotate moved the
/// file away (another file at the path) or truncated it, what is left of the old one is
/// printed first, then the new one from its start. Lines that are not UTF-8 are printed with
/// replacement characters, not dropped.
fn follow_file(path: &Path, file: File) {
    let mut inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => {
                std::thread::sleep(POLL);
                let Ok(meta) = std::fs::metadata(path) else { continue };
                let pos = reader.stream_position().unwrap_or(0);
                let moved = meta.ino() != inode;
                if moved || meta.len() < pos {
                    // The old file is at its end (read_until returned 0): switch.
                    if let Ok(f) = File::open(path) {
                        inode = meta.ino();
                        reader = BufReader::new(f);
                        if !line.is_empty() {
                            // A last line the old file never finished.
                            emit(&line);
                            line.clear();
                        }
                    }
                }
            }
            Ok(_) if line.ends_with(b"\n") => {
                emit(&line);
                line.clear();
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn emit(line: &[u8]) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(String::from_utf8_lossy(line).as_bytes());
    if !line.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.log");
        let text: String = (1..=200_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let mut f = File::open(&path).unwrap();
        assert_eq!(tail(&mut f, 2).unwrap(), "line 199999\nline 200000\n");
        let mut f = File::open(&path).unwrap();
        assert_eq!(tail(&mut f, 0).unwrap(), "");
        std::fs::write(&path, "only\n").unwrap();
        let mut f = File::open(&path).unwrap();
        assert_eq!(tail(&mut f, 10).unwrap(), "only\n");
    }
}

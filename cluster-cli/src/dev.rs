//! `cluster dev`: the cluster, plus a watcher that runs a rolling restart whenever a source
//! file changes (the original design's `cluster:dev`).
//!
//! Directories are watched one by one (inotify on Linux, through the `notify` crate), skipping
//! ignored ones entirely, so a large `node_modules` costs no watch. Changes are debounced: a
//! burst of saves (an editor writing a temporary file, a build writing many) makes one
//! rolling restart, started once nothing has changed for the debounce time. A change that
//! comes while a restart runs makes one more restart after it. Ignored paths never count as a
//! change, nor postpone one; neither do the files the primary's own output goes to
//! (`cluster dev > dev.out`), which every new worker writes to.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster_core::{ClusterHandle, ControlError};
use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Names ignored wherever they appear in a path: dependencies, version control, build
/// caches and editor litter. `build/` is watched on purpose: it is what `node build` runs.
pub(crate) const DEFAULT_IGNORES: &[&str] = &[
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    "target",
    ".svelte-kit",
    ".next",
    ".cache",
    "__pycache__",
    "*.pyc",
    "*.log",
    "*.tmp",
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    ".DS_Store",
    "4913",
];

/// Longest a burst of changes may postpone its restart.
const MAX_DEBOUNCE: Duration = Duration::from_secs(5);

/// What to watch.
#[derive(Debug, Clone)]
pub(crate) struct WatchSpec {
    /// Directories watched, recursively.
    pub(crate) roots: Vec<PathBuf>,
    /// Patterns (globs) matched against each path component and against the path relative
    /// to its root; a match ignores the file or the whole directory.
    pub(crate) ignore: Vec<String>,
    /// Quiet time after the last change before the restart.
    pub(crate) debounce: Duration,
}

/// Which paths are ignored.
#[derive(Debug, Clone)]
pub(crate) struct Ignore {
    roots: Vec<PathBuf>,
    set: GlobSet,
    /// Files ignored by exact path: the primary's own output files.
    files: Vec<PathBuf>,
}

impl Ignore {
    /// The default ignores plus `extra`.
    ///
    /// # Errors
    ///
    /// A message naming the pattern that is not a valid glob.
    pub(crate) fn new(roots: &[PathBuf], extra: &[String]) -> Result<Self, String> {
        let mut builder = GlobSetBuilder::new();
        for pattern in DEFAULT_IGNORES.iter().copied().chain(extra.iter().map(String::as_str)) {
            let glob = Glob::new(pattern.trim_end_matches('/'))
                .map_err(|e| format!("invalid --ignore pattern {pattern:?}: {e}"))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| format!("invalid --ignore patterns: {e}"))?;
        Ok(Self { roots: roots.to_vec(), set, files: Vec::new() })
    }

    /// Also ignores `files`, by exact path.
    pub(crate) fn with_files(mut self, files: impl IntoIterator<Item = PathBuf>) -> Self {
        self.files.extend(files);
        self
    }

    /// Whether `path` (absolute, under one of the roots) is ignored.
    pub(crate) fn ignores(&self, path: &Path) -> bool {
        if self.files.iter().any(|f| f == path) {
            return true;
        }
        let rel = self.roots.iter().find_map(|r| path.strip_prefix(r).ok()).unwrap_or(path);
        self.set.is_match(rel) || rel.components().any(|c| self.set.is_match(c.as_os_str()))
    }
}

/// Starts watching `spec.roots` and runs a rolling restart through `handle` on every change,
/// until the cluster is gone.
///
/// # Errors
///
/// A message when a pattern is invalid or a root cannot be watched.
pub(crate) fn start(handle: ClusterHandle, spec: WatchSpec) -> Result<(), String> {
    let ignore = Ignore::new(&spec.roots, &spec.ignore)?.with_files(own_output_files());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event);
    })
    .map_err(|e| format!("cannot watch files: {e}"))?;
    let mut watched = 0;
    for root in &spec.roots {
        watched += watch_tree(&mut watcher, root, &ignore)
            .map_err(|e| format!("cannot watch {}: {e}", root.display()))?;
    }
    let roots: Vec<String> = spec.roots.iter().map(|r| r.display().to_string()).collect();
    tracing::info!(
        "dev: watching {} ({watched} directories); ignoring {} and {} more patterns",
        roots.join(", "),
        DEFAULT_IGNORES[..3].join(", "),
        DEFAULT_IGNORES.len() - 3 + spec.ignore.len()
    );
    tokio::spawn(run(handle.on_behalf_of("dev mode"), watcher, rx, ignore, spec.debounce));
    Ok(())
}

/// The regular files the primary's stdout and stderr go to (`cluster dev > dev.out`).
///
/// Workers' output lines are written there, so a change to one of these files would start a
/// rolling restart whose new workers write to it again: a restart loop.
fn own_output_files() -> Vec<PathBuf> {
    [1, 2]
        .into_iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .filter(|path| path.is_file())
        .collect()
}

/// Watches `dir` and every directory under it that is not ignored, each on its own. Returns
/// how many directories are watched.
fn watch_tree(watcher: &mut impl Watcher, dir: &Path, ignore: &Ignore) -> notify::Result<usize> {
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    let mut count = 1;
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(count) };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !ignore.ignores(&path) {
            // A directory that vanished meanwhile is no error.
            count += watch_tree(watcher, &path, ignore).unwrap_or(0);
        }
    }
    Ok(count)
}

/// The watch loop: collect a debounced batch, restart, repeat.
async fn run(
    handle: ClusterHandle,
    mut watcher: impl Watcher + Send + 'static,
    mut rx: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    ignore: Ignore,
    debounce: Duration,
) {
    loop {
        let Some(changed) = next_batch(&mut rx, &mut watcher, &ignore, debounce).await else {
            return;
        };
        let first = changed.iter().next().map(|p| p.display().to_string()).unwrap_or_default();
        let more = match changed.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        tracing::info!("dev: {first} changed{more}: rolling restart");
        if !restart(&handle).await {
            return;
        }
    }
}

/// Waits for a relevant change, then until nothing has changed for `debounce` (at most
/// [`MAX_DEBOUNCE`]); returns the changed paths, or `None` when the watcher is gone.
async fn next_batch(
    rx: &mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    watcher: &mut impl Watcher,
    ignore: &Ignore,
    debounce: Duration,
) -> Option<BTreeSet<PathBuf>> {
    let mut changed = BTreeSet::new();
    let mut quiet_until: Option<Instant> = None;
    let mut give_up: Option<Instant> = None;
    loop {
        let event = match quiet_until {
            None => rx.recv().await?,
            Some(until) => {
                let until = until.min(give_up.unwrap_or(until));
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(event) => event?,
                    Err(_) => return Some(changed),
                }
            }
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!("dev: file watcher error: {e}");
                continue;
            }
        };
        if !matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_))
        {
            continue;
        }
        let mut relevant = false;
        for path in event.paths {
            if ignore.ignores(&path) {
                continue;
            }
            if matches!(event.kind, EventKind::Create(_)) && path.is_dir() {
                // A new directory: watch it (and what is already in it) too.
                let _ = watch_tree(watcher, &path, ignore);
            }
            changed.insert(path);
            relevant = true;
        }
        // Only a relevant change restarts the quiet time: a log file written all the time
        // must not postpone the restart.
        if relevant {
            let now = Instant::now();
            quiet_until = Some(now + debounce);
            give_up.get_or_insert(now + MAX_DEBOUNCE);
        }
    }
}

/// Runs one rolling restart, waiting for one under way to end first; returns `false` once
/// the cluster is gone.
async fn restart(handle: &ClusterHandle) -> bool {
    loop {
        match handle.rolling_restart().await {
            Ok(operation) => {
                let id = operation.id();
                match operation.finished().await {
                    Ok(done) => tracing::info!(
                        "dev: rolling restart #{id} done: {} workers replaced in {:.1} s",
                        done.replaced,
                        done.took.as_secs_f64()
                    ),
                    Err(e) => tracing::error!(
                        "dev: rolling restart #{id} failed: {e}. Fix the error and save again."
                    ),
                }
                return true;
            }
            Err(ControlError::Busy { .. }) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(ControlError::ShuttingDown | ControlError::Gone) => return false,
            Err(e) => {
                tracing::error!("dev: rolling restart refused: {e}");
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_dependencies_vcs_build_caches_and_editor_files() {
        let root = PathBuf::from("/app");
        let ignore =
            Ignore::new(std::slice::from_ref(&root), &["dist".into(), "*.map".into()]).unwrap();
        for ignored in [
            "node_modules/x",
            "node_modules",
            "src/node_modules/lib/a.js",
            ".git/index",
            "target/debug/app",
            ".svelte-kit/output/x.js",
            "server.log",
            "src/.app.js.swp",
            "src/app.js~",
            "dist/bundle.js",
            "src/app.js.map",
        ] {
            assert!(ignore.ignores(&root.join(ignored)), "{ignored} should be ignored");
        }
        for watched in ["src/app.js", "build/index.js", "package.json", "server.js", "targets.txt"]
        {
            assert!(!ignore.ignores(&root.join(watched)), "{watched} should be watched");
        }
    }

    #[test]
    fn the_primarys_own_output_files_are_ignored() {
        let root = PathBuf::from("/app");
        let ignore = Ignore::new(std::slice::from_ref(&root), &[])
            .unwrap()
            .with_files([root.join("dev.out")]);
        assert!(ignore.ignores(&root.join("dev.out")));
        assert!(!ignore.ignores(&root.join("src/dev.out")));
    }

    fn modified(path: &str) -> notify::Result<notify::Event> {
        use notify::event::{DataChange, ModifyKind};
        Ok(notify::Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any)))
            .add_path(PathBuf::from(path)))
    }

    /// Sends `path` as modified every `every`, `times` times.
    fn save(
        tx: &mpsc::UnboundedSender<notify::Result<notify::Event>>,
        path: &'static str,
        every: Duration,
        times: usize,
    ) {
        let tx = tx.clone();
        tokio::spawn(async move {
            for _ in 0..times {
                let _ = tx.send(modified(path));
                tokio::time::sleep(every).await;
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_saves_is_one_batch_after_the_quiet_time() {
        let ignore = Ignore::new(&[PathBuf::from("/app")], &[]).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        save(&tx, "/app/src/a.js", Duration::from_millis(100), 5);
        save(&tx, "/app/src/b.js", Duration::from_millis(100), 1);
        let started = Instant::now();
        let debounce = Duration::from_millis(300);
        let batch = next_batch(&mut rx, &mut notify::NullWatcher, &ignore, debounce).await;
        let expected: BTreeSet<PathBuf> =
            ["/app/src/a.js", "/app/src/b.js"].into_iter().map(PathBuf::from).collect();
        assert_eq!(batch, Some(expected));
        // The last save is at 400 ms; the batch ends 300 ms later.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn ignored_changes_do_not_postpone_the_batch() {
        let ignore = Ignore::new(&[PathBuf::from("/app")], &[]).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        save(&tx, "/app/src/a.js", Duration::from_millis(100), 1);
        // A log file written every 50 ms, for longer than MAX_DEBOUNCE.
        save(&tx, "/app/server.log", Duration::from_millis(50), 200);
        let started = Instant::now();
        let debounce = Duration::from_millis(300);
        let batch = next_batch(&mut rx, &mut notify::NullWatcher, &ignore, debounce).await;
        assert_eq!(batch, Some([PathBuf::from("/app/src/a.js")].into()));
        assert_eq!(started.elapsed(), debounce);
    }

    #[tokio::test(start_paused = true)]
    async fn changes_without_a_pause_wait_at_most_max_debounce() {
        let ignore = Ignore::new(&[PathBuf::from("/app")], &[]).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        save(&tx, "/app/src/a.js", Duration::from_millis(100), 200);
        let started = Instant::now();
        let debounce = Duration::from_millis(300);
        let batch = next_batch(&mut rx, &mut notify::NullWatcher, &ignore, debounce).await;
        assert_eq!(batch, Some([PathBuf::from("/app/src/a.js")].into()));
        assert_eq!(started.elapsed(), MAX_DEBOUNCE);
    }

    #[test]
    fn a_bad_pattern_is_reported() {
        let e = Ignore::new(&[PathBuf::from("/app")], &["a[".into()]).unwrap_err();
        assert!(e.contains("\"a[\""), "{e}");
    }
}

//! [`SuccessorCommand`]: how an old primary starts the new one.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The command that starts a new primary for [`ClusterHandle::upgrade`](crate::ClusterHandle::upgrade),
/// and the descriptors handed to it besides the front socket.
///
/// # Examples
///
/// This binary again, with the same arguments, and an admin listener handed along (both
/// primaries cannot bind one address; the new one takes it with
/// [`Successor::take`](super::Successor::take)):
///
/// ```
/// use std::net::TcpListener;
/// use cluster_core::upgrade::SuccessorCommand;
///
/// # fn main() -> std::io::Result<()> {
/// let admin = TcpListener::bind("127.0.0.1:0")?;
/// let successor = SuccessorCommand::current_process()?.pass("admin", admin.try_clone()?);
/// // Then: `Cluster::builder(spec).upgradable(successor)`.
/// # drop(successor);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SuccessorCommand {
    /// The program, as the primary was started (`argv[0]`): a path with a `/` is used as it
    /// is (relative to `cwd`), a bare name is searched in `PATH` when the upgrade runs, so a
    /// binary replaced on disk since is the one started.
    pub(crate) program: PathBuf,
    /// The arguments after the program.
    pub(crate) args: Vec<OsString>,
    /// The working directory.
    pub(crate) cwd: PathBuf,
    /// Descriptors passed on by name (see [`Successor::take`](super::Successor::take)).
    pub(crate) pass: Vec<(String, OwnedFd)>,
}

impl SuccessorCommand {
    /// `program` with `args`, in the current working directory: a new primary of your own
    /// making (it must speak the protocol of the [module](super) documentation).
    ///
    /// # Errors
    ///
    /// The OS error when the working directory cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// use cluster_core::upgrade::SuccessorCommand;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let successor =
    ///     SuccessorCommand::new("/srv/app/current/server", ["--config", "/etc/app.json"])?;
    /// # drop(successor);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: std::env::current_dir()?,
            pass: Vec::new(),
        })
    }

    /// This process again: its `argv[0]` (not `/proc/self/exe`, which names the old file
    /// even once it is replaced), its arguments and working directory. The environment is
    /// the primary's own at the time of the upgrade.
    ///
    /// # Errors
    ///
    /// The OS error when the working directory cannot be read.
    pub fn current_process() -> std::io::Result<Self> {
        let mut args = std::env::args_os();
        let program = PathBuf::from(args.next().unwrap_or_else(|| "cluster".into()));
        Ok(Self { program, args: args.collect(), cwd: std::env::current_dir()?, pass: Vec::new() })
    }

    /// Also hands `fd` to the successor, which finds it with
    /// [`Successor::take`](super::Successor::take)`(name)`. The binary passes its locked pid
    /// file: a `flock` belongs to the open file, so the successor holds the lock from its
    /// first instant and no other `cluster start` can slip in between the two primaries.
    ///
    /// `name` is made of ASCII letters, digits and `-`; `ready` is taken.
    #[must_use]
    pub fn pass(mut self, name: impl Into<String>, fd: impl Into<OwnedFd>) -> Self {
        self.pass.push((name.into(), fd.into()));
        self
    }
}

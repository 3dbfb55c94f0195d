//! Worker hardening settings: `user`, `group`, `cpuAffinity` and the `limits` section
//! (`nofile`, `core`, `memoryMax`), their raw form and their validation.
//!
//! They are applied by the spawner to each worker between fork and exec (see
//! [`WorkerHardening`](crate::WorkerHardening)); nothing here touches a process.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::accounts::{WorkerGroup, WorkerUser};
use super::raw::RawConfig;
use super::scalar::{IntOrText, Integer, MemorySize, int_or_text};
use super::validate::Validator;

/// The fewest open files a worker may be limited to: the standard streams, the IPC channel
/// at fd 3 and a listening socket need a few, and any real server needs dozens.
const MIN_NOFILE: i128 = 64;

/// The kernel's ceiling for `RLIMIT_NOFILE` when `/proc/sys/fs/nr_open` cannot be read.
const DEFAULT_NR_OPEN: u64 = 1 << 20;

/// The smallest `limits.memoryMax`: below a megabyte no program starts.
const MIN_MEMORY_MAX: u64 = 1 << 20;

/// `limits`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    pub(crate) nofile: Option<Integer>,
    pub(crate) core: Option<CoreValue>,
    pub(crate) memory_max: Option<MemorySize>,
}

/// `limits.core` as written: bytes, or `"unlimited"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct CoreValue(pub(crate) IntOrText);

impl<'de> Deserialize<'de> for CoreValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int_or_text(d, r#"a size in bytes or "unlimited""#).map(CoreValue)
    }
}

/// A resource limit's value: a number, or no limit.
///
/// # Examples
///
/// ```
/// use cluster_core::config::LimitValue;
///
/// assert_eq!(LimitValue::Max(1 << 20).as_rlim(), 1 << 20);
/// assert_eq!(LimitValue::Unlimited.to_string(), "unlimited");
/// assert_eq!(LimitValue::Unlimited.as_rlim(), u64::MAX); // RLIM_INFINITY on Linux
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitValue {
    /// At most this many (bytes for `core`).
    Max(u64),
    /// `RLIM_INFINITY`.
    Unlimited,
}

impl LimitValue {
    /// The value as `setrlimit` takes it.
    pub fn as_rlim(self) -> u64 {
        match self {
            LimitValue::Max(n) => n,
            LimitValue::Unlimited => nix::sys::resource::RLIM_INFINITY,
        }
    }
}

impl fmt::Display for LimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitValue::Max(n) => write!(f, "{n}"),
            LimitValue::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// How workers are confined (`user`, `group`, `cpuAffinity` and `limits` in the file).
/// The default confines nothing: workers run as the primary does.
///
/// Every setting applies to workers started after it is set: a reload takes them to the next
/// generation (a rolling restart), as the worker command is.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{ClusterSpec, LimitValue};
///
/// let mut spec = ClusterSpec::default();
/// assert!(!spec.hardening.is_active()); // nothing asked for
/// spec.hardening.nofile = Some(65_536);
/// spec.hardening.core = Some(LimitValue::Max(0)); // no core dumps
/// spec.hardening.cpu_affinity = true; // one CPU per slot
/// assert!(spec.hardening.is_active());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HardeningSpec {
    /// Run workers as this user (`user`: a name or a numeric id). Needs a primary running as
    /// root; the supplementary groups are the user's own, from the group database.
    pub user: Option<WorkerUser>,
    /// Run workers with this primary group (`group`: a name or a numeric id); default: the
    /// user's primary group when `user` is set.
    pub group: Option<WorkerGroup>,
    /// The open-file limit of each worker, soft and hard (`limits.nofile`, at least 64).
    pub nofile: Option<u64>,
    /// The core-dump size limit of each worker, soft and hard (`limits.core`: bytes, `0` for
    /// no core dumps, or `"unlimited"`).
    pub core: Option<LimitValue>,
    /// Pin worker slot `i` to the `i`-th CPU the primary may run on, round robin
    /// (`cpuAffinity`; default false).
    pub cpu_affinity: bool,
    /// A cgroup v2 `memory.max` per worker, in bytes (`limits.memoryMax`: MB, or a size with
    /// a unit). Where the cgroup tree is not cgroup v2 or not writable, the primary says so
    /// once at start and runs the workers without it.
    pub memory_max: Option<u64>,
}

impl HardeningSpec {
    /// Whether any setting is on.
    pub fn is_active(&self) -> bool {
        self != &Self::default()
    }
}

impl Validator<'_> {
    /// `user`, `group`, `cpuAffinity` and `limits`.
    pub(super) fn hardening(&mut self, raw: &RawConfig) -> HardeningSpec {
        let (user, group) = self.accounts(raw.user.as_ref(), raw.group.as_ref());
        let limits = &raw.limits;
        HardeningSpec {
            user,
            group,
            nofile: limits.nofile.and_then(|n| self.nofile(n)),
            core: limits.core.as_ref().and_then(|c| self.core(c)),
            cpu_affinity: raw.cpu_affinity,
            memory_max: limits.memory_max.as_ref().and_then(|m| self.memory_max(m)),
        }
    }

    fn nofile(&mut self, value: Integer) -> Option<u64> {
        const KEY: &str = "limits.nofile";
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_NR_OPEN);
        self.int(KEY, value, MIN_NOFILE, i128::from(nr_open))
    }

    fn core(&mut self, value: &CoreValue) -> Option<LimitValue> {
        const KEY: &str = "limits.core";
        let limit = match &value.0 {
            IntOrText::Text(t) if t.trim().eq_ignore_ascii_case("unlimited") => {
                LimitValue::Unlimited
            }
            IntOrText::Text(t) => match t.trim().parse::<u64>() {
                Ok(n) => LimitValue::Max(n),
                Err(_) => {
                    self.invalid(
                        KEY,
                        r#"expected a size in bytes (0: no core dumps) or "unlimited""#,
                    );
                    return None;
                }
            },
            IntOrText::Int(n) => match u64::try_from(*n) {
                Ok(n) => LimitValue::Max(n),
                Err(_) => {
                    self.invalid(KEY, r#"must be at least 0 (no core dumps), or "unlimited""#);
                    return None;
                }
            },
        };
        Some(limit)
    }

    fn memory_max(&mut self, value: &MemorySize) -> Option<u64> {
        const KEY: &str = "limits.memoryMax";
        if matches!(value.0, IntOrText::Int(mb) if mb < 1) {
            self.invalid(KEY, "must be at least 1 MB");
            return None;
        }
        let bytes = self.size(KEY, value)?;
        if bytes < MIN_MEMORY_MAX {
            self.invalid(KEY, "must be at least 1 MB");
            return None;
        }
        Some(bytes)
    }
}

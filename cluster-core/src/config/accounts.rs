//! `user` and `group`: the account the workers run as, resolved to numeric ids when the
//! configuration is loaded.
//!
//! Names are looked up in the user and group databases here, in the primary, before any
//! worker is forked: the lookup (NSS, files, maybe a network directory) allocates and takes
//! locks, which the child may not do between fork and exec. The child only gets the ids.

use std::fmt;

use nix::unistd::{Gid, Group, Uid, User};
use serde::{Deserialize, Deserializer, Serialize};

use super::scalar::{IntOrText, int_or_text};
use super::validate::Validator;

/// `user` or `group` as written: a name (`"nobody"`) or a numeric id (`65534`, `"65534"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct AccountName(pub(crate) IntOrText);

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int_or_text(d, "a name or a numeric id").map(AccountName)
    }
}

/// The user the workers run as (`user`), resolved.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
///
/// let spec = ClusterSpec::default();
/// if let Some(user) = &spec.hardening.user {
///     println!("workers run as {user} (uid {}, gid {})", user.uid, user.gid);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerUser {
    /// The name in the user database; `None` for a numeric id that has no entry there.
    pub name: Option<String>,
    /// The user id.
    pub uid: u32,
    /// The user's primary group from the user database (used when `group` is not set).
    pub gid: u32,
}

/// The group the workers run as (`group`), resolved.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
///
/// let spec = ClusterSpec::default();
/// assert!(spec.hardening.group.is_none()); // the user's primary group, or the primary's own
/// if let Some(group) = &spec.hardening.group {
///     println!("workers run in group {group} ({})", group.gid);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerGroup {
    /// The name in the group database; `None` for a numeric id that has no entry there.
    pub name: Option<String>,
    /// The group id.
    pub gid: u32,
}

impl fmt::Display for WorkerUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} ({})", self.uid),
            None => write!(f, "{}", self.uid),
        }
    }
}

impl fmt::Display for WorkerGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} ({})", self.gid),
            None => write!(f, "{}", self.gid),
        }
    }
}

/// A name or a number: a string holding only digits is a number, as `chown` reads it.
fn id_or_name(account: &AccountName) -> Result<u32, &str> {
    match &account.0 {
        IntOrText::Int(n) => u32::try_from(*n).map_err(|_| ""),
        IntOrText::Text(t) => {
            let t = t.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().map_err(|_| "")
            } else {
                Err(t)
            }
        }
    }
}

impl Validator<'_> {
    /// `user` and `group`: each must exist (a numeric id may have no entry, except a user id
    /// without `group`: its primary group would be unknown).
    ///
    /// Whether the primary may switch to them (it must be root) is checked when the cluster
    /// starts (`WorkerHardening::prepare`), not here: `cluster config` and the client
    /// commands load the same file as another user.
    pub(super) fn accounts(
        &mut self,
        user: Option<&AccountName>,
        group: Option<&AccountName>,
    ) -> (Option<WorkerUser>, Option<WorkerGroup>) {
        let group = group.and_then(|g| self.group(g));
        let user = user.and_then(|u| self.user(u, group.is_some()));
        (user, group)
    }

    fn user(&mut self, account: &AccountName, has_group: bool) -> Option<WorkerUser> {
        const KEY: &str = "user";
        let found = match id_or_name(account) {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err("") => {
                self.invalid(KEY, "must be a user name or a user id (0 to 4294967295)");
                return None;
            }
            Err(name) => User::from_name(name),
        };
        match found {
            Ok(Some(u)) => {
                Some(WorkerUser { name: Some(u.name), uid: u.uid.as_raw(), gid: u.gid.as_raw() })
            }
            Ok(None) => match id_or_name(account) {
                Ok(uid) if has_group => Some(WorkerUser { name: None, uid, gid: 0 }),
                Ok(_) => {
                    self.invalid(KEY, "no such user: a user id with no entry needs `group` too");
                    None
                }
                Err(_) => {
                    self.invalid(KEY, "no such user in the user database");
                    None
                }
            },
            Err(e) => {
                self.invalid(KEY, format!("cannot read the user database: {e}"));
                None
            }
        }
    }

    fn group(&mut self, account: &AccountName) -> Option<WorkerGroup> {
        const KEY: &str = "group";
        let found = match id_or_name(account) {
            Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
            Err("") => {
                self.invalid(KEY, "must be a group name or a group id (0 to 4294967295)");
                return None;
            }
            Err(name) => Group::from_name(name),
        };
        match found {
            Ok(Some(g)) => Some(WorkerGroup { name: Some(g.name), gid: g.gid.as_raw() }),
            Ok(None) => match id_or_name(account) {
                Ok(gid) => Some(WorkerGroup { name: None, gid }),
                Err(_) => {
                    self.invalid(KEY, "no such group in the group database");
                    None
                }
            },
            Err(e) => {
                self.invalid(KEY, format!("cannot read the group database: {e}"));
                None
            }
        }
    }
}

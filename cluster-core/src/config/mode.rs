//! `mode`: which data plane serves the front port.

use std::fmt;
use std::str::FromStr;

use super::suggest::nearest;
use super::validate::Validator;

/// Which data plane serves the front port (`mode` / `CLUSTER_MODE`).
///
/// See `docs/shared-socket.md` for when to choose which.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{ClusterSpec, Mode};
///
/// let mut spec = ClusterSpec::default();
/// assert_eq!(spec.mode, Mode::Proxy);
/// spec.mode = "shared-socket".parse().unwrap(); // the workers accept on the front socket
/// assert!(spec.mode.is_shared_socket());
/// assert_eq!(Mode::ALL.map(Mode::name), ["proxy", "shared-socket"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Mode {
    /// The primary accepts every connection and forwards each request to a worker's private
    /// endpoint, chosen by the balancing strategy (the default).
    #[default]
    Proxy,
    /// The primary binds the front port and hands the listening socket to every worker as
    /// fd 3 (the `LISTEN_FDS` socket-activation protocol); the workers accept on it
    /// themselves and the kernel balances connections. No byte crosses the primary, so the
    /// per-request parts of the proxy (strategy, stickiness, limits, rate limit,
    /// compression, access log, per-request metrics) do not apply.
    SharedSocket,
}

impl Mode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [Mode; 2] = [Mode::Proxy, Mode::SharedSocket];

    /// The name the configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Proxy => "proxy",
            Mode::SharedSocket => "shared-socket",
        }
    }

    /// Whether the workers accept on the front socket themselves.
    pub fn is_shared_socket(self) -> bool {
        self == Mode::SharedSocket
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`Mode`].
///
/// # Examples
///
/// ```
/// use cluster_core::config::{Mode, UnknownMode};
///
/// assert_eq!("cluster".parse::<Mode>(), Err(UnknownMode("cluster".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

impl Validator<'_> {
    /// `mode`: one of [`Mode::ALL`]'s names.
    pub(super) fn mode(&mut self, name: &str) -> Mode {
        name.parse().unwrap_or_else(|_| {
            let names = Mode::ALL.iter().map(|m| m.name());
            let quoted: Vec<String> = names.clone().map(|n| format!("{n:?}")).collect();
            let mut reason = format!("expected one of {}", quoted.join(", "));
            if let Some(near) = nearest(name, names) {
                reason.push_str(&format!(r#"; did you mean "{near}"?"#));
            }
            self.invalid("mode", reason);
            Mode::Proxy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
        }
        assert!("shared".parse::<Mode>().is_err());
    }
}

//! Validation of the `admin` section and of the runtime paths `runtimeDir` and `logFile`.
//!
//! Relative paths are resolved against the directory the configuration is loaded in (the
//! base `cwd` is checked against), so a cluster that later changes directory, or a client
//! that reads the same configuration, still finds its socket and its log.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::AdminSpec;
use super::raw::{MASK, RawAdmin};
use super::spec::CONTROL_SOCKET;
use super::validate::{MAX_LIFECYCLE_MS, Validator};

/// Fewest characters in `admin.token`.
const MIN_TOKEN_CHARS: usize = 16;

/// Longest path a Unix socket can be bound at, in bytes: `sun_path` less its NUL.
pub(crate) const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

impl Validator<'_> {
    /// A path at `key` (`runtimeDir`, `logFile`, `admin.socket`), resolved against `base`.
    pub(super) fn path(&mut self, key: &str, text: &str, base: &Path) -> PathBuf {
        if text.trim().is_empty() {
            self.invalid(key, "must not be empty");
        } else if text.contains('\0') {
            self.invalid(key, "must not contain a NUL character");
        }
        base.join(text)
    }

    /// `runtimeDir`: may not exist yet, but must not be something other than a directory.
    pub(super) fn runtime_dir(&mut self, text: &str, base: &Path) -> PathBuf {
        const KEY: &str = "runtimeDir";
        let dir = self.path(KEY, text, base);
        if dir.exists() && !dir.is_dir() {
            self.invalid(KEY, format!("{} is not a directory", dir.display()));
        }
        dir
    }

    /// `logFile`: may not exist yet, but must not be a directory.
    pub(super) fn log_file(&mut self, text: &str, base: &Path) -> PathBuf {
        const KEY: &str = "logFile";
        let file = self.path(KEY, text, base);
        if file.is_dir() {
            self.invalid(KEY, format!("{} is a directory", file.display()));
        }
        file
    }

    /// The `admin` section; `runtime_dir` is the resolved `runtimeDir`, which holds the
    /// control socket unless `admin.socket` names another path.
    pub(super) fn admin(&mut self, raw: &RawAdmin, runtime_dir: &Path, base: &Path) -> AdminSpec {
        let token = self.admin_token(raw.token.as_deref());
        let listen = self.admin_listen(raw.listen.as_deref());
        if let Some(addr) = listen
            && token.is_none()
            && !addr.ip().to_canonical().is_loopback()
        {
            // Anyone who can reach the address could otherwise drive the cluster.
            let reason = "is not a loopback address: set admin.token or CLUSTER_ADMIN_TOKEN \
                          to serve the admin API on it";
            self.invalid("admin.listen", reason);
        }
        let socket = raw.socket.as_deref().map(|text| self.path("admin.socket", text, base));
        self.socket_length(socket.as_deref(), runtime_dir);
        AdminSpec {
            token,
            listen,
            public_health: raw.public_health,
            min_healthy_percent: self.percent("admin.minHealthyPercent", raw.min_healthy_percent),
            events_interval: self.millis(
                "admin.eventsInterval",
                raw.events_interval,
                100,
                MAX_LIFECYCLE_MS,
            ),
            socket,
        }
    }

    /// `admin.token`. A bad token is reported as `"***"`: it is still a secret.
    fn admin_token(&mut self, token: Option<&str>) -> Option<String> {
        const KEY: &str = "admin.token";
        let token = token?;
        if token.chars().count() < MIN_TOKEN_CHARS {
            let reason = format!("must be at least {MIN_TOKEN_CHARS} characters");
            self.invalid_value(KEY, MASK.into(), reason);
        } else if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let reason = "must not contain whitespace or control characters";
            self.invalid_value(KEY, MASK.into(), reason);
        }
        Some(token.to_owned())
    }

    /// `admin.listen`: an IP address and port, or `localhost:PORT`; `None` when unset or
    /// invalid (reported).
    fn admin_listen(&mut self, listen: Option<&str>) -> Option<SocketAddr> {
        let text = listen?.trim();
        let localhost = text
            .rsplit_once(':')
            .filter(|(host, _)| host.eq_ignore_ascii_case("localhost"))
            .map(|(_, port)| port.parse::<u16>().map(|port| (Ipv4Addr::LOCALHOST, port).into()));
        let addr = match localhost {
            Some(parsed) => parsed.ok(),
            None => text.parse().ok(),
        };
        if addr.is_none() {
            self.invalid("admin.listen", r#"expected an address such as "127.0.0.1:9090""#);
        }
        addr
    }

    /// The control socket's path must fit a Unix socket address. Reported on `admin.socket`
    /// when it is set (`socket`), else on `runtimeDir`, whose `cluster.sock` it is.
    fn socket_length(&mut self, socket: Option<&Path>, runtime_dir: &Path) {
        let default = runtime_dir.join(CONTROL_SOCKET);
        let path = socket.unwrap_or(&default);
        let len = path.as_os_str().len();
        if len <= MAX_SOCKET_PATH {
            return;
        }
        let too_long = format!(
            "{} is too long for a Unix socket path ({len} bytes, at most {MAX_SOCKET_PATH})",
            path.display()
        );
        if socket.is_some() {
            self.invalid("admin.socket", too_long);
        } else {
            self.invalid("runtimeDir", format!("{too_long}: set admin.socket to a shorter path"));
        }
    }
}

//! Who may use the admin API, by where the request came in.
//!
//! - The control socket (a Unix socket, mode 0600): whoever can open it may; no token.
//! - The front port: only with `admin.token` configured, and only requests carrying it;
//!   without a token the admin paths answer 404 there (and never reach a worker).
//! - The admin listener (`admin.listen`): with a token configured, requests must carry it;
//!   without one it is bound to a loopback address only (the configuration refuses
//!   anything else), so whoever can reach it is on the machine.
//!
//! The token is accepted as `Authorization: Bearer <token>` or, so that a browser can log in,
//! `Authorization: Basic` with the token as the password (any user name). It is compared in
//! constant time. A token in the query string is never accepted: URLs end up in logs and
//! browser histories. `admin.publicHealth` opens the health route without the token
//! (Kubernetes probes cannot send one).

use base64::Engine;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

/// Where a request reached the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The control socket.
    Socket,
    /// The front port, in front of the proxy.
    FrontPort,
    /// The separate admin listener.
    Listener,
}

/// What the access rules decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve it.
    Allow,
    /// 401, asking for credentials (`WWW-Authenticate: Basic`).
    Unauthorized,
    /// 404: the admin API is not served here.
    Hidden,
}

/// The access rules of one cluster.
#[derive(Clone)]
pub(crate) struct Access {
    token: Option<Vec<u8>>,
    public_health: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("public_health", &self.public_health)
            .finish()
    }
}

impl Access {
    pub(crate) fn new(token: Option<&str>, public_health: bool) -> Self {
        Self { token: token.map(|t| t.as_bytes().to_vec()), public_health }
    }

    /// Decides for a request that came in at `entry`, for the health route or another.
    pub(crate) fn check(&self, entry: Entry, headers: &HeaderMap, health_route: bool) -> Verdict {
        match (entry, &self.token) {
            (Entry::Socket, _) => Verdict::Allow,
            (Entry::FrontPort, None) => Verdict::Hidden,
            (Entry::Listener, None) => Verdict::Allow,
            (_, Some(_)) if health_route && self.public_health => Verdict::Allow,
            (_, Some(token)) => match presented(headers) {
                Some(given) if same_secret(&given, token) => Verdict::Allow,
                _ => Verdict::Unauthorized,
            },
        }
    }
}

/// Whether `given` is `secret`, in a time that depends on the secret's length only: neither
/// a byte nor the length of the secret shows in how long the answer takes.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let mut same = subtle::Choice::from(1);
    for (i, s) in secret.iter().enumerate() {
        same &= given.get(i).copied().unwrap_or(0).ct_eq(s);
    }
    let same_len = (given.len() as u64).ct_eq(&(secret.len() as u64));
    bool::from(same & same_len)
}

/// The token a request presents in its `Authorization` header: `Bearer <token>`, or the
/// password of `Basic <base64(user:password)>`.
fn presented(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let colon = decoded.iter().position(|&b| b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const TOKEN: &str = "s3cret-token-0123456789";

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
    }

    #[test]
    fn the_socket_is_open_and_the_front_port_hidden_without_a_token() {
        let open = Access::new(None, false);
        let none = HeaderMap::new();
        assert_eq!(open.check(Entry::Socket, &none, false), Verdict::Allow);
        assert_eq!(open.check(Entry::Listener, &none, false), Verdict::Allow);
        assert_eq!(open.check(Entry::FrontPort, &none, false), Verdict::Hidden);
        assert_eq!(
            open.check(Entry::FrontPort, &with(&format!("Bearer {TOKEN}")), true),
            Verdict::Hidden
        );
    }

    #[test]
    fn a_token_is_required_on_the_front_port_and_the_listener() {
        let guarded = Access::new(Some(TOKEN), false);
        for entry in [Entry::FrontPort, Entry::Listener] {
            assert_eq!(guarded.check(entry, &HeaderMap::new(), false), Verdict::Unauthorized);
            assert_eq!(
                guarded.check(entry, &with(&format!("Bearer {TOKEN}")), false),
                Verdict::Allow
            );
            assert_eq!(
                guarded.check(entry, &with(&format!("bearer  {TOKEN} ")), false),
                Verdict::Allow
            );
            assert_eq!(
                guarded.check(entry, &with(&basic(&format!("admin:{TOKEN}"))), false),
                Verdict::Allow
            );
            assert_eq!(
                guarded.check(entry, &with(&basic(&format!(":{TOKEN}"))), false),
                Verdict::Allow
            );
            for wrong in [
                "Bearer nope".to_owned(),
                format!("Bearer {TOKEN}x"),
                format!("Token {TOKEN}"),
                TOKEN.to_owned(),
                basic(&format!("{TOKEN}:x")),
                basic(TOKEN),
                "Basic !!!".to_owned(),
            ] {
                assert_eq!(
                    guarded.check(entry, &with(&wrong), false),
                    Verdict::Unauthorized,
                    "{wrong}"
                );
            }
            // Health needs the token too, unless it is public.
            assert_eq!(guarded.check(entry, &HeaderMap::new(), true), Verdict::Unauthorized);
            let public = Access::new(Some(TOKEN), true);
            assert_eq!(public.check(entry, &HeaderMap::new(), true), Verdict::Allow);
            assert_eq!(public.check(entry, &HeaderMap::new(), false), Verdict::Unauthorized);
        }
        assert_eq!(guarded.check(Entry::Socket, &HeaderMap::new(), false), Verdict::Allow);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let a = Access::new(Some(TOKEN), false);
        assert!(!format!("{a:?}").contains(TOKEN));
    }
}

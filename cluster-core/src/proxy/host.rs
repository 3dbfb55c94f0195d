//! The grammar of a `Host` field value (RFC 9110 §7.2): `uri-host [ ":" port ]`, with
//! `uri-host` from RFC 3986 §3.2.2. A value outside it (`Host: probe local<>`) is answered
//! 400 and never forwarded: a worker that builds links or routes tenants from `Host` must
//! only ever see a name that a URI could hold.

/// Whether `value` is a valid `Host` field value: empty (allowed by RFC 9112 §3.2 when the
/// target has no authority), or `uri-host [ ":" port ]` where `uri-host` is
///
/// - an `IP-literal`: `[` IPv6 address `]`, or `[v` hex `.` text `]` (`IPvFuture`), or
/// - a `reg-name` / `IPv4address`: unreserved characters (`A-Z a-z 0-9 - . _ ~`),
///   sub-delims (`! $ & ' ( ) * + , ; =`) and `%` followed by two hex digits,
///
/// and `port` is digits only (possibly none). Costs one pass over the bytes, no allocation.
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else { return false };
        if !is_ip_literal(&value[1..end]) {
            return false;
        }
        match &value[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        }
    };
    is_reg_name(host) && port.iter().all(u8::is_ascii_digit)
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )` (also covers `IPv4address`).
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b == b'%' {
            let hex = name.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !REG_NAME_BYTE[usize::from(b)] {
            return false;
        }
        i += 1;
    }
    true
}

/// The inside of `[...]`: an IPv6 address, or `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved
/// / sub-delims / ":" )`.
fn is_ip_literal(inner: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inner {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else { return false };
        let (version, text) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !text.is_empty()
            && text.iter().all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

/// `unreserved / sub-delims`, by byte: one lookup per byte of every request's `Host`.
static REG_NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_unreserved(b as u8) || is_sub_delim(b as u8);
        b += 1;
    }
    table
};

const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const fn is_sub_delim(b: u8) -> bool {
    matches!(b, b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
}

#[cfg(test)]
mod tests {
    use super::is_valid_host;

    #[test]
    fn accepts_what_a_uri_authority_holds() {
        for good in [
            "",
            "example.com",
            "example.com:8080",
            "localhost:",
            "127.0.0.1:3000",
            "[::1]",
            "[::1]:3000",
            "[2001:db8::7]",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "my_host~1",
            "caf%C3%A9.test",
            "a!$&'()*+,;=b",
        ] {
            assert!(is_valid_host(good.as_bytes()), "{good:?}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "probe local<>",
            "example.com ",
            "a b",
            "<script>",
            "a\"b",
            "host/path",
            "host?q",
            "host#f",
            "user@host",
            "a\\b",
            "{x}",
            "a|b",
            "example.com:80a",
            "example.com:80:90",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[not-v6]",
            "[v.x]",
            "[v1.]",
            "100%",
            "%zz",
            "caf\u{e9}.test",
            "a\tb",
        ] {
            assert!(!is_valid_host(bad.as_bytes()), "{bad:?}");
        }
    }
}

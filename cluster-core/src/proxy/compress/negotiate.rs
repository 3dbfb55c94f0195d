//! Content negotiation of `Accept-Encoding` (RFC 9110 §12.5.3), shared by the proxy and the
//! admin dashboard.
//!
//! Parsing allocates nothing: only the weights of the codings we can produce (and of
//! `identity` and `*`) are kept.

use http::HeaderMap;
use http::header::{ACCEPT_ENCODING, HeaderValue};

/// A content coding the proxy can produce (RFC 9110 §8.4.1).
///
/// # Examples
///
/// ```
/// use cluster_core::ContentCoding;
/// use http::header::CONTENT_ENCODING;
///
/// assert_eq!(ContentCoding::PREFERENCE[0], ContentCoding::Brotli);
/// assert_eq!(ContentCoding::Gzip.name(), "gzip");
/// let mut response = http::Response::new(());
/// response.headers_mut().insert(CONTENT_ENCODING, ContentCoding::Zstd.header_value());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentCoding {
    /// Brotli (`br`, RFC 7932): the smallest output of the three at a given speed for text.
    Brotli,
    /// Zstandard (`zstd`, RFC 8878).
    Zstd,
    /// gzip (`gzip`, also accepted as `x-gzip`; RFC 1952): understood by every client.
    Gzip,
}

impl ContentCoding {
    /// Every coding, in the server's order of preference, used to break ties between
    /// codings the client weighs equally: `br`, then `zstd`, then `gzip`.
    pub const PREFERENCE: [ContentCoding; 3] =
        [ContentCoding::Brotli, ContentCoding::Zstd, ContentCoding::Gzip];

    /// The coding's token, as written in `Accept-Encoding` and `Content-Encoding`.
    pub const fn name(self) -> &'static str {
        match self {
            ContentCoding::Brotli => "br",
            ContentCoding::Zstd => "zstd",
            ContentCoding::Gzip => "gzip",
        }
    }

    /// The coding's token as a header value, for `Content-Encoding`.
    pub const fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.name())
    }
}

/// A weight (RFC 9110 §12.4.2) in thousandths: 0 (refused) to 1000 (`q=1`, the default).
type Weight = u16;

/// The weights a request's `Accept-Encoding` gives to the codings we can produce.
///
/// Built with [`AcceptEncoding::from_headers`]; asked with [`AcceptEncoding::accepts`] and
/// [`AcceptEncoding::preferred`].
///
/// # Caveats
///
/// A request without `Accept-Encoding` gets no coding: RFC 9110 allows any coding then, but
/// clients that do not send the header (scripts, old tools) rarely decode one. A malformed
/// element (a bad `q`) is ignored, as if it were not there. When a coding is listed twice,
/// the first listing counts.
///
/// # Examples
///
/// A front door serving a precompressed asset picks the coding the client prefers:
///
/// ```
/// use cluster_core::{AcceptEncoding, ContentCoding};
/// use http::header::ACCEPT_ENCODING;
///
/// let request = http::Request::get("/app.js").header(ACCEPT_ENCODING, "gzip, br;q=0.8").body(()).unwrap();
/// let accept = AcceptEncoding::from_headers(request.headers());
/// assert_eq!(accept.preferred(&[ContentCoding::Brotli, ContentCoding::Gzip]), Some(ContentCoding::Gzip));
/// assert_eq!(accept, AcceptEncoding::parse("gzip, br;q=0.8"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcceptEncoding {
    brotli: Option<Weight>,
    zstd: Option<Weight>,
    gzip: Option<Weight>,
    identity: Option<Weight>,
    any: Option<Weight>,
}

impl AcceptEncoding {
    /// The weights of every `Accept-Encoding` field line of `headers` (lines are joined
    /// as one comma-separated list, RFC 9110 §5.3).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut accept = AcceptEncoding::default();
        for value in headers.get_all(ACCEPT_ENCODING) {
            if let Ok(list) = value.to_str() {
                accept.add_list(list);
            }
        }
        accept
    }

    /// The weights of one field value, such as `"gzip, br;q=0.9, *;q=0"`.
    pub fn parse(list: &str) -> Self {
        let mut accept = AcceptEncoding::default();
        accept.add_list(list);
        accept
    }

    fn add_list(&mut self, list: &str) {
        for element in list.split(',') {
            let mut parts = element.split(';');
            let token = parts.next().unwrap_or("").trim();
            if token.is_empty() {
                continue;
            }
            let mut weight = Some(1000);
            for param in parts {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                if name.trim().eq_ignore_ascii_case("q") {
                    weight = parse_weight(value.trim());
                }
            }
            let Some(weight) = weight else { continue };
            let slot = if token.eq_ignore_ascii_case("br") {
                &mut self.brotli
            } else if token.eq_ignore_ascii_case("zstd") {
                &mut self.zstd
            } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                &mut self.gzip
            } else if token.eq_ignore_ascii_case("identity") {
                &mut self.identity
            } else if token == "*" {
                &mut self.any
            } else {
                continue;
            };
            slot.get_or_insert(weight);
        }
    }

    /// The weight of `coding`: its own, else that of `*`, else 0 (not acceptable).
    fn weight(&self, coding: ContentCoding) -> Weight {
        let own = match coding {
            ContentCoding::Brotli => self.brotli,
            ContentCoding::Zstd => self.zstd,
            ContentCoding::Gzip => self.gzip,
        };
        own.or(self.any).unwrap_or(0)
    }

    /// Whether the client takes `coding` (listed, or covered by `*`, with a weight above 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use cluster_core::{AcceptEncoding, ContentCoding};
    ///
    /// assert!(AcceptEncoding::parse("gzip, deflate").accepts(ContentCoding::Gzip));
    /// assert!(!AcceptEncoding::parse("*, gzip;q=0").accepts(ContentCoding::Gzip));
    /// assert!(AcceptEncoding::parse("*").accepts(ContentCoding::Brotli));
    /// ```
    pub fn accepts(&self, coding: ContentCoding) -> bool {
        self.weight(coding) > 0
    }

    /// The coding to answer with, among `offered` (in the server's order of preference):
    /// the one the client weighs highest, ties going to the earlier in `offered`; `None` for
    /// no coding (none acceptable, or `identity` explicitly weighed above every one).
    ///
    /// # Examples
    ///
    /// ```
    /// use cluster_core::{AcceptEncoding, ContentCoding};
    ///
    /// let all = &ContentCoding::PREFERENCE;
    /// let pick = |list: &str| AcceptEncoding::parse(list).preferred(all);
    /// assert_eq!(pick("gzip, deflate, br, zstd"), Some(ContentCoding::Brotli));
    /// assert_eq!(pick("gzip;q=1, br;q=0.5"), Some(ContentCoding::Gzip));
    /// assert_eq!(pick("identity, gzip;q=0.5"), None);
    /// assert_eq!(pick("deflate"), None);
    /// ```
    pub fn preferred(&self, offered: &[ContentCoding]) -> Option<ContentCoding> {
        let mut best: Option<(ContentCoding, Weight)> = None;
        for &coding in offered {
            let weight = self.weight(coding);
            if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((coding, weight));
            }
        }
        let (coding, weight) = best?;
        // Only an explicit `identity` (or `*`) weight can outrank a coding the client listed.
        let identity = self.identity.or(self.any).unwrap_or(0);
        (weight >= identity).then_some(coding)
    }
}

/// A `qvalue` (RFC 9110 §12.4.2): `0`, `0.` and up to three digits, or `1`, `1.` and up to
/// three zeros; in thousandths.
fn parse_weight(text: &str) -> Option<Weight> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for (i, digit) in frac.bytes().enumerate() {
        thousandths += Weight::from(digit - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::header::ACCEPT_ENCODING;

    use super::{AcceptEncoding, ContentCoding, parse_weight};
    use ContentCoding::{Brotli, Gzip, Zstd};

    fn pick(list: &str) -> Option<ContentCoding> {
        AcceptEncoding::parse(list).preferred(&ContentCoding::PREFERENCE)
    }

    #[test]
    fn weights() {
        assert_eq!(parse_weight("1"), Some(1000));
        assert_eq!(parse_weight("1."), Some(1000));
        assert_eq!(parse_weight("1.000"), Some(1000));
        assert_eq!(parse_weight("0"), Some(0));
        assert_eq!(parse_weight("0.5"), Some(500));
        assert_eq!(parse_weight("0.05"), Some(50));
        assert_eq!(parse_weight("0.001"), Some(1));
        for bad in ["", "1.5", "2", "0.0001", "-1", ".5", "0.a", "1.001", "0,5"] {
            assert_eq!(parse_weight(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_preference_breaks_ties() {
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Brotli));
        assert_eq!(pick("gzip, zstd"), Some(Zstd));
        assert_eq!(pick("gzip"), Some(Gzip));
        assert_eq!(pick("x-gzip"), Some(Gzip));
        assert_eq!(pick("GZIP, BR"), Some(Brotli));
        assert_eq!(pick("*"), Some(Brotli));
    }

    #[test]
    fn client_weights_win_over_server_preference() {
        assert_eq!(pick("br;q=0.5, gzip"), Some(Gzip));
        assert_eq!(pick("br;q=0.5, gzip;q=0.8, zstd;q=0.9"), Some(Zstd));
        assert_eq!(pick("br ; q=0.2 , gzip;Q=0.3"), Some(Gzip));
        assert_eq!(pick("*;q=0.5, gzip"), Some(Gzip));
    }

    #[test]
    fn zero_refuses() {
        assert_eq!(pick("br;q=0, gzip"), Some(Gzip));
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("*, br;q=0, zstd;q=0"), Some(Gzip));
        assert_eq!(pick("gzip;q=0.000"), None);
    }

    #[test]
    fn identity() {
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("identity, gzip;q=0.5"), None);
        assert_eq!(pick("identity;q=0.5, gzip"), Some(Gzip));
        assert_eq!(pick("identity;q=0, gzip"), Some(Gzip));
        // Equal weights: the coding saves bytes, so it wins.
        assert_eq!(pick("identity, gzip"), Some(Gzip));
        // An implicit identity does not outrank a listed coding, whatever its weight.
        assert_eq!(pick("gzip;q=0.1"), Some(Gzip));
    }

    #[test]
    fn nothing_or_unknown_or_malformed() {
        assert_eq!(pick(""), None);
        assert_eq!(pick(" , ,"), None);
        assert_eq!(pick("deflate, compress"), None);
        assert_eq!(pick("gzip;q=2"), None);
        assert_eq!(pick("gzip;q=abc, br"), Some(Brotli));
        // The first listing counts.
        assert_eq!(pick("gzip;q=0, gzip"), None);
        assert_eq!(AcceptEncoding::from_headers(&HeaderMap::new()), AcceptEncoding::default());
    }

    #[test]
    fn field_lines_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append(ACCEPT_ENCODING, "gzip;q=0.5".parse().unwrap());
        headers.append(ACCEPT_ENCODING, "br;q=0.4, zstd;q=0".parse().unwrap());
        let accept = AcceptEncoding::from_headers(&headers);
        assert_eq!(accept.preferred(&ContentCoding::PREFERENCE), Some(Gzip));
        assert!(accept.accepts(Brotli));
        assert!(!accept.accepts(Zstd));
        assert_eq!(accept.preferred(&[Brotli]), Some(Brotli));
    }
}

//! The dashboard: one page at `/admin/cluster` and its assets, embedded in the binary, so it
//! works on a machine with no internet and needs no build step.
//!
//! - The page is served with `Cache-Control: no-cache` and an `ETag`: a browser revalidates it
//!   (a `304` costs a few bytes) and so always gets the assets of the running binary.
//! - The assets live under `/admin/cluster/assets/<version>/`, where the version is a hash
//!   of their contents: they are cached for a year (`immutable`), and a new binary gives new
//!   URLs. A request for another version (a page left open across an upgrade) gets the
//!   current asset, not cached.
//! - Every answer carries a Content-Security-Policy that allows nothing from elsewhere (no
//!   inline script, no inline style, no frame, no form) and `nosniff`.
//! - A browser that accepts gzip gets each file gzipped (uPlot: 51 KB, 22 KB gzipped),
//!   compressed once, on first request, and kept.

use std::sync::LazyLock;

use bytes::Bytes;
use cluster_core::{AcceptEncoding, ContentCoding, FrontBody};
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

use crate::routes::DASHBOARD;

/// The page's policy: scripts, styles, images and connections from this origin only.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($name:literal, $type:expr, $path:literal) => {
        Asset { name: $name, content_type: $type, body: include_bytes!($path) }
    };
}

/// Every asset the page loads, by the name it is served under.
const ASSETS: &[Asset] = &[
    asset!("errors.js", JS, "../assets/dashboard/errors.js"),
    asset!("app.js", JS, "../assets/dashboard/app.js"),
    asset!("stream.js", JS, "../assets/dashboard/stream.js"),
    asset!("format.js", JS, "../assets/dashboard/format.js"),
    asset!("words.js", JS, "../assets/dashboard/words.js"),
    asset!("workers.js", JS, "../assets/dashboard/workers.js"),
    asset!("charts.js", JS, "../assets/dashboard/charts.js"),
    asset!("controls.js", JS, "../assets/dashboard/controls.js"),
    asset!("dashboard.css", CSS, "../assets/dashboard/dashboard.css"),
    asset!("icon.svg", "image/svg+xml", "../assets/dashboard/icon.svg"),
    asset!("uPlot.iife.min.js", JS, "../assets/vendor/uplot/uPlot.iife.min.js"),
    asset!("uPlot.min.css", CSS, "../assets/vendor/uplot/uPlot.min.css"),
    asset!("uPlot-LICENSE.txt", "text/plain; charset=utf-8", "../assets/vendor/uplot/LICENSE"),
];

/// The page, with `{{assets}}` standing for the assets' directory.
const PAGE_TEMPLATE: &str = include_str!("../assets/dashboard/index.html");

/// A hash of every asset's name and contents (FNV-1a, 64 bits, as 16 hex digits).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for asset in ASSETS {
        for &b in asset.name.as_bytes().iter().chain(asset.body) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
});

/// The page as served.
static PAGE: LazyLock<Bytes> = LazyLock::new(|| {
    let assets = format!("{DASHBOARD}/assets/{}", *VERSION);
    Bytes::from(PAGE_TEMPLATE.replace("{{assets}}", &assets))
});

/// Every file's gzipped body, by [`File`] index, made once on first use; `None` where
/// gzip does not make it smaller.
static GZIPPED: LazyLock<Vec<Option<Bytes>>> =
    LazyLock::new(|| (0..=ASSETS.len()).map(|i| gzip(&File(i).body())).collect());

fn gzip(body: &[u8]) -> Option<Bytes> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    let gzipped = encoder.finish().ok()?;
    (gzipped.len() < body.len()).then(|| Bytes::from(gzipped))
}

/// The page or an asset, by index: assets first, the page last.
#[derive(Debug, Clone, Copy)]
struct File(usize);

impl File {
    fn body(self) -> Bytes {
        match ASSETS.get(self.0) {
            Some(asset) => Bytes::from_static(asset.body),
            None => PAGE.clone(),
        }
    }
}

/// What a dashboard path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    /// The page itself.
    Index,
    /// An asset (its index in [`ASSETS`]), and whether the URL names this binary's version.
    Asset { index: usize, current: bool },
}

/// The dashboard file `path` names, if any.
pub(crate) fn page(path: &str) -> Option<Page> {
    let rest = path.strip_prefix(DASHBOARD)?;
    if rest.is_empty() || rest == "/" {
        return Some(Page::Index);
    }
    let (version, name) = rest.strip_prefix("/assets/")?.split_once('/')?;
    let index = ASSETS.iter().position(|a| a.name == name)?;
    Some(Page::Asset { index, current: version == VERSION.as_str() })
}

/// The answer to a `GET` (or, with `head`, a `HEAD`) of `page`.
pub(crate) fn serve(page: Page, request: &HeaderMap, head: bool) -> Response<FrontBody> {
    let (file, content_type, cache, mut etag) = match page {
        Page::Index => (File(ASSETS.len()), "text/html; charset=utf-8", "no-cache", page_etag()),
        Page::Asset { index, current } => {
            let cache = if current { "private, max-age=31536000, immutable" } else { "no-cache" };
            let etag = format!("\"{}-{index}\"", *VERSION);
            (File(index), ASSETS[index].content_type, cache, etag)
        }
    };
    let gzipped = AcceptEncoding::from_headers(request)
        .accepts(ContentCoding::Gzip)
        .then(|| GZIPPED[file.0].clone())
        .flatten();
    let encoded = gzipped.is_some();
    if encoded {
        // Another representation: another tag.
        etag.insert_str(etag.len() - 1, "-gz");
    }
    let body = gzipped.unwrap_or_else(|| file.body());
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let length = body.len();
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, None)
    } else {
        (StatusCode::OK, (!head).then_some(body))
    };
    let mut response = Response::new(match body {
        Some(bytes) => Full::new(bytes).map_err(|never| match never {}).boxed_unsync(),
        None => Empty::new().map_err(|never| match never {}).boxed_unsync(),
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if encoded {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if head && status == StatusCode::OK {
        // What a GET would send.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    protect(headers);
    response
}

/// The headers every dashboard answer carries.
fn protect(headers: &mut HeaderMap) {
    headers
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
}

fn page_etag() -> String {
    format!("\"{}-page\"", *VERSION)
}

/// The assets' directory in this binary (`/admin/cluster/assets/<version>`), for tests and
/// people who want to check the page's size.
pub fn assets_dir() -> String {
    format!("{DASHBOARD}/assets/{}", *VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::ACCEPT_ENCODING;

    #[test]
    fn paths_name_the_page_and_its_assets() {
        assert_eq!(page("/admin/cluster"), Some(Page::Index));
        assert_eq!(page("/admin/cluster/"), Some(Page::Index));
        let app = format!("{}/app.js", assets_dir());
        assert!(matches!(page(&app), Some(Page::Asset { current: true, .. })));
        assert!(matches!(
            page("/admin/cluster/assets/0123/app.js"),
            Some(Page::Asset { current: false, .. })
        ));
        for none in ["/admin/cluster/nope", "/admin/cluster/assets/x/nope.js", "/admin/clusterx"] {
            assert_eq!(page(none), None, "{none}");
        }
    }

    #[test]
    fn the_page_names_every_asset_it_loads_by_its_versioned_path() {
        let page = std::str::from_utf8(&PAGE).unwrap();
        assert!(!page.contains("{{"), "a placeholder left in the page");
        for name in ["errors.js", "app.js", "dashboard.css", "uPlot.iife.min.js", "icon.svg"] {
            assert!(page.contains(&format!("{}/{name}", assets_dir())), "{name}");
        }
        for needle in ["http://", "https://", "//cdn", " style=", "<script>", "onclick"] {
            assert!(!page.contains(needle), "the page contains {needle:?}");
        }
    }

    #[test]
    fn gzip_is_sent_to_who_takes_it_and_says_so() {
        let mut request = HeaderMap::new();
        request.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
        let uplot = ASSETS.iter().position(|a| a.name == "uPlot.iife.min.js").unwrap();
        let page = Page::Asset { index: uplot, current: true };
        let response = serve(page, &request, false);
        assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[VARY], "accept-encoding");
        let gz_tag = response.headers()[ETAG].to_str().unwrap().to_owned();
        assert!(gz_tag.ends_with("-gz\""), "{gz_tag}");
        let gzipped = GZIPPED[uplot].clone().unwrap();
        assert!(gzipped.len() < ASSETS[uplot].body.len() / 2, "{} bytes", gzipped.len());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, ASSETS[uplot].body);
        for refused in ["identity", "gzip;q=0", "br", "gzip; q=0.0"] {
            request.insert(ACCEPT_ENCODING, HeaderValue::from_static(refused));
            let response = serve(page, &request, false);
            assert!(response.headers().get(CONTENT_ENCODING).is_none(), "{refused}");
            assert_ne!(response.headers()[ETAG], gz_tag.as_str());
        }
    }

    #[test]
    fn a_matching_etag_gets_304_without_a_body() {
        let mut request = HeaderMap::new();
        request.insert(IF_NONE_MATCH, HeaderValue::from_str(&page_etag()).unwrap());
        let response = serve(Page::Index, &request, false);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[ETAG], page_etag().as_str());
    }
}

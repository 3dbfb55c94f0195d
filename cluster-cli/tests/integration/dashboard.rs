//! The dashboard at `/admin/cluster`: how the page and its assets are served, and the page
//! itself in a real headless Chromium against a real cluster: live figures, scaling, a
//! rolling restart, a worker restart, the server's refusals, keyboard, a phone-width screen,
//! the disconnected state, and no error in the page.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::Value;

use crate::admin::{admin_addr, call};
use crate::browser::Browser;
use crate::embedded::{failures, load};
use crate::util::{ClusterCmd, Worker};

const TOKEN: &str = "dashboard-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset URLs a text (the page, or a module) names: `/admin/cluster/assets/...`, and the
/// modules a module imports (`./x.js`, resolved against `dir`).
fn linked_assets(text: &str, dir: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for quote in text.split('"').skip(1).step_by(2) {
        if quote.starts_with("/admin/cluster/assets/") {
            found.insert(quote.to_owned());
        } else if let Some(module) = quote.strip_prefix("./") {
            found.insert(format!("{dir}/{module}"));
        }
    }
    found
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_types_cache_headers_and_a_strict_policy() {
    let config = r#"{"admin": {"listen": "127.0.0.1:0"}}"#;
    let c = ClusterCmd::workers(1, Worker::Rust).config(config).spawn(1);
    let admin = admin_addr(&c);

    let (status, headers, page) = call(admin, "GET", "/admin/cluster", &[], "").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        headers["cache-control"], "no-cache",
        "the page is revalidated: new binary, new assets"
    );
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, body) =
        call(admin, "GET", "/admin/cluster", &[("if-none-match", &etag)], "").await;
    assert_eq!((status, body.as_str()), (304, ""), "an unchanged page costs a few bytes");
    let (status, _, same) = call(admin, "GET", "/admin/cluster/", &[], "").await;
    assert_eq!((status, same == page), (200, true), "with a trailing slash too");

    // Every asset the page names, and every module those import.
    let dir = page
        .split('"')
        .find_map(|q| q.strip_suffix("/app.js").filter(|d| d.starts_with("/admin/cluster/assets/")))
        .expect("the page loads app.js from the assets directory")
        .to_owned();
    let mut todo: Vec<String> = linked_assets(&page, &dir).into_iter().collect();
    let mut served = BTreeSet::new();
    let (mut total, mut total_gzipped) = (0, 0);
    while let Some(path) = todo.pop() {
        if !served.insert(path.clone()) {
            continue;
        }
        let (status, headers, body) = call(admin, "GET", &path, &[], "").await;
        assert_eq!(status, 200, "{path}: {body}");
        total += body.len();
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("txt") => "text/plain; charset=utf-8",
            other => panic!("unexpected asset type {other:?} for {path}"),
        };
        assert_eq!(headers["content-type"], expected, "{path}");
        assert_eq!(headers["cache-control"], "private, max-age=31536000, immutable", "{path}");
        assert_eq!(headers["content-security-policy"], CSP, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        // Nothing from elsewhere: no CDN, no web font (uPlot's header names its home page).
        let own = body.replace("/*! https://github.com/leeoniya/uPlot", "");
        let own = own.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for outside in ["http://", "https://", "@import", "fonts.g"] {
            assert!(!own.contains(outside), "{path} refers to {outside}");
        }
        if expected.starts_with("text/javascript") {
            todo.extend(linked_assets(&body, &dir));
        }
        let gzip = [("accept-encoding", "gzip, deflate, br")];
        let (status, gz_headers, _) = call(admin, "GET", &path, &gzip, "").await;
        assert_eq!(status, 200);
        if gz_headers.get("content-encoding").is_some() {
            assert_eq!(gz_headers["content-encoding"], "gzip", "{path}");
            total_gzipped +=
                gz_headers["content-length"].to_str().unwrap().parse::<usize>().unwrap();
        } else {
            total_gzipped += body.len();
        }
        assert_eq!(gz_headers["vary"], "accept-encoding", "{path}");
        let (status, head_headers, head_body) = call(admin, "HEAD", &path, &[], "").await;
        assert_eq!((status, head_body.as_str()), (200, ""), "HEAD {path}");
        assert_eq!(head_headers["content-length"], body.len().to_string().as_str(), "HEAD {path}");
    }
    println!(
        "the page: {} bytes; {} assets: {total} bytes ({total_gzipped} gzipped)",
        page.len(),
        served.len()
    );
    for name in ["app.js", "dashboard.css", "uPlot.iife.min.js", "uPlot-LICENSE.txt", "format.js"] {
        assert!(served.contains(&format!("{dir}/{name}")), "{name} is not reachable from the page");
    }

    // A page left open across an upgrade asks for the old version: it gets the asset, not cached.
    let (status, headers, _) =
        call(admin, "GET", "/admin/cluster/assets/0000000000000000/app.js", &[], "").await;
    assert_eq!((status, headers["cache-control"].to_str().unwrap()), (200, "no-cache"));
    for missing in ["/admin/cluster/nope", &format!("{dir}/nope.js"), "/admin/cluster/assets/"] {
        let (status, _, _) = call(admin, "GET", missing, &[], "").await;
        assert_eq!(status, 404, "{missing}");
    }
    let (status, headers, _) = call(admin, "POST", "/admin/cluster", &[], "").await;
    assert_eq!((status, headers["allow"].to_str().unwrap()), (405, "GET, HEAD"));
    // A link from another site opens the page; a frame or a script from there does not.
    let from = |dest: &'static str| {
        [("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", dest)]
    };
    let (status, _, _) = call(admin, "GET", "/admin/cluster", &from("document"), "").await;
    assert_eq!(status, 200, "a link from another site");
    let (status, _, _) = call(admin, "GET", "/admin/cluster", &from("iframe"), "").await;
    assert_eq!(status, 403, "a frame on another site");
}

#[tokio::test]
async fn on_the_front_port_the_page_needs_the_token_and_never_reaches_a_worker() {
    // Without a token: hidden, and not passed to the application either.
    let c = ClusterCmd::workers(1, Worker::Rust).spawn(1);
    let (status, _, body) = call(c.addr, "GET", "/admin/cluster", &[], "").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("not served on this port"),
        "the cluster's answer, not the worker's: {body}"
    );
    drop(c);

    let config = format!(r#"{{"admin": {{"token": "{TOKEN}"}}}}"#);
    let c = ClusterCmd::workers(1, Worker::Rust).config(&config).spawn(1);
    let (status, headers, _) = call(c.addr, "GET", "/admin/cluster", &[], "").await;
    assert_eq!(status, 401);
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"), "a browser asks");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{TOKEN}"))
    );
    let (status, headers, page) =
        call(c.addr, "GET", "/admin/cluster", &[("authorization", &basic)], "").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-security-policy"], CSP);
    assert!(page.contains("<title>cluster</title>"));
}

/// The pids the page shows, in row order (an expression).
const PIDS: &str = "[...document.querySelectorAll('#worker-rows tr[data-worker-id]')]\
                    .map(tr => Number(tr.dataset.pid))";

/// The cluster's worker pids as its status says.
async fn status_pids(admin: SocketAddr) -> BTreeSet<u64> {
    let (_, _, body) = call(admin, "GET", "/api/admin/cluster/status", &[], "").await;
    let status: Value = serde_json::from_str(&body).expect("status JSON");
    status["workers"].as_array().unwrap().iter().map(|w| w["pid"].as_u64().unwrap()).collect()
}

fn pid_set(v: &Value) -> BTreeSet<u64> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_and_operates_a_live_cluster_in_a_real_browser() {
    let Some(browser) = Browser::start(1280, 1000).await else { return };
    let config = r#"{"admin": {"listen": "127.0.0.1:0", "eventsInterval": 500},
                     "scaling": {"minWorkers": 1, "maxWorkers": 4},
                     "healthCheckInterval": 1000}"#;
    let c = ClusterCmd::workers(2, Worker::Rust).config(config).spawn(2);
    let admin = admin_addr(&c);
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.addr, "/", 2, 20_000, Arc::clone(&stop));
    let url = format!("http://127.0.0.1:{}/admin/cluster", admin.port());
    browser.client.goto(&url).await.expect("open the dashboard");

    // Live figures for each worker, under its pid.
    browser
        .until("the stream is live", WAIT, "return document.body.dataset.connection === 'live'")
        .await;
    let shown = pid_set(
        &browser.until("two workers", WAIT, &format!("return {PIDS}.length === 2 && {PIDS}")).await,
    );
    assert_eq!(shown, status_pids(admin).await, "the page shows the cluster's workers");
    browser
        .until(
            "requests counted on every worker",
            WAIT,
            "const rows = [...document.querySelectorAll('#worker-rows tr[data-worker-id]')];\
             return rows.length === 2 && rows.every(tr => \
               Number(tr.querySelector('.c-requests').textContent.replace(/,/g, '')) > 0 \
               && tr.querySelector('.c-memory').textContent.includes('MB'))",
        )
        .await;
    browser
        .until(
            "cluster totals",
            WAIT,
            "return document.getElementById('t-workers').textContent.startsWith('2 / 2') \
             && document.getElementById('t-rps').textContent !== '–'",
        )
        .await;
    browser
        .until(
            "charts drawn",
            WAIT,
            "return document.querySelectorAll('.chart canvas').length >= 4",
        )
        .await;
    let log = browser.js("return document.getElementById('event-log').textContent").await;
    assert!(log.as_str().unwrap().contains("started in slot 0"), "the events so far: {log}");
    browser.screenshot("desktop").await;

    // Scale up: a third worker appears.
    browser.client.find(Locator::Id("scale-up")).await.unwrap().click().await.unwrap();
    let three = pid_set(
        &browser
            .until("a third worker", WAIT, &format!("return {PIDS}.length === 3 && {PIDS}"))
            .await,
    );
    assert!(shown.is_subset(&three), "the two first workers stay: {shown:?} {three:?}");
    browser
        .until(
            "the answer",
            WAIT,
            "return document.getElementById('control-message').textContent.includes('from 2 to 3')",
        )
        .await;

    // Validated in the page, then by the server, whose message is shown.
    let input = browser.client.find(Locator::Id("scale-n")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys("9").await.unwrap();
    browser.client.find(Locator::Id("scale-set")).await.unwrap().click().await.unwrap();
    browser
        .until(
            "the page's own check",
            WAIT,
            "return document.getElementById('control-message').textContent.includes('from 1 to 4')",
        )
        .await;
    input.clear().await.unwrap();
    input.send_keys("4").await.unwrap();
    browser.client.find(Locator::Id("scale-set")).await.unwrap().click().await.unwrap();
    browser.until("four workers", WAIT, &format!("return {PIDS}.length === 4")).await;
    browser.client.find(Locator::Id("scale-up")).await.unwrap().click().await.unwrap();
    let refusal = browser
        .until(
            "the server's refusal",
            WAIT,
            "const m = document.getElementById('control-message'); \
             return m.dataset.kind === 'error' && m.textContent",
        )
        .await;
    assert!(refusal.as_str().unwrap().contains("scaling.maxWorkers (4)"), "{refusal}");
    browser.client.find(Locator::Id("scale-down")).await.unwrap().click().await.unwrap();
    browser.until("back to three", WAIT, &format!("return {PIDS}.length === 3")).await;

    // A rolling restart: progress to 3 of 3, and every pid changes.
    browser
        .until(
            "three ready",
            WAIT,
            "return document.getElementById('t-workers').textContent.startsWith('3 / 3')",
        )
        .await;
    let before = pid_set(&browser.js(&format!("return {PIDS}")).await);
    browser.client.find(Locator::Id("rolling-restart")).await.unwrap().click().await.unwrap();
    let done = browser
        .until(
            "the rolling restart to finish",
            WAIT,
            "const t = document.getElementById('operation-text').textContent; \
             return t.includes('3 of 3') && t.includes('done') && t",
        )
        .await;
    assert!(done.as_str().unwrap().starts_with("Rolling restart #"), "{done}");
    let old: Vec<u64> = before.iter().copied().collect();
    let after = pid_set(
        &browser
            .until(
                "three new workers, none of the old ones",
                WAIT,
                &format!(
                    "const p = {PIDS}; return p.length === 3 && p.every(x => !{old:?}.includes(x)) && p"
                ),
            )
            .await,
    );
    assert!(before.is_disjoint(&after), "every pid changed: {before:?} -> {after:?}");
    assert_eq!(after, status_pids(admin).await);
    let log = browser.js("return document.getElementById('event-log').textContent").await;
    assert!(log.as_str().unwrap().contains("finished: 3 replaced"), "{log}");

    // Restart one worker from its row.
    let first = browser.js(&format!("return {PIDS}[0]")).await.as_u64().unwrap();
    browser
        .client
        .find(Locator::Css("#worker-rows tr[data-worker-id] button.restart-worker"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let replaced = browser
        .until(
            "the worker replaced",
            WAIT,
            &format!("const p = {PIDS}; return p.length === 3 && !p.includes({first}) && p"),
        )
        .await;
    assert_eq!(pid_set(&replaced), status_pids(admin).await);

    // Keyboard: Tab reaches every control.
    browser.js("document.activeElement.blur(); window.scrollTo(0, 0)").await;
    let mut reached = BTreeSet::new();
    for _ in 0..12 {
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: Key::Tab.into() })
            .then(KeyAction::Up { value: Key::Tab.into() });
        browser.client.perform_actions(tab).await.unwrap();
        let id = browser.js("const a = document.activeElement; return a.id || a.className").await;
        reached.insert(id.as_str().unwrap_or("").to_owned());
    }
    for control in
        ["scale-down", "scale-up", "scale-n", "scale-set", "rolling-restart", "restart-worker"]
    {
        assert!(reached.contains(control), "Tab does not reach {control}: {reached:?}");
    }

    // Nothing went wrong in the page (errors, rejected promises, CSP violations, console.error).
    let errors = browser.js("return window.dashboardErrors").await;
    assert_eq!(errors, Value::Array(vec![]), "errors in the page");

    // A phone: 360 px wide, nothing wider than the screen, the controls on it.
    browser.client.set_window_size(360, 800).await.unwrap();
    browser
        .until(
            "the phone layout",
            WAIT,
            "const d = document.documentElement; \
             const fits = id => document.getElementById(id).getBoundingClientRect().right <= d.clientWidth; \
             return d.scrollWidth <= d.clientWidth && ['scale-up', 'scale-set', 'rolling-restart'].every(fits)",
        )
        .await;
    browser.screenshot("phone").await;
    browser.js("document.getElementById('workers-title').scrollIntoView()").await;
    browser.screenshot("phone-workers").await;

    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.expect("traffic");
    assert!(
        failures(&seen).is_empty(),
        "requests failed while operated from the page: {:?}",
        failures(&seen)
    );

    // The cluster goes away: the page says so.
    browser.client.set_window_size(1280, 1000).await.unwrap();
    drop(c);
    browser
        .until(
            "the disconnected state",
            WAIT,
            "const b = document.getElementById('banner'); \
             return ['reconnecting', 'stale', 'stopped'].includes(document.body.dataset.connection) && !b.hidden",
        )
        .await;
    browser.js("window.scrollTo(0, 0)").await;
    browser.screenshot("disconnected").await;
    browser.close().await;
}

//! The access log: one `cluster::access` line per request when enabled, none otherwise.

mod proxy_support;

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use cluster_core::ProxyConfig;
use http::StatusCode;
use proxy_support::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Records the fields of every `cluster::access` event at INFO.
#[derive(Clone, Default)]
struct AccessLines(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for AccessLines {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        if meta.target() == "cluster::access" && *meta.level() == Level::INFO {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn run(logging: bool) -> Vec<String> {
    let lines = AccessLines::default();
    // The current-thread runtime runs every task of the test on this thread.
    let _guard = tracing::subscriber::set_default(lines.clone());
    let worker = inspecting(1).await;
    let mut cfg = ProxyConfig::default();
    cfg.request_logging = logging;
    let proxy = start_proxy(&[worker.addr], cfg).await;
    let mut client = Client::connect(proxy.addr).await;
    for path in ["/a?x=1", "/b"] {
        let resp = client.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK);
        text(resp).await;
    }
    proxy.router.remove(1);
    assert_eq!(client.get("/c").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    lines.0.lock().unwrap().clone()
}

#[tokio::test]
async fn one_access_line_per_request_when_enabled() {
    let lines = within(run(true)).await;
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("method=GET") && lines[0].contains("path=\"/a\""), "{}", lines[0]);
    assert!(lines[0].contains("status=200") && lines[0].contains("worker=1"), "{}", lines[0]);
    assert!(lines[0].contains("duration_us="), "{}", lines[0]);
    assert!(lines[2].contains("status=503") && lines[2].contains("worker=-1"), "{}", lines[2]);
}

#[tokio::test]
async fn no_access_line_when_disabled() {
    let lines = within(run(false)).await;
    assert!(lines.is_empty(), "{lines:#?}");
}

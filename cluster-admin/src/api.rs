//! [`AdminApi`]: the admin routes, served on the control socket, the admin listener and (with
//! a token) the front port, all calling [`ClusterHandle`] methods and nothing else.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster_core::config::ClusterSpec;
use cluster_core::{ClusterHandle, FrontBody};
use http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::access::{Access, Entry, Verdict};
use crate::hub::Hub;
use crate::routes::{self, Route};
use crate::{control, dashboard, metrics, openapi, origin, sse};

/// Largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;

/// Settings of the admin API, from the `admin` section of the configuration.
#[derive(Clone)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The token that opens the admin routes on the front port and the admin listener.
    pub token: Option<String>,
    /// The health route answers without the token.
    pub public_health: bool,
    /// The health route answers 200 while at least this share (percent) of the desired
    /// workers is in rotation.
    pub min_healthy_percent: f64,
    /// How often the events stream sends a status snapshot.
    pub events_interval: Duration,
    /// How often an idle events stream sends a keep-alive comment.
    pub keep_alive: Duration,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("public_health", &self.public_health)
            .field("min_healthy_percent", &self.min_healthy_percent)
            .field("events_interval", &self.events_interval)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl AdminConfig {
    /// The settings of `spec`'s `admin` section.
    pub fn from_spec(spec: &ClusterSpec) -> Self {
        Self {
            token: spec.admin.token.clone(),
            public_health: spec.admin.public_health,
            min_healthy_percent: spec.admin.min_healthy_percent,
            events_interval: spec.admin.events_interval,
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// The admin API of one cluster. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: ClusterHandle,
    hub: Hub,
    access: Access,
    cfg: AdminConfig,
    refusals: std::sync::Mutex<Refusals>,
}

/// Requests refused for a missing or wrong token, logged at most once per
/// [`REFUSAL_LOG_EVERY`] with how many came since (someone guessing tokens shows up in the log
/// without flooding it).
#[derive(Debug, Default)]
struct Refusals {
    since_logged: u64,
    logged_at: Option<std::time::Instant>,
}

/// How often refused requests are logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

impl AdminApi {
    /// The admin API of the cluster behind `handle`. Starts following its events (for the
    /// events stream), so it must be called inside a Tokio runtime.
    pub fn new(handle: ClusterHandle, cfg: AdminConfig) -> Self {
        let hub = Hub::start(handle.clone(), cfg.events_interval);
        let access = Access::new(cfg.token.as_deref(), cfg.public_health);
        let handle = handle.on_behalf_of("admin API");
        let refusals = std::sync::Mutex::default();
        Self { inner: Arc::new(Inner { handle, hub, access, cfg, refusals }) }
    }

    /// Answers one request that came in at `entry`. Never fails: every outcome is a response.
    pub async fn serve(&self, req: Request<Incoming>, entry: Entry) -> Response<FrontBody> {
        let path = req.uri().path().to_owned();
        let Some(route) = routes::route(&path, entry) else {
            return match self.inner.access.check(entry, req.headers(), false) {
                Verdict::Allow => error(StatusCode::NOT_FOUND, format!("no admin route {path}")),
                Verdict::Unauthorized => self.refused(entry),
                Verdict::Hidden => not_served_here(),
            };
        };
        match self.inner.access.check(entry, req.headers(), route == Route::Health) {
            Verdict::Allow => {}
            Verdict::Unauthorized => return self.refused(entry),
            Verdict::Hidden => return not_served_here(),
        }
        let allowed = route.methods();
        if !allowed.contains(req.method()) {
            return method_not_allowed(allowed);
        }
        let open_listener = self.inner.cfg.token.is_none();
        if let Err((status, message)) =
            origin::check(req.method(), req.headers(), entry, open_listener)
        {
            return error(status, message);
        }
        let inner = &self.inner;
        match route {
            Route::Status => match inner.handle.status().await {
                Ok(status) => json(StatusCode::OK, &status),
                Err(_) => gone(),
            },
            Route::Health => control::health(&inner.handle, inner.cfg.min_healthy_percent).await,
            Route::Events => {
                let after = last_event_id(&req);
                let end_on_shutdown = entry == Entry::FrontPort;
                let keep_alive = inner.cfg.keep_alive;
                sse::respond(&inner.hub, inner.handle.clone(), after, end_on_shutdown, keep_alive)
            }
            Route::Metrics => match inner.handle.status().await {
                Ok(status) => text(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics::render(&status),
                ),
                Err(_) => gone(),
            },
            Route::OpenApi => text(StatusCode::OK, "application/json", openapi::DOCUMENT.into()),
            Route::Dashboard(page) => {
                dashboard::serve(page, req.headers(), req.method() == Method::HEAD)
            }
            Route::Scale | Route::Restart | Route::WorkerRestart(_) | Route::Shutdown => {
                let body = match read_json(req).await {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                control::act(&inner.handle, &inner.hub, route, body).await
            }
            Route::Upgrade => {
                let body = match read_json(req).await {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                crate::upgrade::upgrade(&inner.handle, entry, &body).await
            }
        }
    }

    /// A 401, counted and logged now and then.
    fn refused(&self, entry: Entry) -> Response<FrontBody> {
        let mut r = self.inner.refusals.lock().unwrap_or_else(|p| p.into_inner());
        r.since_logged += 1;
        let due = r.logged_at.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            tracing::warn!(
                target: "cluster::admin",
                "admin API: {} request(s) without a valid token refused (on {entry:?})",
                r.since_logged
            );
            r.since_logged = 0;
            r.logged_at = Some(std::time::Instant::now());
        }
        unauthorized()
    }

    /// The front door that serves the admin routes on the front port (with the token) and
    /// keeps them from ever reaching a worker.
    pub fn front_door(&self) -> Arc<dyn cluster_core::FrontDoor> {
        Arc::new(crate::front::AdminFrontDoor::new(self.clone()))
    }
}

/// Where an events client resumes: its `Last-Event-ID` header, else a `lastEventId` query
/// parameter (a new `EventSource` cannot send the header: the dashboard reconnecting after
/// the stream failed, or asking for the kept events with `lastEventId=0`).
fn last_event_id(req: &Request<Incoming>) -> Option<u64> {
    let header = req.headers().get("last-event-id").and_then(|v| v.to_str().ok());
    if let Some(id) = header {
        return id.trim().parse().ok();
    }
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("lastEventId=")?.parse().ok())
}

/// Reads a JSON request body (an empty one is `null`).
async fn read_json(req: Request<Incoming>) -> Result<Value, Response<FrontBody>> {
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let bytes = match tokio::time::timeout(crate::server::HEADER_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            let message = format!("the request body is larger than {MAX_BODY} bytes, or broken");
            return Err(error(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        Err(_) => {
            let secs = crate::server::HEADER_TIMEOUT.as_secs();
            let message = format!("the request body did not arrive within {secs} s");
            return Err(error(StatusCode::BAD_REQUEST, message));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("the request body is not JSON: {e}")))
}

/// A response with `body` of `content_type`.
pub(crate) fn text(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<FrontBody> {
    let body = Full::new(Bytes::from(body)).map_err(|never| match never {});
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<FrontBody> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    text(status, "application/json", body)
}

/// A JSON error: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response<FrontBody> {
    json(status, &json!({ "error": message.into() }))
}

fn unauthorized() -> Response<FrontBody> {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "the admin API needs the admin token (Bearer, or Basic with the token as password)",
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"cluster\", charset=\"UTF-8\""),
    );
    r
}

fn not_served_here() -> Response<FrontBody> {
    error(
        StatusCode::NOT_FOUND,
        "not found: the admin API is not served on this port (no admin.token is configured)",
    )
}

fn method_not_allowed(allowed: &[Method]) -> Response<FrontBody> {
    let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {}", list.join(", ")),
    );
    if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
        r.headers_mut().insert(ALLOW, v);
    }
    r
}

pub(crate) fn gone() -> Response<FrontBody> {
    error(StatusCode::SERVICE_UNAVAILABLE, "the cluster has stopped")
}

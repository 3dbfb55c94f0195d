//! One proxied request: pick a worker, forward, retry once when that is safe, and hand the
//! response back with its body streaming.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use cluster_balancer::{InFlight, RequestCtx};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Body;
use tokio::time::Instant;

use super::body::StreamGuard;
use super::body::{ClientBody, Finish, ProxyBody, ReqBody, UpstreamBody};
use super::conn::{ConnCtx, Exchange};
use super::error::{Fault, ProxyError, Retry};
use super::front::{EndsOnDrain, FrontPeer};
use super::limits::{self, BodyBudget};
use super::pool::{self, H1SendError, SendError, Sent};
use super::{affinity, h1, headers, upgrade};
use crate::access_log::{self, Entry};
use crate::ratelimit::{Decision, QuotaState, RateLimit};
use crate::routing::Backend;

/// hyper's service entry point: never fails; errors become short error responses.
///
/// The request path, as stages in this order; each is built once at start, and one that is
/// off is a `None` that costs a branch:
/// 1. **admin routes**: the front door answers the requests it claims;
/// 2. **client address**: the peer, or `X-Forwarded-For` through trusted proxies
///    ([`ConnCtx::client_addr`]; computed first because the access log records it too);
/// 3. **limits**: a declared body over `maxBodySize` (413); a `Host` outside the grammar is
///    refused where the request is rewritten, a streamed body counted as it goes;
/// 4. **rate limit**: 429 beyond the client's quota;
/// 5. **balance and forward** ([`proxy`]);
/// 6. **compression** of the worker's body as it streams (decided in [`proxy`], where the
///    body is wrapped, from the request it read before forwarding);
/// 7. **access log**: a line when the response body has been sent.
pub(crate) async fn handle<B: ClientBody>(
    conn: Arc<ConnCtx>,
    req: Request<B>,
) -> Result<Response<ProxyBody>, Infallible> {
    // The connection stops waiting for a request head until the response body is done.
    let exchange = Exchange::begin(&conn);
    // 2. Read before `prepare_request` rewrites `X-Forwarded-For`.
    let client = conn.client_addr(req.headers());
    // 7. Dropped with this future if the client goes away before a response: logged as 499.
    let entry = conn.shared.cfg.access_log.as_ref().map(|log| Entry::new(log, client, &req));
    let h2 = req.version() == Version::HTTP_2;
    if h2 {
        // No request heads for the header read timeout to time on this connection.
        conn.activity.h2.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // 1.
    if let Some(front) = &conn.shared.cfg.front_door {
        if B::front_claims(&req, front.as_ref()) {
            let peer = FrontPeer { addr: conn.client.ip, trusted_proxy: conn.client.trusted };
            let response = B::call_front(req, front.as_ref(), peer).await;
            let stream =
                response.extensions().get::<EndsOnDrain>().map(|_| StreamGuard::new(&conn));
            let response = response.map(|body| ProxyBody::front(body, stream));
            let response = let_go_after(&conn, h2, logged(response, entry, None));
            return Ok(response.map(|body| body.within(exchange)));
        }
    }
    let mut worker = None;
    // 3.
    let resp = if let Err(error) = limits::check_request(&req, &conn.shared.cfg.limits) {
        failed(&conn, error, h2, &mut worker)
    } else {
        // 4.
        match rate_limit(&conn, client, req.uri().path()).await {
            Err(refusal) => refusal,
            Ok(quota) => {
                // 5.
                let mut resp = match proxy(&conn, req, client, &mut worker).await {
                    Ok(resp) => resp,
                    Err(error) => failed(&conn, error, h2, &mut worker),
                };
                if let Some((limit, quota)) = quota {
                    limit.annotate(resp.headers_mut(), &quota);
                }
                resp
            }
        }
    };
    // 7.
    let resp = let_go_after(&conn, h2, logged(resp, entry, worker));
    Ok(resp.map(|body| body.within(exchange)))
}

/// `resp`, with `Connection: close` once a new primary has taken over the front socket (hot
/// upgrade), or once the connection is shutting down (drain, idle timeout): an HTTP/1 client
/// then leaves after this response, which the server honours by closing the connection,
/// and reconnects (to the new primary). A tunnel (101) is left alone.
/// Checked as the response goes out, so a request that was in flight at the hand-over lets
/// its client go too. One atomic load per request.
fn let_go_after(conn: &ConnCtx, h2: bool, mut resp: Response<ProxyBody>) -> Response<ProxyBody> {
    let going = conn.serve.closing.load(std::sync::atomic::Ordering::Acquire)
        || conn.activity.shutdown.load(std::sync::atomic::Ordering::Relaxed);
    if !h2 && going && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        resp.headers_mut()
            .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    resp
}

/// The answer to a request that failed: counted against the worker when it was the
/// worker's fault; `worker` cleared when no worker took part (no worker ready, a bad
/// request), so that the access log says `-`.
fn failed(
    conn: &ConnCtx,
    error: ProxyError,
    h2: bool,
    worker: &mut Option<WorkerRef>,
) -> Response<ProxyBody> {
    // Per-request failures stay at debug: a dead worker would flood the log, and the
    // supervisor reports worker health on its own.
    tracing::debug!(target: "cluster::proxy", %error, fault = ?error.fault(), "request failed");
    if error.worker().is_none() {
        *worker = None;
    }
    if let (Fault::Worker, Some(id)) = (error.fault(), error.worker()) {
        // Errors are rare: finding the worker by id is fine here.
        let table = conn.shared.router.snapshot();
        if let Some(b) = table.backends().iter().find(|b| b.id() == id) {
            b.metrics().record_failure(error.failure_kind());
        }
    }
    let mut resp = error.to_response();
    if h2 {
        // Connection options are HTTP/1 only (RFC 9113 §8.2.2).
        resp.headers_mut().remove(http::header::CONNECTION);
    }
    resp
}

/// `resp`, carrying `entry` (when the access log is on) with the response's status and the
/// worker that answered, to the end of its body.
fn logged(
    resp: Response<ProxyBody>,
    entry: Option<Entry>,
    worker: Option<WorkerRef>,
) -> Response<ProxyBody> {
    let Some(mut entry) = entry else { return resp };
    let record = entry.record();
    record.status = resp.status().as_u16();
    record.worker = worker.map(Into::into);
    resp.map(|body| body.logged(entry))
}

/// The rate limit stage: `Err` with the answer to a refused request (429, or 503 while the
/// shared store is down with fallback `deny`), else the quota to report in the response's
/// headers (`None` with the stage off, an exempt path, or no quota known).
async fn rate_limit<'c>(
    conn: &'c ConnCtx,
    client: IpAddr,
    path: &str,
) -> Result<Option<(&'c RateLimit, QuotaState)>, Response<ProxyBody>> {
    let Some(limit) = &conn.shared.cfg.rate_limit else { return Ok(None) };
    if limit.is_exempt(path) {
        return Ok(None);
    }
    let decision = limit.decide(client).await;
    if let Some(refusal) = limit.refusal(&decision) {
        return Err(refusal.map(ProxyBody::text));
    }
    Ok(match decision {
        Decision::Allowed(quota) => Some((limit, quota)),
        _ => None,
    })
}

/// Forwards one request and returns the worker's response head, its body still streaming.
async fn proxy<B: ClientBody>(
    conn: &ConnCtx,
    mut req: Request<B>,
    client: IpAddr,
    worker: &mut Option<WorkerRef>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if req.method() == Method::CONNECT {
        return Err(ProxyError::Method(Method::CONNECT));
    }
    let upgrade = headers::wants_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    let compress = conn
        .shared
        .cfg
        .compression
        .as_ref()
        .map(|c| (c, c.offer(req.method(), req.headers(), upgrade.is_some())));
    let forwarded = headers::prepare_request(&mut req, &conn.client, upgrade.is_some())
        .map_err(ProxyError::BadRequest)?;
    let after = conn.shared.cfg.request_timeout;
    let started = Instant::now();
    // Bounds the time to response headers only; the body streams for as long as it takes.
    let affinity = conn.shared.cfg.affinity_cookie.then(|| affinity::key(req.headers(), client));
    let affinity_key = affinity.map(|a| a.key);
    let sent = if h1::wants_h1(&req, upgrade.is_some()) {
        // Our own client: the `X-Forwarded-*` fields go straight into the encoded head.
        let head = h1::encode_request(&req, &forwarded);
        let head_request = req.method() == Method::HEAD;
        let h2 = req.version() == Version::HTTP_2;
        drop(req);
        let forward = forward_h1(conn, head, head_request, client, worker, affinity_key);
        if h2 {
            tokio::time::timeout(after, forward).await.map_err(drop)
        } else {
            conn.activity.within(started + after, forward).await
        }
    } else {
        forwarded.apply(req.headers_mut());
        // Boxed: hyper's client path is the less common one, and its future is three times
        // the size of ours; inline, every request in flight would carry its 2.4 KB (the
        // request's future is 2.6 KB with it boxed, 4.1 KB without).
        let forward = Box::pin(forward(conn, req, client, worker, affinity_key));
        tokio::time::timeout(after, forward).await.map_err(drop)
    };
    let (backend, guard, sent) =
        sent.map_err(|_| ProxyError::Timeout { worker: worker.map(|w| w.id), after })??;
    let Sent { mut response, sender } = sent;
    if let Some(a) = affinity.filter(|a| a.set_cookie) {
        affinity::set_cookie(response.headers_mut(), a.key);
    }
    let latency = started.elapsed();
    backend.metrics().record_response(response.status().as_u16(), latency);
    backend.load().observe_latency(latency);

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(downstream) = upgrade else {
            let reason = "101 Switching Protocols to a request that did not ask to upgrade";
            return Err(ProxyError::BadResponse { worker: backend.id(), reason });
        };
        let version = response.version();
        headers::prepare_response(response.headers_mut(), version, true);
        // The connection now belongs to the tunnel: `sender` is dropped, never pooled.
        return Ok(upgrade::tunnel(conn, downstream, response, guard));
    }

    let reusable = match response.body() {
        // Our own client read the head without its hop-by-hop fields.
        UpstreamBody::H1(body) => body.keep_alive(),
        UpstreamBody::Hyper(_) => {
            let version = response.version();
            headers::prepare_response(response.headers_mut(), version, false)
        }
    };
    // The client's server speaks HTTP/1.1 whatever the worker spoke (a worker's HTTP/1.0
    // response, framed by the end of its stream, goes on chunked).
    *response.version_mut() = Version::HTTP_11;
    let (mut parts, mut body) = response.into_parts();
    let finish = Finish { guard, backend, sender, reusable, bytes: 0 };
    let body = if body.is_end_stream() {
        // hyper will not poll a body that is already at its end: finish now.
        finish.complete(&mut body);
        ProxyBody::empty()
    } else {
        match compress.and_then(|(c, offer)| c.apply(offer, parts.status, &mut parts.headers)) {
            Some(encoder) => ProxyBody::compressed(body, encoder, finish),
            None => ProxyBody::upstream(body, finish),
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// The worker a request went to, as far as the handler needs to know it: its id for the
/// error's attribution, its slot and pid for the access log. `Copy`, so that recording it
/// costs no reference count.
#[derive(Debug, Clone, Copy)]
struct WorkerRef {
    id: u64,
    slot: usize,
    pid: Option<u32>,
}

impl WorkerRef {
    fn of(backend: &Backend) -> Self {
        Self { id: backend.id(), slot: backend.slot(), pid: backend.pid() }
    }
}

impl From<WorkerRef> for access_log::WorkerRef {
    fn from(w: WorkerRef) -> Self {
        access_log::WorkerRef { slot: w.slot, pid: w.pid }
    }
}

/// Picks a worker and sends the request, retrying once when that is safe: always when
/// nothing was sent (connect failure, or a pooled connection that closed before the request
/// was written), and for an idempotent request without a body when the worker failed before
/// any response byte. Never once a response head has arrived.
///
/// The retry goes to another worker. With no other worker, it goes to the same one only if
/// the failure was on a reused keep-alive connection (the worker closing an idle connection
/// as the request went out), which says nothing about the worker's health.
async fn forward<B: ClientBody>(
    conn: &ConnCtx,
    req: Request<B>,
    client: IpAddr,
    worker: &mut Option<WorkerRef>,
    affinity: Option<u64>,
) -> Result<(Arc<Backend>, InFlight, Sent), ProxyError> {
    let max_idle = conn.shared.cfg.upstream_idle_timeout;
    let ctx = RequestCtx { client: Some(client), avoid: None, affinity };
    let backend = pick(conn, &ctx, worker)?;
    let replay = Replay::capture(&req);

    let guard = backend.load().start();
    let budget = BodyBudget::new(conn.shared.cfg.limits.max_body_size);
    let body = |b: B| b.forward(&backend, budget);
    let sent = pool::send(&backend, req.map(body), max_idle).await;
    let SendError { error, request, reused } = match sent {
        Ok(sent) => return Ok((backend, guard, sent)),
        Err(e) => e,
    };
    drop(guard);
    let retry = match (error.retry(), request, replay) {
        (Retry::Unsent, Some(request), _) => request,
        (Retry::Unsent | Retry::IfIdempotent, None, Some(replay)) => replay.into_request(),
        _ => return Err(error),
    };
    let Some(next) = retry_on(conn, ctx, backend, reused, &error, worker) else {
        return Err(error);
    };
    let guard = next.load().start();
    match pool::send(&next, retry.map(|b| b.retarget(&next)), max_idle).await {
        Ok(sent) => Ok((next, guard, sent)),
        Err(e) => Err(e.error),
    }
}

/// [`forward`] for a request our own client carries ([`h1::wants_h1`]: a bodiless `GET`
/// or `HEAD`): the head is encoded once, and a retry writes the same bytes again, so no copy
/// of the request is kept for it. The retry rules are [`forward`]'s; both methods are
/// idempotent and bodiless, so a failure before the response head is always retried.
async fn forward_h1(
    conn: &ConnCtx,
    head: bytes::Bytes,
    head_request: bool,
    client: IpAddr,
    worker: &mut Option<WorkerRef>,
    affinity: Option<u64>,
) -> Result<(Arc<Backend>, InFlight, Sent), ProxyError> {
    let max_idle = conn.shared.cfg.upstream_idle_timeout;
    let ctx = RequestCtx { client: Some(client), avoid: None, affinity };
    let backend = pick(conn, &ctx, worker)?;
    let sent = |response: http::Response<h1::H1Body>| Sent {
        response: response.map(UpstreamBody::H1),
        sender: None,
    };

    let guard = backend.load().start();
    let H1SendError { error, reused } =
        match pool::send_h1(&backend, &head, head_request, max_idle).await {
            Ok(response) => return Ok((backend, guard, sent(response))),
            Err(e) => e,
        };
    drop(guard);
    if error.retry() == Retry::Never {
        return Err(error);
    }
    let Some(next) = retry_on(conn, ctx, backend, reused, &error, worker) else {
        return Err(error);
    };
    let guard = next.load().start();
    match pool::send_h1(&next, &head, head_request, max_idle).await {
        Ok(response) => Ok((next, guard, sent(response))),
        Err(e) => Err(e.error),
    }
}

/// The worker the router picks for a request, recorded in `worker`.
fn pick(
    conn: &ConnCtx,
    ctx: &RequestCtx,
    worker: &mut Option<WorkerRef>,
) -> Result<Arc<Backend>, ProxyError> {
    let backend = conn.shared.router.pick(ctx).ok_or(ProxyError::NoBackend)?;
    *worker = Some(WorkerRef::of(&backend));
    Ok(backend)
}

/// The worker a request that failed on `failed` is sent to again (recorded in `worker`):
/// another one, or the same one only when the failure was on a reused keep-alive connection
/// (see [`forward`]); `None` when there is none.
fn retry_on(
    conn: &ConnCtx,
    ctx: RequestCtx,
    failed: Arc<Backend>,
    reused: bool,
    error: &ProxyError,
    worker: &mut Option<WorkerRef>,
) -> Option<Arc<Backend>> {
    let ctx = RequestCtx { avoid: Some(failed.id()), ..ctx };
    let next = conn.shared.router.pick(&ctx).or_else(|| reused.then_some(failed))?;
    tracing::debug!(target: "cluster::proxy", %error, retry_on = next.id(), "retrying");
    *worker = Some(WorkerRef::of(&next));
    Some(next)
}

/// A copy of a request head, kept so the request can be sent again after the worker
/// failed mid-exchange; only for requests that are idempotent (RFC 9110 §9.2.2) and have
/// no body, the only ones that may be repeated without the client's knowledge.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    fn capture<B: Body>(req: &Request<B>) -> Option<Self> {
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        (idempotent && req.body().is_end_stream()).then(|| Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        })
    }

    fn into_request(self) -> Request<ReqBody> {
        let mut req = Request::new(ReqBody::Empty);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.headers;
        req
    }
}

//! One proxied request: pick a worker, forward, retry once when that is safe, and hand the
//! response back with its body streaming.

use std::convert::Infallible;
use std::sync::Arc;

use cluster_balancer::{InFlight, RequestCtx};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use tokio::time::Instant;

use super::body::StreamGuard;
use super::body::{Finish, ProxyBody, ReqBody};
use super::conn::ConnCtx;
use super::error::{Fault, ProxyError, Retry};
use super::front::{EndsOnDrain, FrontPeer};
use super::pool::{self, SendError, Sent};
use super::{affinity, headers, upgrade};
use crate::routing::Backend;

/// hyper's service entry point: never fails; errors become short error responses.
pub(crate) async fn handle(
    conn: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if let Some(front) = &conn.shared.cfg.front_door {
        if front.claims(&req) {
            let peer = FrontPeer { addr: conn.client.ip, trusted_proxy: conn.client.trusted };
            let response = front.call(req, peer).await;
            let stream =
                response.extensions().get::<EndsOnDrain>().map(|_| StreamGuard::new(&conn));
            return Ok(response.map(|body| ProxyBody::front(body, stream)));
        }
    }
    let log = conn
        .shared
        .cfg
        .request_logging
        .then(|| (Instant::now(), req.method().clone(), req.uri().clone()));
    let mut worker = None;
    let resp = match proxy(&conn, req, &mut worker).await {
        Ok(resp) => resp,
        Err(error) => {
            // Per-request failures stay at debug: a dead worker would flood the log, and the
            // supervisor reports worker health on its own.
            tracing::debug!(target: "cluster::proxy", %error, fault = ?error.fault(), "request failed");
            worker = error.worker().or(worker);
            if let (Fault::Worker, Some(id)) = (error.fault(), error.worker()) {
                // Errors are rare: finding the worker by id is fine here.
                let table = conn.shared.router.snapshot();
                if let Some(b) = table.backends().iter().find(|b| b.id() == id) {
                    b.metrics().record_failure(error.failure_kind());
                }
            }
            error.to_response()
        }
    };
    if let Some((start, method, uri)) = log {
        tracing::info!(
            target: "cluster::access",
            %method,
            path = uri.path(),
            status = resp.status().as_u16(),
            worker = worker.map(|w| w as i64).unwrap_or(-1),
            duration_us = start.elapsed().as_micros() as u64,
            client = %conn.client.ip,
        );
    }
    Ok(resp)
}

/// Forwards one request and returns the worker's response head, its body still streaming.
async fn proxy(
    conn: &ConnCtx,
    mut req: Request<Incoming>,
    worker: &mut Option<u64>,
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
    headers::prepare_request(&mut req, &conn.client, upgrade.is_some())
        .map_err(ProxyError::BadRequest)?;
    let after = conn.shared.cfg.request_timeout;
    let started = Instant::now();
    // Bounds the time to response headers only; the body streams for as long as it takes.
    let affinity =
        conn.shared.cfg.affinity_cookie.then(|| affinity::key(req.headers(), conn.client.ip));
    let (backend, guard, sent) =
        tokio::time::timeout(after, forward(conn, req, worker, affinity.map(|a| a.key)))
            .await
            .map_err(|_| ProxyError::Timeout { worker: *worker, after })??;
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

    let version = response.version();
    let reusable = headers::prepare_response(response.headers_mut(), version, false);
    let (mut parts, body) = response.into_parts();
    let sender = reusable.then_some(sender);
    let finish = Finish { guard, backend, sender, bytes: 0 };
    let body = if body.is_end_stream() {
        // hyper will not poll a body that is already at its end: finish now.
        finish.complete();
        ProxyBody::empty()
    } else {
        match compress.and_then(|(c, offer)| c.apply(offer, parts.status, &mut parts.headers)) {
            Some(encoder) => ProxyBody::compressed(body, encoder, finish),
            None => ProxyBody::upstream(body, finish),
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// Picks a worker and sends the request, retrying once when that is safe: always when
/// nothing was sent (connect failure, or a pooled connection that closed before the request
/// was written), and for an idempotent request without a body when the worker failed before
/// any response byte. Never once a response head has arrived.
///
/// The retry goes to another worker. With no other worker, it goes to the same one only if
/// the failure was on a reused keep-alive connection (the worker closing an idle connection
/// as the request went out), which says nothing about the worker's health.
async fn forward(
    conn: &ConnCtx,
    req: Request<Incoming>,
    worker: &mut Option<u64>,
    affinity: Option<u64>,
) -> Result<(Arc<Backend>, InFlight, Sent), ProxyError> {
    let max_idle = conn.shared.cfg.upstream_idle_timeout;
    let ctx = RequestCtx { client: Some(conn.client.ip), avoid: None, affinity };
    let backend = conn.shared.router.pick(&ctx).ok_or(ProxyError::NoBackend)?;
    *worker = Some(backend.id());
    let replay = Replay::capture(&req);

    let guard = backend.load().start();
    let sent = pool::send(&backend, req.map(|b| ReqBody::stream(b, &backend)), max_idle).await;
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
    let ctx = RequestCtx { avoid: Some(backend.id()), ..ctx };
    let next = conn.shared.router.pick(&ctx).or_else(|| reused.then_some(backend));
    let Some(next) = next else { return Err(error) };
    tracing::debug!(target: "cluster::proxy", %error, retry_on = next.id(), "retrying");
    *worker = Some(next.id());
    let guard = next.load().start();
    match pool::send(&next, retry.map(|b| b.retarget(&next)), max_idle).await {
        Ok(sent) => Ok((next, guard, sent)),
        Err(e) => Err(e.error),
    }
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
    fn capture(req: &Request<Incoming>) -> Option<Self> {
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

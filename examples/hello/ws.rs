//! `GET /ws`: a WebSocket echo (RFC 6455).
//!
//! The handshake is answered here (§4.2.2: 101 with `Sec-WebSocket-Accept`); the echo runs on
//! the upgraded connection with tokio-tungstenite in a tracked task, so shutdown waits for it
//! after sending a close frame.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;

use crate::routes::{Body, full, text};
use crate::server::Shared;

/// Checks the opening handshake (RFC 6455 §4.2.1) and answers it: 400 when this is not a
/// WebSocket request, 426 with the supported version when the version is not 13, otherwise
/// 101 and an echo task on the upgraded connection.
pub(crate) fn upgrade(mut req: Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let headers = req.headers();
    let key = headers.get(SEC_WEBSOCKET_KEY);
    if !has_token(headers, &UPGRADE, "websocket") || !has_token(headers, &CONNECTION, "upgrade") {
        return text(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n");
    }
    let Some(key) = key else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        let mut response =
            text(StatusCode::UPGRADE_REQUIRED, "unsupported Sec-WebSocket-Version\n");
        response.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let stop = shared.stop.clone();
    shared.tasks.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => echo(upgraded, stop).await,
            Err(e) => eprintln!("hello: websocket upgrade failed: {e}"),
        }
    });

    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    response
}

/// Echoes text and binary messages until the peer closes or the connection fails. tungstenite
/// answers pings and close frames itself. On shutdown it sends close 1001 (going away) and
/// waits for the peer's close.
async fn echo(upgraded: Upgraded, stop: CancellationToken) {
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    let mut closing = false;
    loop {
        tokio::select! {
            () = stop.cancelled(), if !closing => {
                closing = true;
                let frame = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                if ws.close(Some(frame)).await.is_err() {
                    break;
                }
            }
            message = ws.next() => match message {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
}

/// Whether a comma-separated header (any of its lines) lists `token`, ignoring ASCII case.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        // RFC 6455 §1.3.
        assert_eq!(derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn connection_tokens_are_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, &CONNECTION, "upgrade"));
        assert!(!has_token(&headers, &UPGRADE, "websocket"));
    }
}

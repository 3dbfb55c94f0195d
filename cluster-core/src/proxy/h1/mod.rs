//! The proxy's own HTTP/1.1 client, for the requests most traffic is made of: `GET` and
//! `HEAD` without a body and without an upgrade.
//!
//! hyper's client drives each connection from a task of its own and hands each request
//! to it through a channel; the response comes back through another. Per request that is
//! two task wake-ups, a channel message each way and a second copy of the head's encoding
//! and parsing state (about 12,000 of the 33,000 instructions our proxy spent per request,
//! see docs/benchmarks.md). This client is driven by the request's own task instead: it
//! writes the request head (encoded once, kept as bytes so that a retry resends them),
//! reads the response head with `httparse` and streams the body to the client by reading
//! the socket as the client's connection asks for more, the way nginx's upstream module
//! works. Requests with a body, upgrades and the other methods keep hyper's client, whose
//! body handling (request bodies streamed while the response is read, `Expect`, upgrades)
//! this does not repeat.
//!
//! Files: `conn` (a connection: socket and read buffer), `head` (encoding the request
//! head, parsing the response head and its framing), `body` (the response body:
//! `Content-Length`, chunked, or up to the end of the stream), `error`.

mod body;
mod conn;
mod error;
mod head;

pub(crate) use body::H1Body;
pub(crate) use conn::H1Conn;
pub(crate) use error::H1Error;
pub(crate) use head::{encode_request, wants_h1};

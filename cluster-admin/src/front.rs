//! The admin routes on the front port: [`AdminFrontDoor`] claims the admin paths (and the
//! dashboard's) before the proxy routes a request, so they never reach a worker, and serves
//! them when the request carries the admin token.

use cluster_core::{FrontDoor, FrontFuture, FrontPeer};
use http::Request;
use hyper::body::Incoming;

use crate::access::Entry;
use crate::api::AdminApi;
use crate::routes;

/// The front door of the admin API.
#[derive(Debug)]
pub(crate) struct AdminFrontDoor {
    api: AdminApi,
}

impl AdminFrontDoor {
    pub(crate) fn new(api: AdminApi) -> Self {
        Self { api }
    }
}

impl FrontDoor for AdminFrontDoor {
    fn claims(&self, req: &Request<Incoming>) -> bool {
        routes::claimed_on_front_port(req.uri().path())
    }

    fn may_claim(&self, path: &str) -> bool {
        routes::claimed_on_front_port(path)
    }

    fn call(&self, req: Request<Incoming>, _peer: FrontPeer) -> FrontFuture {
        // The peer's address grants nothing: behind a trusted proxy or not, the token decides.
        let api = self.api.clone();
        Box::pin(async move { api.serve(req, Entry::FrontPort).await })
    }
}

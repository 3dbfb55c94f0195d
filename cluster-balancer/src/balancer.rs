//! The [`Balancer`] trait: the contract every strategy implements.

use std::fmt;
use std::sync::Arc;

use crate::{BackendLoad, RequestCtx};

/// Chooses which ready backend serves a request.
///
/// The caller (the proxy) holds an immutable snapshot of the ready backends and calls
/// [`pick`](Balancer::pick) once per request, from any thread, concurrently. A strategy
/// therefore keeps its own state in atomics and takes no lock: a pick costs tens of
/// nanoseconds.
///
/// # Contract
///
/// - `pick` returns an index into `backends`, or `None` only when `backends` is empty or
///   every backend is excluded by [`RequestCtx::avoid`].
/// - Every backend in the slice is ready; a strategy never needs to check readiness.
/// - A backend whose [`BackendLoad::id`] equals `ctx.avoid` must not be returned when any
///   other backend exists (the proxy uses this to retry a failed request elsewhere).
/// - The slice may change length between calls (workers join and leave); a strategy must
///   not assume indices are stable across calls.
///
/// # Examples
///
/// A strategy of your own: the backend with the fewest requests in flight, skipping the one a
/// retried request just failed on.
///
/// ```
/// use std::sync::Arc;
/// use cluster_balancer::{BackendLoad, Balancer, RequestCtx};
///
/// #[derive(Debug)]
/// struct Fewest;
///
/// impl Balancer for Fewest {
///     fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
///         (0..backends.len())
///             .filter(|&i| Some(backends[i].id()) != ctx.avoid || backends.len() == 1)
///             .min_by_key(|&i| backends[i].in_flight())
///     }
///
///     fn name(&self) -> &'static str {
///         "fewest"
///     }
/// }
///
/// let backends: Vec<_> = (1..=2).map(|id| Arc::new(BackendLoad::new(id))).collect();
/// let _busy = backends[0].start();
/// assert_eq!(Fewest.pick(&backends, &RequestCtx::default()), Some(1));
/// let retry = RequestCtx { avoid: Some(2), ..RequestCtx::default() };
/// assert_eq!(Fewest.pick(&backends, &retry), Some(0));
/// assert_eq!(Fewest.name(), "fewest");
/// ```
pub trait Balancer: Send + Sync + fmt::Debug {
    /// Picks the backend for one request; see the trait documentation for the contract.
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize>;

    /// The strategy's configuration name, for logs and status (`"round-robin"`, ...).
    fn name(&self) -> &'static str;
}

impl<B: Balancer + ?Sized> Balancer for Arc<B> {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        (**self).pick(backends, ctx)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        (**self).pick(backends, ctx)
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }
}

/// Returns the only backend that satisfies `ctx.avoid`, or `None` when a real choice is
/// needed. Shared by strategies for the 0- and 1-backend cases.
pub(crate) fn trivial_pick(
    backends: &[Arc<BackendLoad>],
    ctx: &RequestCtx,
) -> Option<Option<usize>> {
    match backends.len() {
        0 => Some(None),
        1 => Some((ctx.avoid != Some(backends[0].id())).then_some(0)),
        _ => None,
    }
}

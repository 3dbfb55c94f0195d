//! A tiny lock-free, seedable random source for the randomized strategies.

use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64 over an atomic counter (Steele, Lea & Flood, "Fast splittable pseudorandom
/// number generators", OOPSLA 2014): one relaxed `fetch_add` per draw, so concurrent pickers
/// never lock, and a fixed seed gives a reproducible sequence on one thread (the simulation).
#[derive(Debug)]
pub(crate) struct SharedRng {
    state: AtomicU64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl SharedRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: AtomicU64::new(seed) }
    }

    pub(crate) fn next_u64(&self) -> u64 {
        mix64(self.state.fetch_add(GOLDEN, Ordering::Relaxed).wrapping_add(GOLDEN))
    }
}

/// The SplitMix64 finalizer: a bijective, well-avalanching 64-bit mix.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 32 random bits onto `0..n` without a division (Lemire, "Fast random integer
/// generation in an interval", 2019; the bias is below 2^-32 × n, irrelevant here).
pub(crate) fn below(r: u32, n: usize) -> usize {
    ((u64::from(r) * n as u64) >> 32) as usize
}

/// Two distinct indices in `0..n` (`n >= 2`) from one 64-bit draw.
pub(crate) fn two_distinct(r: u64, n: usize) -> (usize, usize) {
    let a = below(r as u32, n);
    let mut b = below((r >> 32) as u32, n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// The two candidates of a power-of-two-choices pick over `backends`: `Ok` with two distinct
/// indices drawn from `rng`, or `Err(pick)` when the pick is already decided: 0 or 1 backend
/// ([`trivial_pick`](crate::balancer::trivial_pick)), or one candidate is `ctx.avoid` and the
/// other is then the pick.
pub(crate) fn two_candidates(
    rng: &SharedRng,
    backends: &[std::sync::Arc<crate::BackendLoad>],
    ctx: &crate::RequestCtx,
) -> Result<(usize, usize), Option<usize>> {
    if let Some(pick) = crate::balancer::trivial_pick(backends, ctx) {
        return Err(pick);
    }
    let (a, b) = two_distinct(rng.next_u64(), backends.len());
    if ctx.avoid == Some(backends[a].id()) {
        return Err(Some(b));
    }
    if ctx.avoid == Some(backends[b].id()) {
        return Err(Some(a));
    }
    Ok((a, b))
}

/// A uniform `f64` in `[0, 1)` from 53 random bits.
pub(crate) fn unit(r: u64) -> f64 {
    (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_distinct_is_distinct_and_in_range() {
        let rng = SharedRng::new(7);
        for n in 2..20 {
            for _ in 0..1000 {
                let (a, b) = two_distinct(rng.next_u64(), n);
                assert!(a < n && b < n && a != b);
            }
        }
    }

    #[test]
    fn below_covers_the_range_evenly() {
        let rng = SharedRng::new(1);
        let mut seen = [0u32; 5];
        for _ in 0..50_000 {
            seen[below(rng.next_u64() as u32, 5)] += 1;
        }
        assert!(seen.iter().all(|&c| (9_000..11_000).contains(&c)), "{seen:?}");
    }
}

//! The full scan behind the scanning strategies: the least-cost backend, ties to the first
//! one after a rotating offset.

use std::ops::Range;
use std::sync::Arc;

use crate::BackendLoad;

/// Independent running minimums within a block: a superscalar core updates them side by
/// side, where one running minimum is a chain of dependent compare-and-selects (two cycles
/// per backend).
const LANES: usize = 4;

/// Backends per block: the unit the first pass ranks and the second pass searches again.
const BLOCK: usize = 2 * LANES;

/// Pools smaller than this take one plain scan: two passes do not pay off.
const SMALL: usize = 16;

/// The index of the backend with the lowest `cost`, skipping the one whose id is `avoid`;
/// among equal costs, the first one at or after `start` in the order `start, start + 1, …,
/// len - 1, 0, …, start - 1`, so that ties rotate with the offset instead of piling onto
/// index 0. `None` when `backends` is empty or holds only the avoided backend.
///
/// `start` must be in range when `backends` is not empty, and `cost` below `u64::MAX`
/// (the scan's mark for "skip"; in-flight counts and the CPU cost never reach it).
///
/// Below [`SMALL`] backends, one compare-and-select loop from `start` that stops at a zero.
/// From [`SMALL`] backends on, two passes, each a plain loop (at 64 backends 0.63 of the one
/// loop's time for least-connections and 0.71 for cpu-based; `docs/balancing.md`):
///
/// 1. Blocks of [`BLOCK`] consecutive backends, in the scan order (the two slices `start..`
///    and `..start`, so no modulo per backend): the least cost of each block, folded into
///    [`LANES`] independent minimums with no index to carry; the first block (in scan
///    order) with the lowest least is kept. A zero ends the pass: nothing can beat it.
/// 2. In that block, the first backend whose cost is at most that least, found as a bit
///    mask (no branch per backend).
///
/// The avoided backend costs `u64::MAX`, in a second copy of the loops: the common case (no
/// retry) carries no id comparison.
///
/// # Caveats
///
/// The kept block's costs are read twice. When they change in between (other threads start
/// or end requests), the second pass still returns a backend whose cost, as it read it, is
/// at most the least of the first pass, as a single scan reading each counter once at a
/// different moment would; if every such backend got busier in between, a cold third pass
/// does the single scan.
pub(crate) fn least_cost(
    backends: &[Arc<BackendLoad>],
    avoid: Option<u64>,
    start: usize,
    cost: impl Fn(&BackendLoad) -> u64,
) -> Option<usize> {
    match avoid {
        None => least_from(backends, start, cost),
        Some(id) => least_from(backends, start, |b| if b.id() == id { u64::MAX } else { cost(b) }),
    }
}

/// [`least_cost`] with the skipped backend costing `u64::MAX`.
#[inline(always)]
fn least_from(
    backends: &[Arc<BackendLoad>],
    start: usize,
    cost: impl Fn(&BackendLoad) -> u64,
) -> Option<usize> {
    match backends.len() {
        0..SMALL => one_pass(backends, start, &cost),
        _ => two_passes(backends, start, &cost),
    }
}

/// [`least_from`] from [`SMALL`] backends on: out of line, so that the small pools' scan
/// keeps a lean frame.
#[inline(never)]
fn two_passes(
    backends: &[Arc<BackendLoad>],
    start: usize,
    cost: &impl Fn(&BackendLoad) -> u64,
) -> Option<usize> {
    let n = backends.len();
    // (least cost, index of the first block that has it)
    let mut best = (u64::MAX, start);
    if !least_block(backends, start..n, &mut best, cost) {
        least_block(backends, 0..start, &mut best, cost);
    }
    let (least, at) = best;
    if least == u64::MAX {
        return None; // only the avoided backend
    }
    let end = if at >= start { n } else { start };
    let block = &backends[at..end.min(at + BLOCK)];
    let hits = block
        .iter()
        .enumerate()
        .fold(0u32, |hits, (i, b)| hits | (u32::from(cost(b) <= least) << i));
    match hits {
        0 => rescan(backends, start, cost),
        _ => Some(at + hits.trailing_zeros() as usize),
    }
}

/// Folds the blocks of `backends[range]` into `best` (a block replaces it only with a lower
/// least, so ties stay with the earlier block); `true` once `best` holds a zero cost.
#[inline(always)]
fn least_block(
    backends: &[Arc<BackendLoad>],
    range: Range<usize>,
    best: &mut (u64, usize),
    cost: &impl Fn(&BackendLoad) -> u64,
) -> bool {
    let mut at = range.start;
    let mut blocks = backends[range].chunks_exact(BLOCK);
    for block in &mut blocks {
        let least = least_of(block, cost);
        if least < best.0 {
            *best = (least, at);
            if least == 0 {
                return true;
            }
        }
        at += BLOCK;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let least = least_of(rest, cost);
        if least < best.0 {
            *best = (least, at);
        }
    }
    best.0 == 0
}

/// The least cost of `backends` (`u64::MAX` when empty), in [`LANES`] running minimums.
#[inline(always)]
fn least_of(backends: &[Arc<BackendLoad>], cost: &impl Fn(&BackendLoad) -> u64) -> u64 {
    let mut least = [u64::MAX; LANES];
    let mut fours = backends.chunks_exact(LANES);
    for four in &mut fours {
        for (m, b) in least.iter_mut().zip(four) {
            *m = (*m).min(cost(b));
        }
    }
    for (m, b) in least.iter_mut().zip(fours.remainder()) {
        *m = (*m).min(cost(b));
    }
    least[0].min(least[1]).min(least[2].min(least[3]))
}

/// One scan from `start` with wrap-around, keeping the first least cost; stops at a zero.
#[inline(always)]
fn one_pass(
    backends: &[Arc<BackendLoad>],
    start: usize,
    cost: &impl Fn(&BackendLoad) -> u64,
) -> Option<usize> {
    let (head, tail) = backends.split_at(start);
    let (mut least, mut best) = (u64::MAX, usize::MAX);
    for (offset, part) in [(start, tail), (0, head)] {
        for (j, b) in part.iter().enumerate() {
            let c = cost(b);
            let better = c < least;
            least = if better { c } else { least };
            best = if better { offset + j } else { best };
            if least == 0 {
                return Some(best);
            }
        }
    }
    (best != usize::MAX).then_some(best)
}

/// [`one_pass`], out of line: only for costs that rose between the two passes.
#[cold]
#[inline(never)]
fn rescan(
    backends: &[Arc<BackendLoad>],
    start: usize,
    cost: &impl Fn(&BackendLoad) -> u64,
) -> Option<usize> {
    one_pass(backends, start, cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(loads: &[usize]) -> (Vec<Arc<BackendLoad>>, Vec<crate::InFlight>) {
        let b: Vec<_> = (0..loads.len() as u64).map(|id| Arc::new(BackendLoad::new(id))).collect();
        let held = loads.iter().zip(&b).flat_map(|(&l, x)| (0..l).map(|_| x.start())).collect();
        (b, held)
    }

    /// The definition: least cost, ties to the first at or after `start`, wrapping.
    fn reference(b: &[Arc<BackendLoad>], avoid: Option<u64>, start: usize) -> Option<usize> {
        (0..b.len())
            .map(|k| (start + k) % b.len())
            .filter(|&i| avoid != Some(b[i].id()))
            .min_by_key(|&i| b[i].in_flight())
    }

    #[test]
    fn matches_the_definition_for_every_start_and_avoid() {
        for n in [1usize, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 47, 64, 65, 100] {
            for pattern in 0..6usize {
                let loads: Vec<_> = match pattern {
                    4 => (0..n).map(|i| if i == n / 3 { 1 } else { 2 + i % 3 }).collect(),
                    5 => (0..n).map(|i| 1 + ((i * 0x9E37_79B9) >> 7) % 5).collect(),
                    _ => (0..n).map(|i| (i * 7 + pattern * 3) % (2 + pattern)).collect(),
                };
                let (b, _held) = backends(&loads);
                for start in 0..n {
                    for avoid in [None, Some(0), Some(start as u64), Some(n as u64 - 1)] {
                        let got = least_cost(&b, avoid, start, |x| x.in_flight() as u64);
                        assert_eq!(got, reference(&b, avoid, start), "{loads:?} {start} {avoid:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_to_pick() {
        let cost = |x: &BackendLoad| x.in_flight() as u64;
        assert_eq!(least_cost(&[], None, 0, cost), None);
        let (b, _held) = backends(&[2]);
        assert_eq!(least_cost(&b, Some(0), 0, cost), None);
    }

    #[test]
    fn costs_that_rise_between_the_passes_fall_back_to_one_scan() {
        let (b, _held) = backends(&[3; 20]);
        // Every read of a backend finds it 10 requests busier than the one before, except
        // for backend 19's first read, which finds it at 1.
        let reads = std::cell::RefCell::new([0u64; 20]);
        let cost = |x: &BackendLoad| {
            let r = &mut reads.borrow_mut()[x.id() as usize];
            *r += 1;
            if x.id() == 19 && *r == 1 { 1 } else { x.in_flight() as u64 + 10 * (*r - 1) }
        };
        // The first pass finds 1 in the block 18..20 (the blocks from 2 end at 20, then 0..2
        // follows); the second pass reads 13 and 13 there; the single scan from 2 sees 13 on
        // backend 2 (its second read) and picks it.
        assert_eq!(least_cost(&b, None, 2, cost), Some(2));
    }
}

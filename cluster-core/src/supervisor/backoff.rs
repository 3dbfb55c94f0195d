//! Restart back-off for workers that keep exiting soon after they start.

use std::time::Duration;

/// A worker that exits within this long of starting counts as a quick exit.
pub(crate) const QUICK_EXIT: Duration = Duration::from_secs(10);

/// From this many quick exits in a row, a slot is shown as crash-looping.
pub(crate) const CRASH_LOOP_AFTER: u32 = 3;

/// Longest delay between two starts of a crash-looping slot.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(30);

/// The delay before the next start of a slot after `quick_exits` quick exits in a row.
///
/// The first replacement starts at once (a single crash should cost no capacity); from the
/// second quick exit on, the delay doubles from 250 ms up to [`MAX_DELAY`], so a command that
/// exits immediately costs a few starts a minute, not a busy loop.
pub(crate) fn restart_delay(quick_exits: u32) -> Duration {
    match quick_exits {
        0 | 1 => Duration::ZERO,
        n => {
            let exp = (n - 2).min(16);
            (Duration::from_millis(250) * 2u32.pow(exp)).min(MAX_DELAY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        assert_eq!(restart_delay(0), Duration::ZERO);
        assert_eq!(restart_delay(1), Duration::ZERO);
        assert_eq!(restart_delay(2), Duration::from_millis(250));
        assert_eq!(restart_delay(3), Duration::from_millis(500));
        assert_eq!(restart_delay(6), Duration::from_secs(4));
        assert_eq!(restart_delay(10), MAX_DELAY);
        assert_eq!(restart_delay(u32::MAX), MAX_DELAY);
    }
}

//! Faults a test can inject into one worker: a memory leak, a run of 500s, a busy CPU.
//!
//! Each is off unless its variable is set, and applies only in the worker whose
//! `CLUSTER_WORKER_ID` equals `HELLO_FAULT_SLOT` when that is set (in every worker otherwise).

use std::time::{Duration, Instant};

use crate::{number, var};

/// Largest total leak, whatever the rate: the leak is a test tool, not a machine killer.
const MAX_LEAK_MB: u64 = 2048;

/// The faults read from the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// `HELLO_LEAK_MB_PER_SEC`: resident memory grows by this much every second.
    leak_mb_per_sec: u64,
    /// `HELLO_FAIL_FOR_MS`: every request is answered 500 for this long after binding.
    fail_for: Option<Duration>,
    /// `HELLO_BURN_PERCENT`: a thread keeps this percentage of one core busy.
    burn_percent: u64,
}

impl Faults {
    /// Reads the fault variables.
    ///
    /// # Errors
    ///
    /// A message naming the variable when a number does not parse.
    pub(crate) fn from_env() -> Result<Self, String> {
        let here = match var("HELLO_FAULT_SLOT") {
            Some(slot) => var("CLUSTER_WORKER_ID").as_deref() == Some(slot.as_str()),
            None => true,
        };
        let faults = Faults {
            leak_mb_per_sec: number("HELLO_LEAK_MB_PER_SEC")?.unwrap_or(0),
            fail_for: number::<u64>("HELLO_FAIL_FOR_MS")?.map(Duration::from_millis),
            burn_percent: number::<u64>("HELLO_BURN_PERCENT")?.unwrap_or(0).min(100),
        };
        Ok(if here { faults } else { Faults::default() })
    }

    /// Starts the background faults (leak, burn); call once the port is bound. Returns what
    /// the request path needs.
    pub(crate) fn start(&self) -> Failing {
        if self.leak_mb_per_sec > 0 {
            let rate = self.leak_mb_per_sec;
            tokio::spawn(leak(rate));
        }
        if self.burn_percent > 0 {
            let percent = self.burn_percent;
            std::thread::spawn(move || burn(percent));
        }
        Failing { until: self.fail_for.map(|d| Instant::now() + d) }
    }
}

/// Whether requests are answered 500 right now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Failing {
    until: Option<Instant>,
}

impl Failing {
    /// Whether this request gets a 500.
    pub(crate) fn now(&self) -> bool {
        self.until.is_some_and(|t| Instant::now() < t)
    }
}

/// Allocates and touches `mb_per_sec` MiB every second, keeping all of it, up to
/// [`MAX_LEAK_MB`].
async fn leak(mb_per_sec: u64) {
    const MIB: usize = 1024 * 1024;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut leaked_kib: u64 = 0;
    loop {
        tick.tick().await;
        if leaked_kib / 1024 >= MAX_LEAK_MB {
            continue;
        }
        // A tenth of the per-second amount, written so the pages are resident.
        let kib = (mb_per_sec * 1024 / 10).max(1);
        kept.push(vec![0x5a; kib as usize * MIB / 1024]);
        leaked_kib += kib;
    }
}

/// Spins `percent` of every 20 ms slice and sleeps the rest, forever.
fn burn(percent: u64) {
    let slice = Duration::from_millis(20);
    let busy = slice * percent as u32 / 100;
    loop {
        let start = Instant::now();
        while start.elapsed() < busy {
            std::hint::spin_loop();
        }
        if let Some(rest) = slice.checked_sub(start.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

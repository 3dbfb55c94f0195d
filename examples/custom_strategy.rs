//! A custom balancing strategy plugged into a cluster: "idle first, else least loaded".
//!
//! Implementing [`Balancer`] is all it takes: `pick` gets the ready backends' load records
//! and returns an index. This one sends a request to an idle worker when there is one (the
//! Join-Idle-Queue idea of Lu et al., Performance Evaluation 68(11), 2011, and what
//! prefork servers get from a shared accept queue), scanning from a rotating offset so that
//! idle workers share the work, and otherwise to the worker with the fewest requests in
//! flight.
//!
//! ```text
//! cargo run -p examples --example custom_strategy -- node build
//! ```
//!
//! runs `node build` twice behind port 3000 (or `PORT`) with this strategy. Without a command it only
//! shows the strategy at work on three simulated backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cluster_balancer::{BackendLoad, Balancer, RequestCtx};
use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{Cluster, forward_signals};

/// Idle first, else least loaded.
#[derive(Debug, Default)]
struct IdleFirst {
    start: AtomicUsize,
}

impl Balancer for IdleFirst {
    fn pick(&self, backends: &[Arc<BackendLoad>], ctx: &RequestCtx) -> Option<usize> {
        let n = backends.len();
        let start = self.start.fetch_add(1, Ordering::Relaxed) % n.max(1);
        // The contract: an index into `backends`, never the `avoid`ed one (a retry).
        (0..n)
            .map(|step| (start + step) % n)
            .filter(|&i| ctx.avoid != Some(backends[i].id()))
            .min_by_key(|&i| backends[i].in_flight())
    }

    fn name(&self) -> &'static str {
        "idle-first"
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let command: Vec<String> = std::env::args().skip(1).collect();
    if command.is_empty() {
        return demo();
    }
    let mut overrides = Overrides::default();
    overrides.workers = Some("2".into());
    // The port is 3000 unless `PORT` (or the configuration file) says otherwise.
    overrides.command = command;
    let loaded = config::load(&overrides, &Environment::capture())?;
    // The one line that matters: our strategy instead of the configured one.
    let cluster =
        Cluster::builder(loaded.spec).balancer(Arc::new(IdleFirst::default())).build().await?;
    println!("listening on {} with the idle-first strategy", cluster.local_addr());
    tokio::spawn(forward_signals(cluster.handle()));
    cluster.run().await?;
    Ok(())
}

/// Three backends, one busy: the strategy passes it over.
fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let backends: Vec<_> = (0..3).map(|id| Arc::new(BackendLoad::new(id))).collect();
    let _busy = backends[1].start();
    let lb = IdleFirst::default();
    let picks: Vec<_> = (0..6).filter_map(|_| lb.pick(&backends, &RequestCtx::default())).collect();
    println!("{} picked {picks:?} (backend 1 is busy)", lb.name());
    assert!(!picks.contains(&1));
    println!("give a worker command to run it in a cluster, e.g. `-- node build`");
    Ok(())
}

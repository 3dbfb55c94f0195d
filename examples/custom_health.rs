//! A custom [`HealthPolicy`]: recycle every worker once it is older than a maximum age, the
//! way some servers bound the effect of slow leaks or pick up rotated credentials.
//!
//! A policy is one pure function from a worker's [`WorkerSnapshot`] (its age, memory, CPU,
//! request and error counts, probe and heartbeat times) to a [`Verdict`]; the cluster calls it
//! on every health tick (`healthCheckInterval`) after the built-in policies. A recycle is
//! graceful: the replacement starts and is ready before the old worker drains and stops, one
//! worker at a time (`health.maxConcurrentRecycles`). A small per-worker jitter keeps workers
//! started together from all reaching the age on the same tick.
//!
//! ```text
//! HEALTH_CHECK_INTERVAL=1000 cargo run -p examples --example custom_health -- 30
//! ```
//!
//! recycles each worker after about 30 seconds (the argument; default 3600) and prints every
//! recycle.

use std::time::Duration;

use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{Cluster, ClusterEvent, SelfExecSpawner, forward_signals};
use cluster_health::{HealthPolicy, RecycleReason, Verdict, WorkerSnapshot};
use tokio::sync::broadcast::error::RecvError;

/// Recycles a worker once it has been ready for longer than the limit (plus up to 10 %,
/// different for each worker).
#[derive(Debug)]
struct MaxAge(Duration);

impl HealthPolicy for MaxAge {
    fn evaluate(&self, worker: &WorkerSnapshot) -> Verdict {
        let jitter = self.0 / 10 * (worker.worker_id % 8) as u32 / 8;
        if worker.age < self.0 + jitter {
            return Verdict::Healthy;
        }
        let age = worker.age.as_secs();
        Verdict::Recycle(RecycleReason::Other(format!("max age: up for {age} s")))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), examples::Error> {
    if cluster_core::is_worker() {
        return examples::worker::serve().await;
    }
    let secs: u64 = std::env::args().nth(1).map_or(Ok(3600), |s| s.parse())?;
    let loaded = config::load(&Overrides::default(), &Environment::capture())?;
    let cluster = Cluster::builder(loaded.spec)
        .spawner(SelfExecSpawner::new(Vec::<String>::new())?)
        .health_policy(MaxAge(Duration::from_secs(secs)))
        .build()
        .await?;
    println!("listening on {}; workers recycled after {secs} s", cluster.local_addr());
    let mut events = cluster.handle().subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ClusterEvent::Recycling { worker_id, reason, .. }) => {
                    println!("recycling worker {worker_id}: {reason}");
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });
    tokio::spawn(forward_signals(cluster.handle()));
    Ok(cluster.run().await?)
}

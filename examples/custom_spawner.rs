//! A custom [`Spawner`]: each worker runs under a launcher command, here `taskset`, which pins
//! worker slot *i* to the (*i* mod *N*)th of the *N* CPUs the primary may use before it runs
//! the server.
//!
//! Implementing [`Spawner`] is one method: start a process for a [`WorkerSpec`] and return it.
//! This one builds the command `taskset -c <cpu> <this binary>` and hands it to the built-in
//! [`ProcessSpawner`], which does the rest (the worker's environment and process group, the
//! shared socket, the parent-death signal). `taskset` sets the affinity and then `exec`s the
//! server, so the worker's pid, and every thread it starts, keep the pinning. The same shape
//! runs workers under `systemd-run --scope`, `nice`, `chrt` or a container runtime's `exec`.
//! (For pinning alone, the `cpuAffinity` setting does it without a launcher.)
//!
//! ```text
//! PORT=3000 CLUSTER_WORKERS=2 cargo run -p examples --example custom_spawner
//! grep Cpus_allowed_list /proc/$(curl -s localhost:3000 | cut -d' ' -f4)/status
//! ```

use std::path::PathBuf;

use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{
    Cluster, ProcessSpawner, SpawnError, Spawner, WorkerProcess, WorkerSpec, forward_signals,
};

/// Runs `program` under `taskset -c <cpus[slot mod cpus.len()]>`.
#[derive(Debug)]
struct Pinned {
    program: PathBuf,
    cpus: Vec<usize>,
}

impl Spawner for Pinned {
    fn spawn(&self, spec: &WorkerSpec) -> Result<Box<dyn WorkerProcess>, SpawnError> {
        let cpu = self.cpus[spec.slot % self.cpus.len()].to_string();
        let program = self.program.display().to_string();
        ProcessSpawner::new("taskset", ["-c", &cpu, &program]).spawn(spec)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), examples::Error> {
    if cluster_core::is_worker() {
        return examples::worker::serve().await;
    }
    let loaded = config::load(&Overrides::default(), &Environment::capture())?;
    let cpus = examples::allowed_cpus()?;
    let pinned = format!("workers pinned to CPUs {cpus:?}");
    let spawner = Pinned { program: std::env::current_exe()?, cpus };
    let cluster = Cluster::builder(loaded.spec).spawner(spawner).build().await?;
    println!("listening on {}; {pinned}", cluster.local_addr());
    tokio::spawn(forward_signals(cluster.handle()));
    Ok(cluster.run().await?)
}

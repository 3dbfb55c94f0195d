//! Deploy generations: which spawner starts the workers of each generation.
//!
//! Every worker records the generation that started it. A rolling restart starts a new
//! generation and replaces every worker of an older one; a crash restart uses the current
//! generation. A configuration reload that changes the worker command prepares the spawner of
//! the *next* generation, so the change reaches workers through a rolling restart (which can
//! roll back) and never through a crash restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::spawn::Spawner;

/// The spawners of the generations still in use.
#[derive(Debug)]
pub(super) struct Generations {
    current: u64,
    /// The highest generation number given out (numbers are never reused, even after a
    /// rollback made an older generation current again).
    latest: u64,
    spawners: BTreeMap<u64, Arc<dyn Spawner>>,
    /// The spawner the next generation will use, when a reload changed the command.
    next: Option<Arc<dyn Spawner>>,
    /// The prepared spawner the current generation took, given back by a rollback so that the
    /// next rolling restart tries the new command again.
    taken: Option<Arc<dyn Spawner>>,
}

impl Generations {
    /// Generation 1, started by `spawner`.
    pub(super) fn new(spawner: Arc<dyn Spawner>) -> Self {
        Self {
            current: 1,
            latest: 1,
            spawners: BTreeMap::from([(1, spawner)]),
            next: None,
            taken: None,
        }
    }

    /// The generation new workers belong to.
    pub(super) fn current(&self) -> u64 {
        self.current
    }

    /// The spawner of `generation` (the current one's if it is gone).
    pub(super) fn spawner(&self, generation: u64) -> Arc<dyn Spawner> {
        let spawner = self.spawners.get(&generation).or_else(|| self.spawners.get(&self.current));
        Arc::clone(spawner.expect("the current generation always has a spawner"))
    }

    /// Starts a new generation, with the prepared spawner if a reload left one, else the
    /// current one's (which re-runs the command, so a new build on disk is picked up).
    /// Returns its number.
    pub(super) fn advance(&mut self) -> u64 {
        self.taken = self.next.take();
        let spawner = self.taken.clone().unwrap_or_else(|| self.spawner(self.current));
        self.latest += 1;
        self.current = self.latest;
        self.spawners.insert(self.current, spawner);
        self.current
    }

    /// Makes `generation` (an older one, still known) current again: a rollback. A command
    /// prepared by a reload that the failed generation took is prepared again. Returns whether
    /// `generation` was known.
    pub(super) fn revert_to(&mut self, generation: u64) -> bool {
        if !self.spawners.contains_key(&generation) {
            return false;
        }
        self.current = generation;
        if self.next.is_none() {
            self.next = self.taken.take();
        }
        true
    }

    /// Prepares the spawner of the next generation.
    pub(super) fn prepare_next(&mut self, spawner: Arc<dyn Spawner>) {
        self.next = Some(spawner);
    }

    /// The spawner the next generation would use.
    pub(super) fn upcoming(&self) -> Arc<dyn Spawner> {
        self.next.clone().unwrap_or_else(|| self.spawner(self.current))
    }

    /// Forgets the spawners of generations no live worker belongs to, except the current one
    /// and those in `keep`.
    pub(super) fn prune(&mut self, live: impl IntoIterator<Item = u64>, keep: &[u64]) {
        let live: Vec<u64> = live.into_iter().collect();
        let current = self.current;
        self.spawners.retain(|g, _| *g == current || keep.contains(g) || live.contains(g));
    }
}

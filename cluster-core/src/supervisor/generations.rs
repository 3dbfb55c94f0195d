//! Deploy generations: how the workers of each generation are started.
//!
//! Every worker records the generation that started it. A rolling restart starts a new
//! generation and replaces every worker of an older one; a crash restart uses the current
//! generation. A configuration reload that changes how workers start (the command, its
//! arguments, directory and environment, `health.nodeIpc`, the hardening keys, `upstream`) prepares the
//! *next* generation, so the change reaches workers through a rolling restart (which can roll
//! back) and never through a crash restart or a scale-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::spawn::Spawner;

/// How the workers of one generation start.
#[derive(Debug, Clone)]
pub(super) struct Recipe {
    /// What starts them.
    pub(super) spawner: Arc<dyn Spawner>,
    /// `health.nodeIpc` for them.
    pub(super) node_ipc: Option<bool>,
    /// `upstream` for them: the kind of endpoint they listen on.
    pub(super) upstream: crate::config::Upstream,
}

/// The recipes of the generations still in use.
#[derive(Debug)]
pub(super) struct Generations {
    current: u64,
    /// The highest generation number given out (numbers are never reused, even after a
    /// rollback made an older generation current again).
    latest: u64,
    recipes: BTreeMap<u64, Recipe>,
    /// The recipe of the next generation, when a reload changed it.
    next: Option<Recipe>,
    /// The prepared recipe the current generation took, given back by a rollback so that the
    /// next rolling restart tries the new configuration again.
    taken: Option<Recipe>,
}

impl Generations {
    /// Generation 1, started as `recipe` says.
    pub(super) fn new(recipe: Recipe) -> Self {
        Self {
            current: 1,
            latest: 1,
            recipes: BTreeMap::from([(1, recipe)]),
            next: None,
            taken: None,
        }
    }

    /// The generation new workers belong to.
    pub(super) fn current(&self) -> u64 {
        self.current
    }

    /// The recipe of `generation` (the current one's if it is gone).
    pub(super) fn recipe(&self, generation: u64) -> Recipe {
        let recipe = self.recipes.get(&generation).or_else(|| self.recipes.get(&self.current));
        recipe.expect("the current generation always has a recipe").clone()
    }

    /// Starts a new generation, with the prepared recipe if a reload left one, else the
    /// current one's (which runs the command again, so a new build on disk is picked up).
    /// Returns its number.
    pub(super) fn advance(&mut self) -> u64 {
        self.taken = self.next.take();
        let recipe = self.taken.clone().unwrap_or_else(|| self.recipe(self.current));
        self.latest += 1;
        self.current = self.latest;
        self.recipes.insert(self.current, recipe);
        self.current
    }

    /// Makes `generation` (an older one, still known) current again: a rollback. A recipe
    /// prepared by a reload that the failed generation took is prepared again. Returns whether
    /// `generation` was known.
    pub(super) fn revert_to(&mut self, generation: u64) -> bool {
        if !self.recipes.contains_key(&generation) {
            return false;
        }
        self.current = generation;
        if self.next.is_none() {
            self.next = self.taken.take();
        }
        true
    }

    /// Prepares the recipe of the next generation.
    pub(super) fn prepare_next(&mut self, recipe: Recipe) {
        self.next = Some(recipe);
    }

    /// The recipe the next generation would use.
    pub(super) fn upcoming(&self) -> Recipe {
        self.next.clone().unwrap_or_else(|| self.recipe(self.current))
    }

    /// Forgets the recipes of generations no live worker belongs to, except the current one
    /// and those in `keep`.
    pub(super) fn prune(&mut self, live: impl IntoIterator<Item = u64>, keep: &[u64]) {
        let live: Vec<u64> = live.into_iter().collect();
        let current = self.current;
        self.recipes.retain(|g, _| *g == current || keep.contains(g) || live.contains(g));
    }
}

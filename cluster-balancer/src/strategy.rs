//! Choosing a built-in strategy by its configuration name.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{Balancer, LeastConnections, RoundRobin};

/// A built-in strategy, named as in the `loadBalancingStrategy` configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// [`RoundRobin`]: `"round-robin"`.
    RoundRobin,
    /// [`LeastConnections`]: `"least-connections"`.
    LeastConnections,
}

impl Strategy {
    /// Every built-in strategy, in documentation order.
    pub const ALL: &'static [Strategy] = &[Strategy::RoundRobin, Strategy::LeastConnections];

    /// The configuration name of this strategy.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastConnections => "least-connections",
        }
    }

    /// Builds a fresh balancer of this strategy.
    pub fn build(self) -> Arc<dyn Balancer> {
        match self {
            Strategy::RoundRobin => Arc::new(RoundRobin::new()),
            Strategy::LeastConnections => Arc::new(LeastConnections::new()),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is not a built-in strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStrategy(pub String);

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        write!(f, "unknown strategy {:?}; expected one of: {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownStrategy {}

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .iter()
            .copied()
            .find(|st| st.name() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(s.name().parse::<Strategy>().unwrap(), *s);
            assert_eq!(s.build().name(), s.name());
        }
        assert!("fastest".parse::<Strategy>().is_err());
    }
}

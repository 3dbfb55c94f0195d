//! Choosing a built-in strategy by its configuration name.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{Balancer, CpuBased, LeastConnections, P2c, PeakEwma, RoundRobin};

/// A built-in strategy, named as in the `loadBalancingStrategy` configuration key.
///
/// Sticky sessions ([`Sticky`](crate::Sticky)) and slow start
/// ([`SlowStart`](crate::SlowStart)) are separate switches that wrap any of these.
///
/// # Examples
///
/// ```
/// use cluster_balancer::Strategy;
///
/// let strategy: Strategy = "p2c".parse().unwrap();
/// assert_eq!(strategy.name(), "p2c");
/// assert_eq!(strategy.build().name(), "p2c");
/// assert!(Strategy::ALL.contains(&Strategy::PeakEwma));
/// assert!("fastest".parse::<Strategy>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// [`RoundRobin`]: `"round-robin"`.
    RoundRobin,
    /// [`LeastConnections`]: `"least-connections"`.
    LeastConnections,
    /// [`CpuBased`]: `"cpu-based"`.
    CpuBased,
    /// [`P2c`]: `"p2c"`.
    P2c,
    /// [`PeakEwma`]: `"peak-ewma"`.
    PeakEwma,
}

impl Strategy {
    /// Every built-in strategy, in documentation order.
    pub const ALL: &'static [Strategy] = &[
        Strategy::RoundRobin,
        Strategy::LeastConnections,
        Strategy::CpuBased,
        Strategy::P2c,
        Strategy::PeakEwma,
    ];

    /// The configuration name of this strategy.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastConnections => "least-connections",
            Strategy::CpuBased => "cpu-based",
            Strategy::P2c => "p2c",
            Strategy::PeakEwma => "peak-ewma",
        }
    }

    /// Builds a fresh balancer of this strategy with its defaults (system clock).
    pub fn build(self) -> Arc<dyn Balancer> {
        match self {
            Strategy::RoundRobin => Arc::new(RoundRobin::new()),
            Strategy::LeastConnections => Arc::new(LeastConnections::new()),
            Strategy::CpuBased => Arc::new(CpuBased::new()),
            Strategy::P2c => Arc::new(P2c::new()),
            Strategy::PeakEwma => Arc::new(PeakEwma::new()),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is not a built-in strategy.
///
/// # Examples
///
/// ```
/// use cluster_balancer::{Strategy, UnknownStrategy};
///
/// let err = "fastest".parse::<Strategy>().unwrap_err();
/// assert_eq!(err, UnknownStrategy("fastest".into()));
/// assert!(err.to_string().starts_with("unknown strategy \"fastest\"; expected one of: round-robin"));
/// ```
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
        let err = "fastest".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("peak-ewma") && err.contains("p2c"), "{err}");
    }
}

//! `cluster import pm2`: reading a PM2 ecosystem file (work in progress).
//!
//! Done so far: `evaluate.js`, the Node snippet that evaluates an ecosystem file as PM2 does
//! and reports the values JSON cannot hold and the environment variables it read;
//! [`pm2_keys`], PM2 7's options and aliases; [`pm2_values`], PM2's value forms (argument
//! strings, memory sizes, instance counts). The mapping to `cluster.config.json` and the
//! command itself are not written yet, so these parts are only used by their tests.
#![allow(dead_code)]

pub(crate) mod pm2_keys;
pub(crate) mod pm2_values;

/// The Node snippet run with `node -e` to evaluate an ecosystem file (see its header).
pub(crate) const EVALUATE_JS: &str = include_str!("evaluate.js");

//! Merged figment tree -> [`RawConfig`], reporting every structural problem.
//!
//! Serde stops at the first error, so one pass finds one unknown key or one wrong type. To
//! report them all, each problem is recorded and its value removed from the tree (the
//! field then takes its default), and deserialization runs again, until it succeeds. Each
//! pass removes one node, so this ends. figment's errors are translated into our wording;
//! its own text is never shown.

use figment::error::Kind;
use figment::value::Value;
use serde::Deserialize;

use super::raw::{MASK, RawConfig, SECRET_KEYS};
use super::suggest::nearest;
use super::{ConfigError, Provenance};

/// Deserializes the merged tree of `prov`, returning the raw configuration (with every
/// problem's value replaced by its default) and the problems found.
pub(crate) fn extract(prov: &Provenance) -> (RawConfig, Vec<ConfigError>) {
    let mut tree = prov.tree().clone();
    let mut problems = Vec::new();
    loop {
        match RawConfig::deserialize(&tree) {
            Ok(raw) => return (raw, problems),
            Err(error) => {
                problems.push(translate(&error, &tree, prov));
                if !remove(&mut tree, &error.path) {
                    // Cannot happen with a dictionary at the root; give up on the rest.
                    return (RawConfig::default(), problems);
                }
            }
        }
    }
}

/// Our message for one figment deserialization error.
fn translate(error: &figment::Error, tree: &Value, prov: &Provenance) -> ConfigError {
    let (key, mut value) = locate(tree, &error.path);
    if SECRET_KEYS.contains(&key.as_str()) {
        value = MASK.into();
    }
    let origin = prov.source_of(&key);
    let reason = match &error.kind {
        Kind::UnknownField(name, known) => {
            let parent = key.rsplit_once('.').map(|(parent, _)| parent);
            let suggestion = nearest(name, known.iter().copied()).map(|near| match parent {
                Some(parent) => format!("{parent}.{near}"),
                None => near.to_owned(),
            });
            return ConfigError::UnknownKey { key, origin, suggestion };
        }
        Kind::InvalidType(_, expected)
        | Kind::InvalidValue(_, expected)
        | Kind::InvalidLength(_, expected) => format!("expected {}", describe(expected)),
        other => other.to_string(),
    };
    ConfigError::InvalidValue { key, value, origin, reason }
}

/// Serde's names for what a derived type expects, in the file's (JSON) terms.
fn describe(expected: &str) -> &str {
    match expected {
        "a sequence" => "an array",
        "a map" => "an object",
        "f64" | "f32" => "a number",
        _ if expected.starts_with("struct ") => "an object",
        _ => expected,
    }
}

/// The dotted key and the value at `path`. Inside an array, the key stays the array's and
/// the value is the element's.
fn locate(tree: &Value, path: &[String]) -> (String, serde_json::Value) {
    let mut keys: Vec<&str> = Vec::new();
    let mut node = Some(tree);
    let mut in_array = false;
    for segment in path {
        node = match node {
            Some(Value::Dict(_, dict)) => {
                if !in_array {
                    keys.push(segment);
                }
                dict.get(segment)
            }
            Some(Value::Array(_, items)) => {
                in_array = true;
                segment.parse::<usize>().ok().and_then(|i| items.get(i))
            }
            _ => None,
        };
    }
    let value = node.and_then(|v| serde_json::to_value(v).ok()).unwrap_or(serde_json::Value::Null);
    (keys.join("."), value)
}

/// Removes the node at `path` from `tree`; false if there is none.
fn remove(tree: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut node = tree;
    for segment in parents {
        node = match node {
            Value::Dict(_, dict) => match dict.get_mut(segment) {
                Some(child) => child,
                None => return false,
            },
            Value::Array(_, items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(child) => child,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match node {
        Value::Dict(_, dict) => dict.remove(last).is_some(),
        Value::Array(_, items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

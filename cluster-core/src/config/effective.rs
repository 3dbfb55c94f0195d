//! The effective configuration report behind `cluster config`: every key, its value and
//! where the value came from.

use std::fmt;

use serde_json::{Map, Value};

use super::raw::{MASK, RawConfig, SECRET_KEYS, SECTIONS};
use super::{ClusterSpec, Provenance, Source};

/// Every leaf key of the loaded configuration with its value and [`Source`].
///
/// Keys are the file's camelCase names, dotted inside sections (`scaling.minWorkers`), in
/// alphabetical order. Arrays and the `env` object are single entries. Values are shown as
/// configured, in the file's units (`"max"`, `"1G"`, milliseconds); a default that is
/// computed is shown resolved: `scaling.maxWorkers`, the largest of the CPU count, the
/// resolved `workers` and `scaling.minWorkers`. A secret (`admin.token`) is shown as `"***"`
/// when set, with its source.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Environment, Overrides, Source};
///
/// let env = Environment::from_vars([("CLUSTER_WORKERS", "3")]);
/// let effective = config::load(&Overrides::default(), &env)?.effective;
/// let workers = effective.get("workers").unwrap();
/// assert_eq!((workers.value.as_u64(), &workers.source), (Some(3), &Source::Env("CLUSTER_WORKERS".into())));
/// assert!(effective.entries().iter().any(|e| e.key == "scaling.minWorkers"));
/// println!("{}", effective.render()); // what `cluster config` prints
/// assert_eq!(effective.to_json()["workers"]["value"], 3); // and `cluster config --json`
/// # Ok::<(), config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfig {
    entries: Vec<EffectiveEntry>,
}

/// One key of an [`EffectiveConfig`].
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Environment, Overrides, Source};
///
/// let loaded = config::load(&Overrides::default(), &Environment::default())?;
/// for entry in loaded.effective.entries().iter().filter(|e| e.source != Source::Default) {
///     println!("{} = {} (from {})", entry.key, entry.value, entry.source);
/// }
/// # Ok::<(), config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EffectiveEntry {
    /// The dotted key, e.g. `port` or `performance.requestTimeout`.
    pub key: String,
    /// The value, as JSON.
    pub value: Value,
    /// Where the value came from.
    pub source: Source,
}

impl EffectiveConfig {
    /// The report for `raw`, which validated into `spec`.
    pub(crate) fn new(raw: &RawConfig, spec: &ClusterSpec, prov: &Provenance) -> Self {
        let mut tree = match serde_json::to_value(raw) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if raw.scaling.max_workers.is_none() {
            // Resolved by validation from the CPU count, `workers` and `minWorkers`.
            if let Some(Value::Object(scaling)) = tree.get_mut("scaling") {
                scaling.insert("maxWorkers".into(), spec.scaling.max_workers.into());
            }
        }
        let mut entries = Vec::new();
        for (key, value) in tree {
            let value = mask(&key, value);
            match value {
                Value::Object(section) if SECTIONS.contains(&key.as_str()) => {
                    entries.extend(section.into_iter().map(|(name, value)| {
                        let key = format!("{key}.{name}");
                        let value = mask(&key, value);
                        EffectiveEntry { source: prov.source_of(&key), key, value }
                    }));
                }
                value => entries.push(EffectiveEntry { source: prov.source_of(&key), key, value }),
            }
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Self { entries }
    }

    /// The entries, sorted by key.
    pub fn entries(&self) -> &[EffectiveEntry] {
        &self.entries
    }

    /// The entry of the dotted `key`, if it is a leaf key of the configuration.
    pub fn get(&self, key: &str) -> Option<&EffectiveEntry> {
        self.entries.binary_search_by(|e| e.key.as_str().cmp(key)).ok().map(|i| &self.entries[i])
    }

    /// A table for people: one key per line, with its value as JSON and its source, in
    /// aligned columns.
    pub fn render(&self) -> String {
        self.to_string()
    }

    /// The report for scripts: `{"port": {"value": 3000, "source": "default"}, ...}`.
    pub fn to_json(&self) -> Value {
        let map = self.entries.iter().map(|e| {
            let entry = serde_json::json!({ "value": e.value, "source": e.source.to_string() });
            (e.key.clone(), entry)
        });
        Value::Object(map.collect())
    }
}

/// `value`, or `"***"` when `key` holds a secret that is set.
fn mask(key: &str, value: Value) -> Value {
    if SECRET_KEYS.contains(&key) && !value.is_null() { Value::from(MASK) } else { value }
}

impl fmt::Display for EffectiveConfig {
    /// Formats as [`render`](EffectiveConfig::render) does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self.entries.iter().map(|e| e.value.to_string()).collect();
        let key_width = self.entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
        let value_width = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
        for (entry, value) in self.entries.iter().zip(&values) {
            writeln!(f, "{:key_width$}  {value:value_width$}  {}", entry.key, entry.source)?;
        }
        Ok(())
    }
}

//! A strict parser of the OpenMetrics text format, and promtool when it is installed: shared
//! by the unit tests of `src/metrics.rs` (through `#[path]`) and `tests/metrics_exposition.rs`.
//!
//! Stricter than the specification where our exposition is: every family has `# HELP`,
//! `# TYPE` and at least one sample; samples carry no timestamp and no exemplar; no other
//! comment than the descriptors and the final `# EOF`.
// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

/// A parsed exposition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exposition {
    pub(crate) families: Vec<Family>,
}

/// One metric family: its descriptors and samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Family {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) help: String,
    pub(crate) unit: Option<String>,
    pub(crate) samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

impl Sample {
    /// Whether its labels include each of `labels`.
    pub(crate) fn has(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.labels.get(*k).is_some_and(|x| x == v))
    }
}

impl Exposition {
    /// The family `name` (its name without a sample suffix).
    pub(crate) fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every sample named `name` whose labels include `labels`.
    pub(crate) fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(move |s| s.name == name && s.has(labels))
    }

    /// The value of the one sample named `name` whose labels include `labels`.
    ///
    /// # Panics
    ///
    /// Unless exactly one sample matches.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.samples(name, labels).collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0].value
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels).map(|s| s.value).sum()
    }
}

/// Parses `text`, checking it as it goes.
///
/// # Errors
///
/// The first violation found, with its line number.
pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
    let body = text.strip_suffix("# EOF\n").ok_or("the exposition does not end with `# EOF\\n`")?;
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("the line before `# EOF` has no newline".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in body.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", i + 1);
        if line.contains('\r') {
            return Err(at("carriage return".into()));
        }
        if let Some(rest) = line.strip_prefix('#') {
            let (keyword, name, value) = descriptor(rest).map_err(at)?;
            let starts = families.last().is_none_or(|f| f.name != name);
            if starts {
                if !seen.insert(name.to_owned()) {
                    return Err(at(format!("family {name} appears twice")));
                }
                families.push(Family {
                    name: name.to_owned(),
                    kind: String::new(),
                    help: String::new(),
                    unit: None,
                    samples: Vec::new(),
                });
            }
            let family = families.last_mut().expect("pushed above");
            if !family.samples.is_empty() {
                return Err(at(format!("a descriptor of {name} after its samples")));
            }
            describe(family, keyword, value).map_err(at)?;
        } else {
            let sample = sample(line).map_err(at)?;
            let family = families
                .last_mut()
                .filter(|f| belongs(&sample.name, f))
                .ok_or_else(|| at(format!("sample {} outside its family", sample.name)))?;
            family.samples.push(sample);
        }
    }
    for family in &families {
        check_family(family).map_err(|e| format!("family {}: {e}", family.name))?;
    }
    Ok(Exposition { families })
}

/// `rest` of a `#` line: `(keyword, metric name, text)`.
fn descriptor(rest: &str) -> Result<(&str, &str, &str), String> {
    let rest = rest.strip_prefix(' ').ok_or("no space after #")?;
    let (keyword, rest) = rest.split_once(' ').ok_or("a comment that is no descriptor")?;
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Err(format!("unknown comment {keyword}"));
    }
    let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    Ok((keyword, name, value))
}

/// Applies one descriptor to `family`.
fn describe(family: &mut Family, keyword: &str, value: &str) -> Result<(), String> {
    match keyword {
        "HELP" => {
            if !family.help.is_empty() {
                return Err("a second HELP".into());
            }
            family.help = unescape(value, false)?;
            if family.help.is_empty() {
                return Err("an empty HELP".into());
            }
        }
        "TYPE" => {
            if !family.kind.is_empty() {
                return Err("a second TYPE".into());
            }
            let known = [
                "counter",
                "gauge",
                "histogram",
                "gaugehistogram",
                "stateset",
                "info",
                "summary",
                "unknown",
            ];
            if !known.contains(&value) {
                return Err(format!("unknown type {value:?}"));
            }
            family.kind = value.to_owned();
        }
        _ => {
            if family.unit.is_some() {
                return Err("a second UNIT".into());
            }
            if value.is_empty() || !family.name.ends_with(&format!("_{value}")) {
                return Err(format!("the name does not end with its unit {value:?}"));
            }
            family.unit = Some(value.to_owned());
        }
    }
    Ok(())
}

/// Whether a sample named `name` belongs to `family`, by the suffixes its type allows.
fn belongs(name: &str, family: &Family) -> bool {
    let suffixes: &[&str] = match family.kind.as_str() {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_count", "_sum", "_created"],
        "gaugehistogram" => &["_bucket", "_gcount", "_gsum"],
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    };
    name.strip_prefix(family.name.as_str()).is_some_and(|suffix| suffixes.contains(&suffix))
}

/// One sample line: `name{labels} value`.
fn sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            let (key, after) = rest.split_once("=\"").ok_or("a label without =\"")?;
            if !is_label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            let (value, after) = label_value(after)?;
            if labels.insert(key.to_owned(), value).is_some() {
                return Err(format!("label {key} twice"));
            }
            if let Some(next) = after.strip_prefix(',') {
                rest = next;
                continue;
            }
            rest = after.strip_prefix('}').ok_or("labels not closed")?;
            break;
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    if value.contains(' ') {
        return Err("something after the value (timestamp or exemplar)".into());
    }
    Ok(Sample { name: name.to_owned(), labels, value: number(value)? })
}

/// A quoted label value after its opening quote: the value and what follows the closing one.
fn label_value(s: &str) -> Result<(String, &str), String> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '"') => return Ok((unescape(&s[..i], true)?, &s[i + 1..])),
            _ => escaped = false,
        }
    }
    Err("an unterminated label value".into())
}

/// Undoes the escapes `\\`, `\n` and (in label values) `\"`.
fn unescape(s: &str, quote: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            other => return Err(format!("a bad escape \\{other:?}")),
        }
    }
    Ok(out)
}

/// A sample value: a decimal number, `+Inf`, `-Inf` or `NaN`.
fn number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            s.parse().map_err(|e| format!("bad number {s:?}: {e}"))
        }
        _ => Err(format!("bad number {s:?}")),
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    !s.starts_with("__")
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The checks that need the whole family: descriptors, distinct series, counter values,
/// histogram buckets.
fn check_family(family: &Family) -> Result<(), String> {
    if family.kind.is_empty() {
        return Err("no TYPE".into());
    }
    if family.help.is_empty() {
        return Err("no HELP".into());
    }
    if family.samples.is_empty() {
        return Err("no samples".into());
    }
    let mut series = BTreeSet::new();
    for s in &family.samples {
        if !series.insert((s.name.clone(), s.labels.clone())) {
            return Err(format!("series {} {:?} twice", s.name, s.labels));
        }
        if family.kind == "counter" && (s.value.is_nan() || s.value < 0.0) {
            return Err(format!("counter {} {:?} is {}", s.name, s.labels, s.value));
        }
    }
    if family.kind == "histogram" {
        check_histogram(family)?;
    }
    Ok(())
}

/// Each series of a histogram: ascending `le` bounds ending at `+Inf`, cumulative counts,
/// `+Inf` equal to `_count`, a `_sum`.
fn check_histogram(family: &Family) -> Result<(), String> {
    type Series = (Vec<(f64, f64)>, Option<f64>, Option<f64>);
    let mut by_series: BTreeMap<BTreeMap<String, String>, Series> = BTreeMap::new();
    for s in &family.samples {
        let mut key = s.labels.clone();
        let le = key.remove("le");
        let entry = by_series.entry(key).or_default();
        match &s.name[family.name.len()..] {
            "_bucket" => {
                let le = le.ok_or("a bucket without le")?;
                entry.0.push((number(&le)?, s.value));
            }
            "_count" => entry.1 = Some(s.value),
            "_sum" => entry.2 = Some(s.value),
            _ => {}
        }
    }
    for (labels, (buckets, count, sum)) in by_series {
        let count = count.ok_or(format!("{labels:?}: no _count"))?;
        sum.ok_or(format!("{labels:?}: no _sum"))?;
        if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
            return Err(format!("{labels:?}: the last bucket is not +Inf"));
        }
        for pair in buckets.windows(2) {
            if pair[0].0 >= pair[1].0 || pair[0].1 > pair[1].1 {
                return Err(format!(
                    "{labels:?}: buckets not ascending or not cumulative: {pair:?}"
                ));
            }
        }
        if buckets.last().map(|b| b.1) != Some(count) {
            return Err(format!("{labels:?}: +Inf bucket {buckets:?} is not _count {count}"));
        }
    }
    Ok(())
}

/// What `promtool check metrics` says of `text` (given on its standard input): whether it
/// passed, and its output. `None` when promtool is not on the PATH.
pub(crate) fn promtool(text: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("promtool: {e}"),
    };
    let mut stdin = child.stdin.take().expect("piped");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("promtool ran");
    writer.join().expect("writer").expect("promtool read its input");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Some((output.status.success(), said))
}

/// Whether a missing promtool fails the test rather than skipping its check: in CI (the `CI`
/// variable is set), where it must be installed.
pub(crate) fn promtool_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The problems in promtool's `output` about the OpenMetrics `exposition` other than the one
/// it reports by construction: promtool reads the Prometheus 0.0.4 format, where a counter's
/// `# HELP` names the `_total` series, so it finds "no help text" for each OpenMetrics counter.
pub(crate) fn promtool_problems(output: &str, exposition: &Exposition) -> Vec<String> {
    let expected = |line: &str| {
        let counter = line.strip_suffix(" no help text").and_then(|s| s.strip_suffix("_total"));
        counter.and_then(|name| exposition.family(name)).is_some_and(|f| f.kind == "counter")
    };
    output
        .lines()
        .filter(|line| !line.trim().is_empty() && !expected(line))
        .map(str::to_owned)
        .collect()
}

//! PM2's value forms, read as PM2 reads them: argument strings, memory sizes, instance
//! counts, milliseconds and environment values.

use serde_json::Value;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Splits an argument string as PM2 does (`lib/tools/Config.js`): whitespace separates,
/// `"..."` and `'...'` group (the quotes are removed when they wrap the whole argument), and
/// `--key="a b"` stays one argument, quotes included. There are no escapes.
pub(crate) fn split_args(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let end = quoted_assignment(&chars, i).or_else(|| quoted(&chars, i)).unwrap_or_else(|| {
            (i..chars.len()).find(|&j| chars[j].is_whitespace()).unwrap_or(chars.len())
        });
        let token: String = chars[i..end].iter().collect();
        let unquoted = ['"', '\''].iter().find_map(|&q| {
            (token.len() >= 2 && token.starts_with(q) && token.ends_with(q))
                .then(|| token[1..token.len() - 1].to_owned())
        });
        let arg = match unquoted {
            Some(inner) => inner,
            None if token == "\"" || token == "'" => String::new(),
            None => token,
        };
        if !arg.trim().is_empty() {
            args.push(arg);
        }
        i = end;
    }
    args
}

/// The end of `name="..."` or `name='...'` starting at `i` (name: no whitespace, quote or `=`).
fn quoted_assignment(chars: &[char], i: usize) -> Option<usize> {
    let name_end = (i..chars.len())
        .find(|&j| chars[j].is_whitespace() || matches!(chars[j], '"' | '\'' | '='))
        .unwrap_or(chars.len());
    if name_end == i || chars.get(name_end) != Some(&'=') {
        return None;
    }
    let quote = *chars.get(name_end + 1).filter(|c| matches!(c, '"' | '\''))?;
    let close = (name_end + 2..chars.len()).find(|&j| chars[j] == quote)?;
    Some(close + 1)
}

/// The end of `"..."` or `'...'` starting at `i`.
fn quoted(chars: &[char], i: usize) -> Option<usize> {
    let quote = *chars.get(i).filter(|c| matches!(c, '"' | '\''))?;
    let close = (i + 1..chars.len()).find(|&j| chars[j] == quote)?;
    Some(close + 1)
}

/// `args` or `node_args`: an array (each element as a string) or a string split as PM2
/// splits it.
pub(crate) fn arg_list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(text) => Ok(split_args(text)),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Bool(_) => Ok(item.to_string()),
                other => Err(format!("an element is {}, not a string", kind(other))),
            })
            .collect(),
        other => Err(format!("{}, not a string or an array", kind(other))),
    }
}

/// `max_memory_restart` in bytes: a number of bytes, or a string of digits with an optional
/// unit (`K`, `M`, `G`; PM2's own; `KB`, `MB`, `GB` and fractions accepted too); a string
/// without a unit is bytes, as in PM2.
pub(crate) fn memory_bytes(value: &Value) -> Result<u64, String> {
    let bad = || r#"not a size: expected bytes, or a number with K, M or G such as "300M""#;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(v) if v >= 0.0 && v.is_finite() => Ok(v.round() as u64),
            _ => Err(bad().into()),
        },
        Value::String(text) => {
            let text = text.trim().to_ascii_uppercase();
            let split =
                text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let number: f64 = number.parse().map_err(|_| bad())?;
            let unit = match unit.trim() {
                "" | "B" => 1,
                "K" | "KB" => KIB,
                "M" | "MB" => MIB,
                "G" | "GB" => GIB,
                _ => return Err(bad().into()),
            };
            Ok((number * unit as f64).round() as u64)
        }
        _ => Err(bad().into()),
    }
}

/// A size in bytes as `maxMemoryUsage` takes it: `"<n>G"`, `"<n>M"` or `"<n>K"`, exact when
/// the size is a whole number of that unit; a size that is not a whole number of KiB is
/// rounded up to one (the flag says so).
pub(crate) fn memory_setting(bytes: u64) -> (String, bool) {
    if bytes % GIB == 0 {
        (format!("{}G", bytes / GIB), false)
    } else if bytes % MIB == 0 {
        (format!("{}M", bytes / MIB), false)
    } else {
        (format!("{}K", bytes.div_ceil(KIB)), bytes % KIB != 0)
    }
}

/// What PM2's `instances` means for `workers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Instances {
    /// A count.
    Count(i64),
    /// One per CPU (`0`, `"max"`, or a string PM2 cannot read as a number).
    Max,
    /// CPUs minus this many (`-1`: all but one).
    AllBut(i64),
}

/// `instances` as PM2 reads it: `"max"` and `0` are one per CPU; a string is read with
/// `parseInt` (a non-number is 0: one per CPU); a negative count leaves that many CPUs.
pub(crate) fn instances(value: &Value) -> Result<Instances, String> {
    let count = match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()).map(|v| v.trunc() as i64),
        Value::String(text) if text.trim().eq_ignore_ascii_case("max") => Some(0),
        Value::String(text) => Some(parse_int(text).unwrap_or(0)),
        _ => None,
    };
    match count {
        Some(0) => Ok(Instances::Max),
        Some(n) if n < 0 => Ok(Instances::AllBut(-n)),
        Some(n) => Ok(Instances::Count(n)),
        None => Err(format!("{}, not a number or \"max\"", kind(value))),
    }
}

/// JavaScript's `parseInt(text, 10)`: optional sign and leading digits; `None` without any.
fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<i64>().ok().map(|n| sign * n)
}

/// A duration in milliseconds: a non-negative number (or a string of one).
pub(crate) fn millis(value: &Value) -> Result<i64, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(v) if v >= 0.0 && v.is_finite() => Ok(v.round() as i64),
        _ => Err(format!("{}, not a number of milliseconds", kind(value))),
    }
}

/// An environment value as PM2 passes it: strings as they are, numbers and booleans as
/// JavaScript prints them, objects, arrays and `null` as JSON (PM2 stringifies them).
pub(crate) fn env_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What `value` is, for messages: `a string`, `an object`.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn splits_arguments_as_pm2_does() {
        assert_eq!(split_args("--port 80  -v"), ["--port", "80", "-v"]);
        assert_eq!(
            split_args(r#"--name "two words" 'single quoted'"#),
            ["--name", "two words", "single quoted"]
        );
        assert_eq!(split_args(r#"--title="a b" x"#), [r#"--title="a b""#, "x"]);
        assert_eq!(split_args("--title='a b'"), ["--title='a b'"]);
        assert_eq!(split_args("a=b c"), ["a=b", "c"]);
        assert_eq!(split_args(r#""" '' x"#), ["x"]);
        assert_eq!(split_args(r#""unclosed x"#), [r#""unclosed"#, "x"]);
        assert!(split_args("   ").is_empty());
    }

    #[test]
    fn argument_lists() {
        assert_eq!(arg_list(&json!(["a", 1, true])).unwrap(), ["a", "1", "true"]);
        assert_eq!(arg_list(&json!("a b")).unwrap(), ["a", "b"]);
        assert!(arg_list(&json!([{}])).unwrap_err().contains("an object"));
        assert!(arg_list(&json!(3)).is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(memory_bytes(&json!("300M")), Ok(300 * MIB));
        assert_eq!(memory_bytes(&json!("1G")), Ok(GIB));
        assert_eq!(memory_bytes(&json!("150K")), Ok(150 * KIB));
        assert_eq!(memory_bytes(&json!("512mb")), Ok(512 * MIB));
        assert_eq!(memory_bytes(&json!("1.5G")), Ok(1536 * MIB));
        assert_eq!(memory_bytes(&json!("1048576")), Ok(MIB), "no unit: bytes");
        assert_eq!(memory_bytes(&json!(209_715_200)), Ok(200 * MIB));
        assert!(memory_bytes(&json!("300X")).is_err());
        assert!(memory_bytes(&json!("-1M")).is_err());
        assert!(memory_bytes(&json!(true)).is_err());
        assert_eq!(memory_setting(GIB), ("1G".into(), false));
        assert_eq!(memory_setting(1536 * MIB), ("1536M".into(), false));
        assert_eq!(memory_setting(150 * KIB), ("150K".into(), false));
        assert_eq!(memory_setting(1000), ("1K".into(), true));
    }

    #[test]
    fn instance_counts() {
        assert_eq!(instances(&json!(4)), Ok(Instances::Count(4)));
        assert_eq!(instances(&json!("4")), Ok(Instances::Count(4)));
        assert_eq!(instances(&json!(2.7)), Ok(Instances::Count(2)));
        assert_eq!(instances(&json!("max")), Ok(Instances::Max));
        assert_eq!(instances(&json!("MAX")), Ok(Instances::Max));
        assert_eq!(instances(&json!(0)), Ok(Instances::Max));
        assert_eq!(instances(&json!("lots")), Ok(Instances::Max), "parseInt fails: 0");
        assert_eq!(instances(&json!(-1)), Ok(Instances::AllBut(1)));
        assert_eq!(instances(&json!("-2")), Ok(Instances::AllBut(2)));
        assert!(instances(&json!(null)).is_err());
    }

    #[test]
    fn milliseconds_and_env_values() {
        assert_eq!(millis(&json!(5000)), Ok(5000));
        assert_eq!(millis(&json!("3000")), Ok(3000));
        assert!(millis(&json!(-1)).is_err());
        assert!(millis(&json!("3s")).is_err());
        assert_eq!(env_value(&json!("x")), "x");
        assert_eq!(env_value(&json!(3000)), "3000");
        assert_eq!(env_value(&json!(true)), "true");
        assert_eq!(env_value(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(env_value(&json!(null)), "null");
    }
}

//! Lenient scalar types of the raw configuration.
//!
//! They accept any value of the right JSON type and keep it as written; ranges, units and
//! names are checked by validation, which gives better messages ("must be at most 65535")
//! than a serde type error ("expected u16"). Each has an `expecting` text that ends up in
//! the wrong-type message (`expected an integer`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An integer, any size and sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Integer(pub(crate) i128);

/// A number, integer or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Number(pub(crate) f64);

/// An integer or a string, for keys that take both (`workers`: `4` or `"max"`;
/// `maxMemoryUsage`: `512` or `"1G"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IntOrText {
    /// Given as a number.
    Int(i128),
    /// Given as a string (which may still hold a number, e.g. from `--workers 4`).
    Text(String),
}

/// `workers`: a count or `"max"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct Workers(pub(crate) IntOrText);

/// `maxMemoryUsage`: megabytes, or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct MemorySize(pub(crate) IntOrText);

/// A size in bytes: an integer (bytes), or a string with a unit such as `"1KiB"`, `"64KB"`
/// or `"10MB"` (`performance.compressionMinSize`).
///
/// Units are case-insensitive and binary: `K`, `KB` and `KiB` are all 1024 bytes (as in
/// `maxMemoryUsage`), `M`/`MB`/`MiB` 1024², `G`/`GB`/`GiB` 1024³; `B` or no unit is bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct ByteSize(pub(crate) IntOrText);

impl ByteSize {
    /// What a bad value should have been, for error messages.
    pub(crate) const EXPECTING: &'static str =
        r#"a size in bytes, or a string with a unit such as "1KiB", "64KB" or "10MB""#;

    /// A size of `bytes` bytes.
    pub(crate) const fn bytes(bytes: u32) -> Self {
        ByteSize(IntOrText::Int(bytes as i128))
    }

    /// The size in bytes; `None` when it is negative or not a size.
    pub(crate) fn to_bytes(&self) -> Option<u64> {
        match &self.0 {
            IntOrText::Int(n) => u64::try_from(*n).ok(),
            IntOrText::Text(text) => parse_byte_size(text),
        }
    }
}

/// Bytes in `"1024"`, `"1KiB"`, `"64 kb"`, `"1.5MB"` (case-insensitive, binary units).
fn parse_byte_size(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 10] = [
        ("", 1),
        ("B", 1),
        ("K", 1 << 10),
        ("KB", 1 << 10),
        ("KIB", 1 << 10),
        ("M", 1 << 20),
        ("MB", 1 << 20),
        ("MIB", 1 << 20),
        ("G", 1 << 30),
        ("GB", 1 << 30),
    ];
    let text = text.trim().to_ascii_uppercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let scale = match UNITS.iter().find(|(name, _)| *name == unit) {
        Some((_, scale)) => *scale,
        None if unit == "GIB" => 1 << 30,
        None => return None,
    };
    let number: f64 = number.parse().ok()?;
    let bytes = (number * scale as f64).round();
    // Bounded above so the conversion below is exact; a fractional byte count is refused.
    (bytes.is_finite() && bytes <= u64::MAX as f64 / 2.0 && (scale > 1 || number.fract() == 0.0))
        .then_some(bytes as u64)
}

fn serialize_int<S: Serializer>(v: i128, s: S) -> Result<S::Ok, S::Error> {
    match (i64::try_from(v), u64::try_from(v)) {
        (Ok(v), _) => s.serialize_i64(v),
        (_, Ok(v)) => s.serialize_u64(v),
        _ => s.serialize_i128(v),
    }
}

impl Serialize for Integer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_int(self.0, s)
    }
}

impl Serialize for Number {
    /// Whole numbers as integers, so that `80` shows as `80`, not `80.0`.
    #[allow(clippy::cast_possible_truncation)] // checked: whole and within ±2^53
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const EXACT: f64 = (1u64 << 53) as f64;
        if self.0.fract() == 0.0 && self.0.abs() <= EXACT {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl Serialize for IntOrText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrText::Int(v) => serialize_int(*v, s),
            IntOrText::Text(t) => s.serialize_str(t),
        }
    }
}

/// Visits integers into `i128`, and strings too when `expecting` allows them.
#[derive(Clone, Copy)]
struct IntVisitor {
    expecting: &'static str,
    text: bool,
}

impl Visitor<'_> for IntVisitor {
    type Value = IntOrText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(IntOrText::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(IntOrText::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(IntOrText::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(IntOrText::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.text {
            Ok(IntOrText::Text(v.to_owned()))
        } else {
            Err(E::invalid_type(de::Unexpected::Str(v), &self))
        }
    }
}

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let visitor = IntVisitor { expecting: "an integer", text: false };
        match d.deserialize_any(visitor)? {
            IntOrText::Int(v) => Ok(Integer(v)),
            // Not reached: the visitor rejects strings when `text` is false.
            IntOrText::Text(t) => Err(de::Error::invalid_type(de::Unexpected::Str(&t), &visitor)),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor { expecting: r#"an integer or "max""#, text: true })
            .map(Workers)
    }
}

impl<'de> Deserialize<'de> for MemorySize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = r#"a size in MB, or a string such as "512M" or "1G""#;
        d.deserialize_any(IntVisitor { expecting, text: true }).map(MemorySize)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor { expecting: ByteSize::EXPECTING, text: true }).map(ByteSize)
    }
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number(v))
    }

    #[allow(clippy::cast_precision_loss)] // thresholds are small; any big value is out of range
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number(v as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number(v as f64))
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::{ByteSize, IntOrText};

    fn text(s: &str) -> Option<u64> {
        ByteSize(IntOrText::Text(s.into())).to_bytes()
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::bytes(1024).to_bytes(), Some(1024));
        assert_eq!(ByteSize(IntOrText::Int(-1)).to_bytes(), None);
        assert_eq!(text("512"), Some(512));
        assert_eq!(text("512b"), Some(512));
        assert_eq!(text("1KiB"), Some(1024));
        assert_eq!(text("1kib"), Some(1024));
        assert_eq!(text("64KB"), Some(64 * 1024));
        assert_eq!(text(" 64 kb "), Some(64 * 1024));
        assert_eq!(text("10MB"), Some(10 << 20));
        assert_eq!(text("1.5M"), Some(3 << 19));
        assert_eq!(text("2GiB"), Some(2 << 30));
        for bad in ["", "KB", "12X", "-5K", "1e3", "1..2K", "0.5", "1 TB"] {
            assert_eq!(text(bad), None, "{bad}");
        }
    }
}

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

/// `performance.proxyThreads`: a count or `"auto"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct ProxyThreads(pub(crate) IntOrText);

/// `maxMemoryUsage`: megabytes, or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct MemorySize(pub(crate) IntOrText);

/// A size in bytes: an integer (bytes), or a string with an optional unit (`"512"`,
/// `"64KB"`, `"64KiB"`, `"10MB"`, `"1G"`), read by [`ByteSize::bytes`].
///
/// Unlike [`MemorySize`], a bare number means bytes: these keys are protocol limits
/// (`performance.maxBodySize`), where bytes are the natural unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct ByteSize(pub(crate) IntOrText);

impl ByteSize {
    /// What [`ByteSize::bytes`] names in its error, for messages.
    pub(crate) const EXPECTING: &'static str =
        r#"expected a size in bytes, or a number with a unit such as "64KB", "10MB" or "1GiB""#;

    /// A size given in bytes.
    pub(crate) const fn of(bytes: i128) -> Self {
        ByteSize(IntOrText::Int(bytes))
    }

    /// The size in bytes; `None` when it is negative or not a size.
    ///
    /// Units are case-insensitive and binary, as in nginx (`k`, `m`) and the `bytes` package
    /// of Express's body parser (`kb`, `mb`): `K`/`KB`/`KiB` = 1024, `M`/`MB`/`MiB` = 1024²,
    /// `G`/`GB`/`GiB` = 1024³, `T`/`TB`/`TiB` = 1024⁴; `B` or no unit = bytes. A fraction
    /// is allowed with a unit (`"1.5MB"`) and rounded to whole bytes. A size too large for
    /// a `u64` saturates at `u64::MAX`.
    pub(crate) fn bytes(&self) -> Option<u64> {
        match &self.0 {
            IntOrText::Int(n) => u64::try_from(*n).ok(),
            IntOrText::Text(text) => parse_byte_size(text),
        }
    }
}

/// Bytes in a size such as `512`, `64KB`, `64kib`, `10MB`, `1G` or `1.5MiB`; `None` if it is
/// not one. See [`ByteSize::bytes`].
fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    if !number.contains('.') {
        let whole: u64 = number.parse().ok()?;
        return Some(whole.saturating_mul(1 << shift));
    }
    if shift == 0 {
        // A fraction of a byte means nothing.
        return None;
    }
    let number: f64 = number.parse().ok()?;
    // `as` saturates: an absurdly large size becomes u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((number * (1u64 << shift) as f64).round() as u64)
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

impl<'de> Deserialize<'de> for ProxyThreads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor { expecting: r#"an integer or "auto""#, text: true })
            .map(ProxyThreads)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = r#"a size in bytes, or a string such as "64KB" or "10MB""#;
        d.deserialize_any(IntVisitor { expecting, text: true }).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for MemorySize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = r#"a size in MB, or a string such as "512M" or "1G""#;
        d.deserialize_any(IntVisitor { expecting, text: true }).map(MemorySize)
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

/// An integer or a string, for a key whose `expecting` text is given by the caller (`user`:
/// a name or a numeric id; `limits.core`: a size or `"unlimited"`).
pub(crate) fn int_or_text<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
) -> Result<IntOrText, D::Error> {
    d.deserialize_any(IntVisitor { expecting, text: true })
}

#[cfg(test)]
mod tests {
    use super::{ByteSize, IntOrText, parse_byte_size};

    #[test]
    fn byte_sizes() {
        const K: u64 = 1024;
        for (text, bytes) in [
            ("512", 512),
            ("0", 0),
            ("512b", 512),
            ("64KB", 64 * K),
            ("64kib", 64 * K),
            ("64K", 64 * K),
            ("10MB", 10 * K * K),
            ("1MiB", K * K),
            ("1G", K * K * K),
            (" 2 gb ", 2 * K * K * K),
            ("1.5MB", 3 * K * K / 2),
            ("99999999999T", u64::MAX),
        ] {
            assert_eq!(parse_byte_size(text), Some(bytes), "{text}");
        }
        for bad in ["", "ten megs", "MB", "12X", "-5", "1.5", "1..2G", "1e3"] {
            assert_eq!(parse_byte_size(bad), None, "{bad}");
        }
        assert_eq!(ByteSize::of(4096).bytes(), Some(4096));
        assert_eq!(ByteSize::of(-1).bytes(), None);
        assert_eq!(ByteSize(IntOrText::Text("1k".into())).bytes(), Some(1024));
    }
}

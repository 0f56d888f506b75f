//! Integer literals as catalogue authors write them.
//!
//! JSON has no hexadecimal numbers, yet protocol constants are read in hex
//! (`IPC_MAGIC = 0x56455849`) and ioctl magics as characters (`'V'`). An [`IntLit`] is a
//! JSON integer or a string holding `0x…`, `0o…`, `0b…`, a decimal, or one ASCII
//! character standing for its code; `_` may separate digits. It remembers how it was
//! written so documentation can show it the same way.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An integer written as a JSON number or as a string literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntLit {
    /// The value.
    pub value: i128,
    /// The string it was written as, when it was a string.
    pub text: Option<String>,
}

impl IntLit {
    /// A literal written as a plain number.
    pub fn new(value: i128) -> Self {
        IntLit { value, text: None }
    }

    /// The value as written: the original string, or the decimal number.
    pub fn display(&self) -> Cow<'_, str> {
        match &self.text {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(self.value.to_string()),
        }
    }

    /// Parses the string form. The error says what was expected.
    pub fn parse(text: &str) -> Result<IntLit, String> {
        let value = parse_int_text(text)?;
        Ok(IntLit {
            value,
            text: Some(text.to_owned()),
        })
    }
}

fn parse_int_text(text: &str) -> Result<i128, String> {
    let mut chars = text.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_graphic() && !c.is_ascii_digit() {
            return Ok(c as i128);
        }
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b") {
        (2, d)
    } else {
        (10, body)
    };
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not an integer: write a number, \"0x…\", \"0o…\", \"0b…\" or one character"
        ));
    }
    let magnitude = i128::from_str_radix(&digits, radix).map_err(|_| {
        format!(
            "`{text}` is not an integer: write a number, \"0x…\", \"0o…\", \"0b…\" or one character"
        )
    })?;
    Ok(if negative { -magnitude } else { magnitude })
}

impl Serialize for IntLit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.text {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_i128(self.value),
        }
    }
}

impl<'de> Deserialize<'de> for IntLit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntLitVisitor;

        impl Visitor<'_> for IntLitVisitor {
            type Value = IntLit;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an integer, or a string holding 0x…, 0o…, 0b…, a decimal or one character",
                )
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntLit, E> {
                Ok(IntLit::new(v.into()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntLit, E> {
                Ok(IntLit::new(v.into()))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<IntLit, E> {
                Ok(IntLit::new(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IntLit, E> {
                Err(E::custom(format!(
                    "expected an integer, found the number {v}"
                )))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntLit, E> {
                IntLit::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(IntLitVisitor)
    }
}

impl JsonSchema for IntLit {
    fn schema_name() -> Cow<'static, str> {
        "IntLit".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An integer: a JSON integer, or a string holding 0x…, 0o…, 0b…, a decimal, or one ASCII character standing for its code ('V').",
            "anyOf": [
                { "type": "integer" },
                { "type": "string", "pattern": "^(-?(0[xX][0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9_]+)|[!-/:-~])$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        let table = [
            ("0x56455849", 0x5645_5849),
            ("0X20", 0x20),
            ("0b101", 5),
            ("0o17", 15),
            ("1_048_576", 1_048_576),
            ("-12", -12),
            ("V", 86),
            ("7", 7),
        ];
        for (text, want) in table {
            assert_eq!(IntLit::parse(text).map(|l| l.value), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_non_integers() {
        for text in ["", "0x", "1.5", "0xZZ", "VV", "--"] {
            assert!(IntLit::parse(text).is_err(), "{text} should be rejected");
        }
    }

    #[test]
    fn deserializes_numbers_and_strings() {
        let lits: Vec<IntLit> =
            serde_json::from_str(r#"[32, "0x20", 18446744073709551615]"#).expect("valid literals");
        assert_eq!(lits[0].value, 32);
        assert_eq!(lits[1].value, 32);
        assert_eq!(lits[1].display(), "0x20");
        assert_eq!(lits[2].value, u64::MAX as i128);
        assert!(serde_json::from_str::<IntLit>("1.5").is_err());
    }
}

//! `int64Encoding: string`: 64-bit integers as decimal strings, so JavaScript peers keep
//! every digit. The grammar is the JSON Schema's `^-?(0|[1-9][0-9]*)$` (no `-` for
//! `u64`): no sign `+`, no leading zeros, no spaces — stricter than `str::parse`.

use serde::{Deserializer, Serializer};

use super::{DeserializeAs, SerializeAs, deserialize_str_with};

/// `i64`/`u64` as a decimal string: `"-12"`, `"18446744073709551615"`.
#[derive(Debug)]
pub struct I64String;

macro_rules! int64_string {
    ($ty:ty, $signed:expr, $expecting:expr) => {
        impl SerializeAs<$ty> for I64String {
            fn serialize_as<S: Serializer>(value: &$ty, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(value)
            }
        }

        impl<'de> DeserializeAs<'de, $ty> for I64String {
            fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                deserialize_str_with(deserializer, $expecting, |text| {
                    if is_canonical_decimal(text, $signed) {
                        text.parse().ok()
                    } else {
                        None
                    }
                })
            }
        }
    };
}

int64_string!(
    i64,
    true,
    "a decimal string of a 64-bit signed integer, like \"-12\""
);
int64_string!(
    u64,
    false,
    "a decimal string of a 64-bit unsigned integer, like \"12\""
);

/// True when `text` matches `-?(0|[1-9][0-9]*)` (the `-` only when `signed`).
fn is_canonical_decimal(text: &str, signed: bool) -> bool {
    let digits = match text.strip_prefix('-') {
        Some(rest) if signed => rest,
        Some(_) => return false,
        None => text,
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::is_canonical_decimal;

    #[test]
    fn grammar() {
        for ok in ["0", "-0", "7", "-12", "9223372036854775807"] {
            assert!(is_canonical_decimal(ok, true), "{ok}");
        }
        for bad in ["", "-", "+1", "01", "-01", " 1", "1 ", "1e3", "0x10"] {
            assert!(!is_canonical_decimal(bad, true), "{bad}");
        }
        assert!(!is_canonical_decimal("-1", false));
    }
}

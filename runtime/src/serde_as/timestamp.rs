//! `timestamp`: RFC 3339 with `Z` or an offset and 0 to 9 fractional digits.

use serde::{Deserializer, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339 as Rfc3339Format;

use super::{DeserializeAs, SerializeAs, deserialize_str_with};

/// [`OffsetDateTime`] as RFC 3339 text: `"2024-05-01T12:00:00.5Z"`. Written with `Z` for
/// UTC and only the fractional digits needed.
#[derive(Debug)]
pub struct Rfc3339;

impl SerializeAs<OffsetDateTime> for Rfc3339 {
    fn serialize_as<S: Serializer>(
        value: &OffsetDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = value
            .format(&Rfc3339Format)
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> DeserializeAs<'de, OffsetDateTime> for Rfc3339 {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
        deserialize_str_with(
            deserializer,
            "an RFC 3339 timestamp with at most 9 fractional digits",
            |text| {
                // `time` takes any character between date and time; RFC 3339 (and the
                // JSON Schema pattern) only `T` or `t`.
                if fraction_digits(text) > 9
                    || !matches!(text.as_bytes().get(10), Some(b'T' | b't'))
                {
                    return None;
                }
                OffsetDateTime::parse(text, &Rfc3339Format).ok()
            },
        )
    }
}

/// Digits after the seconds' decimal point (`time` accepts and truncates any number; the
/// wire allows nine).
fn fraction_digits(text: &str) -> usize {
    text.split_once('.').map_or(0, |(_, rest)| {
        rest.bytes().take_while(u8::is_ascii_digit).count()
    })
}

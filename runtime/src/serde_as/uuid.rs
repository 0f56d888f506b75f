//! `uuid`: the hyphenated form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, written in lower
//! case and read in either case. `Uuid::parse_str` alone also takes the simple, braced and
//! URN forms, which the wire does not.

use ::uuid::Uuid;
use serde::{Deserializer, Serializer};

use super::{DeserializeAs, SerializeAs, deserialize_str_with};

/// [`Uuid`] as hyphenated hex text.
#[derive(Debug)]
pub struct Hyphenated;

impl SerializeAs<Uuid> for Hyphenated {
    fn serialize_as<S: Serializer>(value: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&value.hyphenated())
    }
}

impl<'de> DeserializeAs<'de, Uuid> for Hyphenated {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
        deserialize_str_with(deserializer, "a hyphenated UUID", |text| {
            let hyphens_in_place = text.len() == 36
                && text
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| (b == b'-') == matches!(i, 8 | 13 | 18 | 23));
            if hyphens_in_place {
                Uuid::try_parse(text).ok()
            } else {
                None
            }
        })
    }
}

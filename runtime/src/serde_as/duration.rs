//! `duration`: a non-negative integer number of milliseconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

use super::{DeserializeAs, SerializeAs};

/// [`Duration`] as whole milliseconds: `1500`. Sub-millisecond parts are truncated when
/// writing, since the wire cannot carry them.
#[derive(Debug)]
pub struct Millis;

impl SerializeAs<Duration> for Millis {
    fn serialize_as<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let millis = u64::try_from(value.as_millis())
            .map_err(|_| serde::ser::Error::custom("duration does not fit in u64 milliseconds"))?;
        serializer.serialize_u64(millis)
    }
}

impl<'de> DeserializeAs<'de, Duration> for Millis {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

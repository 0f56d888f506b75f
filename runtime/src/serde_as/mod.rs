//! Composable serde adapters: how a field's Rust type maps to its JSON form.
//!
//! Most catalogue types serialize with their derived serde impls, but a few primitives
//! have a wire form that differs from serde's default (`i64` as a decimal string under
//! `int64Encoding: string`, `bytes` as base64, `duration` as milliseconds, `timestamp`
//! as RFC 3339, `uuid` strictly hyphenated), and those can sit at any depth inside lists,
//! maps, arrays and options. A plain `#[serde(with = "module")]` only handles one fixed
//! shape, so adapters here are *types* that compose, in the style of `serde_with`:
//!
//! ```
//! use ipcspec_runtime::serde_as::{As, I64String, ListOf, MapOf};
//! use std::collections::BTreeMap;
//!
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Counters {
//!     #[serde(with = "As::<ListOf<MapOf<ListOf<I64String>>>>")]
//!     nested: Vec<BTreeMap<String, Vec<i64>>>,
//! }
//!
//! let json = r#"{"nested":[{"a":["-1","2"]}]}"#;
//! let value: Counters = serde_json::from_str(json).unwrap();
//! assert_eq!(value.nested[0]["a"], [-1, 2]);
//! assert_eq!(serde_json::to_string(&value).unwrap(), json);
//! ```
//!
//! An adapter `A` for a type `T` implements [`SerializeAs<T>`] and [`DeserializeAs<T>`];
//! [`As<A>`] turns it into the `serialize`/`deserialize` pair `#[serde(with)]` expects.

mod bytes;
mod containers;
mod duration;
mod int64;
mod timestamp;
mod uuid;

use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use bytes::Base64;
pub use containers::{ArrayOf, ListOf, MapOf};
pub use duration::Millis;
pub use int64::I64String;
pub use timestamp::Rfc3339;
pub use uuid::Hyphenated;

/// Serializes a `T` in the adapter's wire form.
pub trait SerializeAs<T: ?Sized> {
    /// Serializes `value`.
    fn serialize_as<S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error>;
}

/// Deserializes a `T` from the adapter's wire form.
pub trait DeserializeAs<'de, T> {
    /// Deserializes a value.
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error>;
}

/// The bridge to `#[serde(with = "As::<Adapter>")]`.
#[derive(Debug)]
pub struct As<A: ?Sized>(PhantomData<A>);

impl<A: ?Sized> As<A> {
    /// Serializes `value` through `A`.
    pub fn serialize<T: ?Sized, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
    where
        A: SerializeAs<T>,
    {
        A::serialize_as(value, serializer)
    }

    /// Deserializes a value through `A`.
    pub fn deserialize<'de, T, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error>
    where
        A: DeserializeAs<'de, T>,
    {
        A::deserialize_as(deserializer)
    }
}

/// A `T` seen through the adapter `A`, as a plain [`Serialize`] value; containers use it
/// to serialize their elements.
#[derive(Debug)]
pub struct SerializeAsWrap<'a, T: ?Sized, A: ?Sized> {
    value: &'a T,
    adapter: PhantomData<A>,
}

impl<'a, T: ?Sized, A: ?Sized> SerializeAsWrap<'a, T, A> {
    /// Wraps `value`.
    pub fn new(value: &'a T) -> Self {
        SerializeAsWrap {
            value,
            adapter: PhantomData,
        }
    }
}

impl<T: ?Sized, A: SerializeAs<T> + ?Sized> Serialize for SerializeAsWrap<'_, T, A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        A::serialize_as(self.value, serializer)
    }
}

/// A `T` deserialized through the adapter `A`, as a plain [`Deserialize`] value;
/// containers use it to deserialize their elements.
#[derive(Debug)]
pub struct DeserializeAsWrap<T, A: ?Sized> {
    value: T,
    adapter: PhantomData<A>,
}

impl<T, A: ?Sized> DeserializeAsWrap<T, A> {
    /// The deserialized value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> Deserialize<'de> for DeserializeAsWrap<T, A> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        A::deserialize_as(deserializer).map(|value| DeserializeAsWrap {
            value,
            adapter: PhantomData,
        })
    }
}

/// The type's own serde impls: the leaf of a composite whose elements need no adapter
/// (`ArrayOf<Same>` for a 64-byte array, which serde's derive does not support).
#[derive(Debug)]
pub struct Same;

impl<T: Serialize + ?Sized> SerializeAs<T> for Same {
    fn serialize_as<S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> DeserializeAs<'de, T> for Same {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }
}

/// An `optional` key: `Option<T>` where `None` is an absent key (the field also carries
/// `default` and `skip_serializing_if = "Option::is_none"`) and a present key must hold a
/// `T` — `null` is rejected unless `A` itself accepts it (see [`Nullable`]).
#[derive(Debug)]
pub struct Optional<A: ?Sized>(PhantomData<A>);

impl<T, A: SerializeAs<T> + ?Sized> SerializeAs<Option<T>> for Optional<A> {
    fn serialize_as<S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => A::serialize_as(value, serializer),
            // Only reached without `skip_serializing_if`; `null` is the closest JSON form.
            None => serializer.serialize_none(),
        }
    }
}

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> DeserializeAs<'de, Option<T>> for Optional<A> {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        A::deserialize_as(deserializer).map(Some)
    }
}

/// A `nullable` value: `Option<T>` where `None` is `null`. As a field adapter it also
/// makes the key required (serde only defaults a missing `Option` field when the field has
/// no adapter). Optional and nullable together are `Optional<Nullable<A>>` on
/// `Option<Option<T>>`: absent, `null`, or a value.
#[derive(Debug)]
pub struct Nullable<A: ?Sized>(PhantomData<A>);

impl<T, A: SerializeAs<T> + ?Sized> SerializeAs<Option<T>> for Nullable<A> {
    fn serialize_as<S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_some(&SerializeAsWrap::<T, A>::new(value)),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> DeserializeAs<'de, Option<T>> for Nullable<A> {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        Option::<DeserializeAsWrap<T, A>>::deserialize(deserializer)
            .map(|value| value.map(DeserializeAsWrap::into_inner))
    }
}

/// Serializes `value` through `A` into a JSON value.
pub fn to_json_value<T: ?Sized, A: SerializeAs<T> + ?Sized>(
    value: &T,
) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(SerializeAsWrap::<T, A>::new(value))
}

/// Deserializes a `T` through `A` from JSON text, rejecting trailing characters; strict
/// (structs only from objects, see [`crate::strict`]).
pub fn from_json_str<'de, T, A: DeserializeAs<'de, T> + ?Sized>(
    json: &'de str,
) -> Result<T, serde_json::Error> {
    crate::strict::from_str_as::<T, A>(json)
}

/// Deserializes a `T` through `A` from `value` and serializes it back: the JSON round trip
/// generated registries offer to tests and conformance checks. Decoding is strict (structs
/// only from objects, see [`crate::strict`]).
pub fn json_roundtrip<T, A>(
    value: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Error>
where
    A: SerializeAs<T> + for<'de> DeserializeAs<'de, T> + ?Sized,
{
    let typed: T = crate::strict::from_value_as::<T, A>(value)?;
    to_json_value::<T, A>(&typed)
}

/// Deserializes a string and converts it with `parse`; `None` is reported as serde's
/// "invalid value: string \"…\", expected {expecting}".
fn deserialize_str_with<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, D::Error> {
    deserializer.deserialize_str(StrVisitor { expecting, parse })
}

struct StrVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Option<T>,
}

impl<T> serde::de::Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        (self.parse)(value)
            .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(value), &self))
    }
}

//! Strict JSON decoding: structs only from JSON objects.
//!
//! serde's derived `Deserialize` for a struct also accepts the positional *array* form
//! (`[]` for a struct whose fields are all optional, `[1, 2]` filling fields in order),
//! which the generated JSON Schemas reject. [`Strict`] wraps any [`Deserializer`] and
//! turns every `deserialize_struct` into a `deserialize_map`, so a struct's visitor never
//! sees a sequence: `[]` fails with "invalid type: sequence, expected struct X". It wraps
//! recursively (every `SeqAccess`, `MapAccess`, `EnumAccess`, `VariantAccess`, seed and
//! nested deserializer it hands out is strict too), so structs at any depth are strict:
//! in lists, maps, options, newtypes and enum variants.
//!
//! Enums serde buffers (internally tagged ones) are read with `deserialize_any`; for
//! those the wrapper rejects a top-level sequence (serde would take the first element as
//! the tag and the rest as the variant's fields, positionally). Struct variants of
//! externally tagged enums reject sequences as well.
//!
//! Known limit: what serde buffers as its private `Content` (the fields of an internally
//! tagged variant, the content of an adjacently tagged enum when it precedes the tag) is
//! decoded by serde's own `ContentDeserializer`, out of the wrapper's reach, so a struct
//! nested *inside* such a buffered value still accepts its array form.
//!
//! Borrowing is unaffected: borrowed strings, bytes and `&RawValue` pass through.
//!
//! ```
//! #[derive(serde::Deserialize, Debug, PartialEq)]
//! struct Point { x: i32, y: i32 }
//!
//! let p: Point = ipcspec_runtime::strict::from_str(r#"{"x": 1, "y": 2}"#).unwrap();
//! assert_eq!(p, Point { x: 1, y: 2 });
//! assert!(serde_json::from_str::<Point>("[1, 2]").is_ok()); // serde's positional form
//! let error = ipcspec_runtime::strict::from_str::<Point>("[1, 2]").unwrap_err();
//! assert!(error.to_string().starts_with("invalid type: sequence, expected struct Point"));
//! ```

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::serde_as::DeserializeAs;

/// Deserializes a `T` from JSON text, structs only from objects; trailing characters
/// are an error. Borrows from `json` where `T` does.
pub fn from_str<'de, T: de::Deserialize<'de>>(json: &'de str) -> Result<T, serde_json::Error> {
    from_str_as::<T, crate::serde_as::Same>(json)
}

/// Deserializes a `T` from JSON bytes, structs only from objects; trailing characters
/// are an error. Borrows from `json` where `T` does.
pub fn from_slice<'de, T: de::Deserialize<'de>>(json: &'de [u8]) -> Result<T, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = T::deserialize(Strict::new(&mut deserializer))?;
    deserializer.end()?;
    Ok(value)
}

/// Deserializes a `T` from a JSON value, structs only from objects.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, serde_json::Error> {
    T::deserialize(Strict::new(value))
}

/// Deserializes a `T` through the adapter `A` from JSON text, structs only from objects;
/// trailing characters are an error.
pub fn from_str_as<'de, T, A>(json: &'de str) -> Result<T, serde_json::Error>
where
    A: DeserializeAs<'de, T> + ?Sized,
{
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value = A::deserialize_as(Strict::new(&mut deserializer))?;
    deserializer.end()?;
    Ok(value)
}

/// Deserializes a `T` through the adapter `A` from a JSON value, structs only from objects.
pub fn from_value_as<T, A>(value: serde_json::Value) -> Result<T, serde_json::Error>
where
    A: for<'de> DeserializeAs<'de, T> + ?Sized,
{
    A::deserialize_as(Strict::new(value))
}

/// A [`Deserializer`] that reads structs only from maps (JSON objects), at every depth.
#[derive(Debug, Clone, Copy)]
pub struct Strict<D>(D);

impl<D> Strict<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Self {
        Strict(inner)
    }

    /// The wrapped deserializer.
    pub fn into_inner(self) -> D {
        self.0
    }
}

/// True when `visitor` expects what `prefix` starts (its `expecting` text), checked
/// without allocating.
fn expects<'de, V: Visitor<'de>>(visitor: &V, prefix: &str) -> bool {
    struct Prefix<'a> {
        rest: &'a str,
        matched: bool,
    }
    impl fmt::Write for Prefix<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if self.rest.is_empty() {
                self.matched = true;
                return Err(fmt::Error); // decided: stop formatting
            }
            let n = s.len().min(self.rest.len());
            if s.as_bytes()[..n] != self.rest.as_bytes()[..n] {
                return Err(fmt::Error);
            }
            self.rest = &self.rest[n..];
            if self.rest.is_empty() {
                self.matched = true;
                return Err(fmt::Error);
            }
            Ok(())
        }
    }
    struct Expecting<'a, V>(&'a V);
    impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }
    }
    let mut out = Prefix {
        rest: prefix,
        matched: false,
    };
    let _ = fmt::write(&mut out, format_args!("{}", Expecting(visitor)));
    out.matched
}

macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(StrictVisitor::new(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // serde buffers an internally tagged enum through `deserialize_any`; from a
        // sequence it would read the tag, then the variant's fields positionally.
        let reject_seq = expects(&visitor, "internally tagged enum ");
        self.0.deserialize_any(StrictVisitor {
            inner: visitor,
            reject_seq,
        })
    }

    forward! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_option
        deserialize_unit deserialize_seq deserialize_map deserialize_identifier
        deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_unit_struct(name, StrictVisitor::new(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_newtype_struct(name, StrictVisitor::new(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, StrictVisitor::new(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, StrictVisitor::new(visitor))
    }

    /// A struct only from a map: the visitor never sees a sequence.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(StrictVisitor::new(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_enum(name, variants, StrictVisitor::new(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Wraps what a visitor is handed (accessors, nested deserializers) in their strict forms;
/// with `reject_seq`, a sequence is an invalid type.
struct StrictVisitor<V> {
    inner: V,
    reject_seq: bool,
}

impl<V> StrictVisitor<V> {
    fn new(inner: V) -> Self {
        StrictVisitor {
            inner,
            reject_seq: false,
        }
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StrictVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Strict(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.reject_seq {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        self.inner.visit_seq(StrictAccess(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(StrictAccess(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(StrictAccess(data))
    }
}

/// A seed whose deserializer is wrapped in [`Strict`].
struct StrictSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

/// A `SeqAccess`, `MapAccess`, `EnumAccess` or `VariantAccess` whose elements are strict.
struct StrictAccess<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(StrictSeed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for StrictAccess<A> {
    type Error = A::Error;
    type Variant = StrictAccess<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(StrictSeed(seed))?;
        Ok((value, StrictAccess(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for StrictAccess<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(StrictSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, StrictVisitor::new(visitor))
    }

    /// A struct variant only from a map, like a struct.
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(
            fields,
            StrictVisitor {
                inner: visitor,
                reject_seq: true,
            },
        )
    }
}

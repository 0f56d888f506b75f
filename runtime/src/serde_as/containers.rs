//! Lists, maps and fixed arrays whose elements go through an adapter.
//!
//! [`ArrayOf`] also covers arrays longer than 32 elements, for which serde has no impls
//! (`ArrayOf<Same>` on a `[u8; 64]`).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple};
use serde::{Deserializer, Serializer};

use super::{DeserializeAs, DeserializeAsWrap, SerializeAs, SerializeAsWrap};

/// Most elements preallocated from a size hint: a hint is the peer's claim, not a
/// measurement, so it must not decide how much memory is reserved.
const MAX_PREALLOCATED: usize = 1024;

fn cautious(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(MAX_PREALLOCATED)
}

/// `Vec<T>` as a JSON array, each element through `A`.
#[derive(Debug)]
pub struct ListOf<A: ?Sized>(PhantomData<A>);

impl<T, A: SerializeAs<T> + ?Sized> SerializeAs<Vec<T>> for ListOf<A> {
    fn serialize_as<S: Serializer>(value: &Vec<T>, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(value.len()))?;
        for element in value {
            seq.serialize_element(&SerializeAsWrap::<T, A>::new(element))?;
        }
        seq.end()
    }
}

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> DeserializeAs<'de, Vec<T>> for ListOf<A> {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(ListVisitor::<T, A>(PhantomData))
    }
}

struct ListVisitor<T, A: ?Sized>(PhantomData<(T, fn() -> A)>);

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> Visitor<'de> for ListVisitor<T, A> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<T>, S::Error> {
        let mut out = Vec::with_capacity(cautious(seq.size_hint()));
        while let Some(element) = seq.next_element::<DeserializeAsWrap<T, A>>()? {
            out.push(element.into_inner());
        }
        Ok(out)
    }
}

/// `BTreeMap<String, T>` as a JSON object, each value through `A`.
#[derive(Debug)]
pub struct MapOf<A: ?Sized>(PhantomData<A>);

impl<T, A: SerializeAs<T> + ?Sized> SerializeAs<BTreeMap<String, T>> for MapOf<A> {
    fn serialize_as<S: Serializer>(
        value: &BTreeMap<String, T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(value.len()))?;
        for (key, element) in value {
            map.serialize_entry(key, &SerializeAsWrap::<T, A>::new(element))?;
        }
        map.end()
    }
}

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> DeserializeAs<'de, BTreeMap<String, T>>
    for MapOf<A>
{
    fn deserialize_as<D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, T>, D::Error> {
        deserializer.deserialize_map(MapVisitor::<T, A>(PhantomData))
    }
}

struct MapVisitor<T, A: ?Sized>(PhantomData<(T, fn() -> A)>);

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized> Visitor<'de> for MapVisitor<T, A> {
    type Value = BTreeMap<String, T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut out = BTreeMap::new();
        while let Some((key, element)) = map.next_entry::<String, DeserializeAsWrap<T, A>>()? {
            out.insert(key, element.into_inner());
        }
        Ok(out)
    }
}

/// `[T; N]` as a JSON array of exactly `N` elements, each through `A`.
#[derive(Debug)]
pub struct ArrayOf<A: ?Sized>(PhantomData<A>);

impl<T, A: SerializeAs<T> + ?Sized, const N: usize> SerializeAs<[T; N]> for ArrayOf<A> {
    fn serialize_as<S: Serializer>(value: &[T; N], serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(N)?;
        for element in value {
            tuple.serialize_element(&SerializeAsWrap::<T, A>::new(element))?;
        }
        tuple.end()
    }
}

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized, const N: usize> DeserializeAs<'de, [T; N]>
    for ArrayOf<A>
{
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<[T; N], D::Error> {
        deserializer.deserialize_tuple(N, ArrayVisitor::<T, A, N>(PhantomData))
    }
}

struct ArrayVisitor<T, A: ?Sized, const N: usize>(PhantomData<(T, fn() -> A)>);

impl<'de, T, A: DeserializeAs<'de, T> + ?Sized, const N: usize> Visitor<'de>
    for ArrayVisitor<T, A, N>
{
    type Value = [T; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of {N} elements")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<[T; N], S::Error> {
        let mut out = Vec::with_capacity(N);
        for index in 0..N {
            match seq.next_element::<DeserializeAsWrap<T, A>>()? {
                Some(element) => out.push(element.into_inner()),
                None => return Err(serde::de::Error::invalid_length(index, &self)),
            }
        }
        // Count any surplus so the error says how long the array really was.
        let mut len = N;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            len += 1;
        }
        if len != N {
            return Err(serde::de::Error::invalid_length(len, &self));
        }
        // `out` holds exactly N elements here, so the conversion cannot fail.
        out.try_into()
            .map_err(|_| serde::de::Error::invalid_length(N, &self))
    }
}

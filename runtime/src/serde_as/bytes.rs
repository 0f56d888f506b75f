//! `bytes`: base64 with the RFC 4648 standard alphabet and padding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserializer, Serializer};

use super::{DeserializeAs, SerializeAs, deserialize_str_with};

/// `Vec<u8>` as padded standard base64: `"aGk="`.
#[derive(Debug)]
pub struct Base64;

impl SerializeAs<Vec<u8>> for Base64 {
    fn serialize_as<S: Serializer>(value: &Vec<u8>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(value))
    }
}

impl<'de> DeserializeAs<'de, Vec<u8>> for Base64 {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        // The STANDARD engine rejects missing padding and non-zero trailing bits, so each
        // byte string has exactly one accepted form.
        deserialize_str_with(deserializer, "padded standard base64", |text| {
            STANDARD.decode(text).ok()
        })
    }
}

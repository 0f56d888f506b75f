//! The little-endian binary codec of C-layout structs (`encoding: binaryLe`).
//!
//! A C-layout struct is its fixed part — every member at its C offset, little-endian,
//! padding zero — followed by its tail fields in order, packed: `bytes` and `string` as
//! raw bytes (count = bytes, strings UTF-8), lists as their elements back to back
//! (count = elements). Each tail's count is a field of the fixed part.
//!
//! Generated structs implement [`Binary`] field by field over a [`Reader`] and a
//! [`Writer`]; the reader checks every length against the bytes actually present before
//! it reads or allocates, so a hostile count yields a [`DecodeError`], never a panic or a
//! huge allocation. Errors name the path of the field (`Query.pairs[2].key`) and the byte
//! offset where it starts.

mod error;
mod impls;
mod reader;
mod writer;

pub use error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
pub use reader::Reader;
pub use writer::Writer;

/// A value with a little-endian binary form.
pub trait Binary: Sized {
    /// Name for error messages: the catalogue type name, or the primitive's.
    const NAME: &'static str;

    /// Size in bytes of the fixed part (the whole value for types without tails).
    const SIZE: usize;

    /// Appends the value's bytes.
    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError>;

    /// Reads one value, advancing the reader past it.
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The value's bytes.
    fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut writer = Writer::with_capacity(Self::SIZE);
        self.encode_to(&mut writer)
            .map_err(|e| e.in_type(Self::NAME))?;
        Ok(writer.into_bytes())
    }

    /// Decodes a value that must span all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode_from(&mut reader).map_err(|e| e.in_type(Self::NAME))?;
        reader.finish().map_err(|e| e.in_type(Self::NAME))?;
        Ok(value)
    }
}

/// Deserializes `value` as a `T`, encodes it, decodes the bytes and serializes the result:
/// the binary round trip generated registries offer to tests and conformance checks. The
/// error says which step failed.
pub fn json_roundtrip<T>(value: serde_json::Value) -> Result<serde_json::Value, String>
where
    T: Binary + serde::Serialize + serde::de::DeserializeOwned,
{
    let typed: T = crate::strict::from_value(value).map_err(|e| format!("from JSON: {e}"))?;
    let bytes = typed.to_bytes().map_err(|e| format!("encode: {e}"))?;
    let decoded = T::from_bytes(&bytes).map_err(|e| format!("decode: {e}"))?;
    serde_json::to_value(&decoded).map_err(|e| format!("to JSON: {e}"))
}

/// The layout of a `repr(C)` struct as the Rust compiler measured it (`size_of`,
/// `offset_of!`), published by generated code so it can be compared with a C compiler's
/// `sizeof`/`offsetof` on the generated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CLayout {
    /// The catalogue's struct name (also the C struct tag).
    pub name: &'static str,
    /// `size_of`.
    pub size: usize,
    /// `(member, offset_of!)` in declaration order.
    pub members: &'static [(&'static str, usize)],
}

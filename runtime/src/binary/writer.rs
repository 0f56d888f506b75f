//! Appending values to a byte buffer.

use super::{Binary, EncodeError, EncodeErrorKind};

/// Appends little-endian values to a growable buffer.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends raw bytes.
    pub fn put(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Encodes field `name`.
    pub fn write<T: Binary>(&mut self, name: &'static str, value: &T) -> Result<(), EncodeError> {
        value.encode_to(self).map_err(|e| e.in_field(name))
    }

    /// Encodes padding field `name`, which must encode as zero bytes.
    pub fn padding<T: Binary>(&mut self, name: &'static str, value: &T) -> Result<(), EncodeError> {
        let start = self.bytes.len();
        self.write(name, value)?;
        if self.bytes[start..].iter().any(|&b| b != 0) {
            self.bytes.truncate(start);
            return Err(EncodeError::new(EncodeErrorKind::NonZeroPadding).in_field(name));
        }
        Ok(())
    }

    /// Tail field `name`: raw bytes, whose count field holds `count`.
    pub fn bytes(
        &mut self,
        name: &'static str,
        value: &[u8],
        count: u64,
    ) -> Result<(), EncodeError> {
        check_count(name, count, value.len())?;
        self.put(value);
        Ok(())
    }

    /// Tail field `name`: UTF-8 bytes, whose count field holds `count`.
    pub fn string(
        &mut self,
        name: &'static str,
        value: &str,
        count: u64,
    ) -> Result<(), EncodeError> {
        self.bytes(name, value.as_bytes(), count)
    }

    /// Tail field `name`: elements back to back, whose count field holds `count`.
    pub fn list<T: Binary>(
        &mut self,
        name: &'static str,
        value: &[T],
        count: u64,
    ) -> Result<(), EncodeError> {
        check_count(name, count, value.len())?;
        for (index, element) in value.iter().enumerate() {
            element
                .encode_to(self)
                .map_err(|e| e.at_index(index).in_field(name))?;
        }
        Ok(())
    }
}

/// A tail's count field must agree with the tail: encoding never rewrites the struct's
/// own fields behind the caller's back.
fn check_count(name: &'static str, declared: u64, actual: usize) -> Result<(), EncodeError> {
    if u64::try_from(actual).is_ok_and(|actual| actual == declared) {
        Ok(())
    } else {
        Err(EncodeError::new(EncodeErrorKind::LengthMismatch { declared, actual }).in_field(name))
    }
}

//! Bounds-checked reading from a byte slice.

use super::{Binary, DecodeError, DecodeErrorKind};

/// Reads values from a byte slice front to back. Every read checks the remaining length
/// first; nothing is allocated for a count the input cannot back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// An error of `kind` at the current position.
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.position)
    }

    /// The next `count` bytes.
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if count > available {
            return Err(self.error(DecodeErrorKind::Truncated {
                needed: count,
                available,
            }));
        }
        let start = self.position;
        self.position += count;
        Ok(&self.bytes[start..self.position])
    }

    /// The next `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let offset = self.position;
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes.
        bytes.try_into().map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::Truncated {
                    needed: N,
                    available: bytes.len(),
                },
                offset,
            )
        })
    }

    /// Decodes field `name`.
    pub fn read<T: Binary>(&mut self, name: &'static str) -> Result<T, DecodeError> {
        T::decode_from(self).map_err(|e| e.in_field(name))
    }

    /// Decodes padding field `name`, which must be all zero bytes.
    pub fn padding<T: Binary>(&mut self, name: &'static str) -> Result<T, DecodeError> {
        let start = self.clone();
        let bytes = self.take(T::SIZE).map_err(|e| e.in_field(name))?;
        if bytes.iter().any(|&b| b != 0) {
            return Err(start.error(DecodeErrorKind::NonZeroPadding).in_field(name));
        }
        let mut zeros = start;
        zeros.read(name)
    }

    /// Tail field `name`: `count` raw bytes.
    pub fn bytes(&mut self, name: &'static str, count: u64) -> Result<Vec<u8>, DecodeError> {
        let len = self.checked_len(count, 1).map_err(|e| e.in_field(name))?;
        Ok(self.take(len).map_err(|e| e.in_field(name))?.to_vec())
    }

    /// Tail field `name`: `count` bytes of UTF-8.
    pub fn string(&mut self, name: &'static str, count: u64) -> Result<String, DecodeError> {
        let offset = self.position;
        let len = self.checked_len(count, 1).map_err(|e| e.in_field(name))?;
        let bytes = self.take(len).map_err(|e| e.in_field(name))?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => {
                Err(DecodeError::new(DecodeErrorKind::InvalidUtf8(error), offset).in_field(name))
            }
        }
    }

    /// Tail field `name`: `count` elements back to back.
    pub fn list<T: Binary>(
        &mut self,
        name: &'static str,
        count: u64,
    ) -> Result<Vec<T>, DecodeError> {
        // Zero-sized elements would let any count through the length check below.
        let element_size = T::SIZE.max(1);
        let len = self
            .checked_len(count, element_size)
            .map_err(|e| e.in_field(name))?;
        let count = len / element_size;
        // `checked_len` compared the byte length with the input, so this allocation is
        // bounded by the size of the input.
        let mut out = Vec::with_capacity(count);
        for index in 0..count {
            out.push(T::decode_from(self).map_err(|e| e.at_index(index).in_field(name))?);
        }
        Ok(out)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.error(DecodeErrorKind::TrailingBytes { count })),
        }
    }

    /// The byte length of `count` elements of `size` bytes, if the input holds that many.
    fn checked_len(&self, count: u64, size: usize) -> Result<usize, DecodeError> {
        let overflow = || {
            self.error(DecodeErrorKind::LengthOverflow {
                count,
                element_size: size,
            })
        };
        let len = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(size))
            .ok_or_else(overflow)?;
        let available = self.remaining();
        if len > available {
            return Err(self.error(DecodeErrorKind::Truncated {
                needed: len,
                available,
            }));
        }
        Ok(len)
    }
}

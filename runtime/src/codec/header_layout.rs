//! [`HeaderLayout`]: where the envelope members of a binary header sit, as a catalogue
//! declares them (`wire.framing` and `wire.envelope`). The generated wire profile of a
//! binary catalogue holds one; [`BinaryHeaderCodec`](super::BinaryHeaderCodec) reads and
//! writes headers through it, so no header is copied into the runtime by hand.

use super::ByteOrder;

/// One unsigned integer field of a binary header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderField {
    /// The field's name in the catalogue, for error messages.
    pub name: &'static str,
    /// Byte offset from the start of the header.
    pub offset: usize,
    /// Size in bytes: 1, 2, 4 or 8.
    pub size: usize,
}

impl HeaderField {
    /// The field's bytes within `header`.
    fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.size
    }
}

/// A header field whose value the protocol fixes (magic number, version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedField {
    /// The field.
    pub field: HeaderField,
    /// The value every message carries in it.
    pub value: u64,
}

/// What a header's length field counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LengthCounts {
    /// The header and the payload together.
    HeaderAndPayload,
    /// The payload alone.
    Payload,
}

/// A checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32C (Castagnoli).
    Crc32c,
}

/// What a checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumCoverage {
    /// The whole message, header and payload, with the checksum field taken as zero.
    MessageWithChecksumZeroed,
}

/// The integrity checksum of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderChecksum {
    /// The field holding it.
    pub field: HeaderField,
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// What it covers.
    pub covers: ChecksumCoverage,
}

impl HeaderChecksum {
    /// The checksum of the message made of `header` and `payload`, as it covers them.
    #[must_use]
    pub fn compute(&self, header: &[u8], payload: &[u8]) -> u64 {
        match (self.algorithm, self.covers) {
            (ChecksumAlgorithm::Crc32c, ChecksumCoverage::MessageWithChecksumZeroed) => {
                let range = self.field.range();
                let crc = crc32c::crc32c(&header[..range.start]);
                let crc = crc32c::crc32c_append(crc, &[0; 8][..self.field.size]);
                let crc = crc32c::crc32c_append(crc, &header[range.end..]);
                u64::from(crc32c::crc32c_append(crc, payload))
            }
        }
    }
}

/// The binary header a catalogue declares: its size, byte order, and where each member
/// of the envelope sits. Every field lies within `size` (the generator emits layouts
/// computed from the catalogue's C layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderLayout {
    /// The header struct's name in the catalogue.
    pub name: &'static str,
    /// Bytes of the header.
    pub size: usize,
    /// Byte order of every field.
    pub byte_order: ByteOrder,
    /// The field holding the message type code.
    pub message_type: HeaderField,
    /// The field holding the message length.
    pub length: HeaderField,
    /// What the length counts.
    pub length_counts: LengthCounts,
    /// The magic number, if the header has one.
    pub magic: Option<FixedField>,
    /// The protocol version, if the header has one.
    pub version: Option<FixedField>,
    /// The correlation id, if the header has one.
    pub correlation_id: Option<HeaderField>,
    /// The timestamp, if the header has one.
    pub timestamp: Option<HeaderField>,
    /// The flags, if the header has them.
    pub flags: Option<HeaderField>,
    /// The checksum, if the header has one.
    pub checksum: Option<HeaderChecksum>,
}

impl HeaderLayout {
    /// The value of `field` in `header` (at least [`Self::size`] bytes).
    ///
    /// # Panics
    ///
    /// When `header` is shorter than the field's end.
    #[must_use]
    pub fn read(&self, field: HeaderField, header: &[u8]) -> u64 {
        self.byte_order.read_uint(&header[field.range()])
    }

    /// Writes `value` into `field` of `header` (its low bytes: a value wider than the
    /// field is truncated, so callers check it first).
    ///
    /// # Panics
    ///
    /// When `header` is shorter than the field's end.
    pub fn write(&self, field: HeaderField, value: u64, header: &mut [u8]) {
        self.byte_order
            .write_uint(value, &mut header[field.range()]);
    }

    /// The largest value `field` can hold.
    #[must_use]
    pub fn max_value(field: HeaderField) -> u64 {
        u64::MAX >> (64 - 8 * field.size.clamp(1, 8))
    }

    /// The message length the length field declares for a payload of `payload` bytes.
    #[must_use]
    pub fn declared_length(&self, payload: usize) -> u64 {
        match self.length_counts {
            LengthCounts::HeaderAndPayload => (self.size + payload) as u64,
            LengthCounts::Payload => payload as u64,
        }
    }
}

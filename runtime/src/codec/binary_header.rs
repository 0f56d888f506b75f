//! [`BinaryHeaderCodec`]: messages that start with the binary header a catalogue
//! declares ([`HeaderLayout`]), then the payload.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::{HeaderLayout, LengthCounts};

/// Why a binary message could not be decoded or encoded.
///
/// After any decoding error the stream cannot be trusted (frame boundaries are lost): the
/// protocol closes the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryHeaderError {
    /// The header's magic number is not the protocol's.
    #[error("bad magic number {found:#x} in `{field}` (expected {expected:#x})")]
    BadMagic {
        /// The magic field.
        field: &'static str,
        /// The magic number read (or given to the encoder).
        found: u64,
        /// The protocol's magic number.
        expected: u64,
    },
    /// The header's version is not the protocol's.
    #[error("unsupported protocol version {found} in `{field}` (expected {expected})")]
    UnsupportedVersion {
        /// The version field.
        field: &'static str,
        /// The version read (or given to the encoder).
        found: u64,
        /// The protocol's version.
        expected: u64,
    },
    /// The header's length counts the header and is smaller than it.
    #[error("declared message length {declared} is smaller than the {header}-byte header")]
    LengthTooSmall {
        /// The length declared in the header.
        declared: u64,
        /// The size of the header.
        header: usize,
    },
    /// The message (header included) is longer than the codec's maximum. Nothing was
    /// allocated for it.
    #[error("message of {declared} bytes, header included, exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message length, header included, the header declares (or the encoder was
        /// given).
        declared: u64,
        /// The codec's maximum message length, header included.
        max: usize,
    },
    /// The checksum of the message does not match the header's.
    #[error("checksum mismatch: header says {expected:#x}, message has {computed:#x}")]
    ChecksumMismatch {
        /// The checksum in the header.
        expected: u64,
        /// The checksum computed over the received message.
        computed: u64,
    },
    /// The encoder was given a header of the wrong size.
    #[error("a header of {given} bytes was given; `{name}` has {expected}")]
    HeaderSize {
        /// The header struct.
        name: &'static str,
        /// Bytes given.
        given: usize,
        /// The header's size.
        expected: usize,
    },
    /// The stream ended inside a message.
    #[error(
        "the stream ended inside a message: {bytes} byte(s) received, header included, of an incomplete message"
    )]
    Truncated {
        /// Bytes of the incomplete message received, header included.
        bytes: usize,
    },
    /// The underlying transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// One message of a binary catalogue: its header and its payload, both slices of the
/// received message (no copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryFrame {
    /// The header's bytes ([`HeaderLayout::size`] of them); read its fields with
    /// [`HeaderLayout::read`] or decode it with the generated header type. When
    /// encoding, the codec fills in the length and the checksum.
    pub header: Bytes,
    /// The payload: the bytes after the header.
    pub payload: Bytes,
}

/// Checks the identity fields of `header` (at least `layout.size` bytes).
fn check_identity(layout: &HeaderLayout, header: &[u8]) -> Result<(), BinaryHeaderError> {
    if let Some(magic) = layout.magic {
        let found = layout.read(magic.field, header);
        if found != magic.value {
            return Err(BinaryHeaderError::BadMagic {
                field: magic.field.name,
                found,
                expected: magic.value,
            });
        }
    }
    if let Some(version) = layout.version {
        let found = layout.read(version.field, header);
        if found != version.value {
            return Err(BinaryHeaderError::UnsupportedVersion {
                field: version.field.name,
                found,
                expected: version.value,
            });
        }
    }
    Ok(())
}

/// The largest message, header included, that `max` allows and the length field can
/// declare.
fn clamp_max(layout: &HeaderLayout, max: usize) -> usize {
    let field_max = HeaderLayout::max_value(layout.length);
    let total_max = match layout.length_counts {
        LengthCounts::HeaderAndPayload => field_max,
        LengthCounts::Payload => field_max.saturating_add(layout.size as u64),
    };
    usize::try_from(total_max).map_or(max, |limit| max.min(limit))
}

/// Validates a received header (magic, then version, then the declared length against
/// the header size and the maximum); returns the length of the whole message.
fn check_header(
    layout: &HeaderLayout,
    max: usize,
    header: &[u8],
) -> Result<usize, BinaryHeaderError> {
    check_identity(layout, header)?;
    let declared = layout.read(layout.length, header);
    let total = match layout.length_counts {
        LengthCounts::HeaderAndPayload => {
            if declared < layout.size as u64 {
                return Err(BinaryHeaderError::LengthTooSmall {
                    declared,
                    header: layout.size,
                });
            }
            declared
        }
        LengthCounts::Payload => declared.saturating_add(layout.size as u64),
    };
    usize::try_from(total)
        .ok()
        .filter(|&total| total <= max)
        .ok_or(BinaryHeaderError::MessageTooLarge {
            declared: total,
            max,
        })
}

/// Fills in the length and the checksum of `message` (a header, then the payload),
/// after checking its identity fields and size: what the sender of a message does last.
///
/// # Errors
///
/// A message shorter than the header, with another magic or version, or longer than
/// `max` (header included).
pub fn seal_message(
    layout: &HeaderLayout,
    max: usize,
    message: &mut [u8],
) -> Result<(), BinaryHeaderError> {
    if message.len() < layout.size {
        return Err(BinaryHeaderError::HeaderSize {
            name: layout.name,
            given: message.len(),
            expected: layout.size,
        });
    }
    check_identity(layout, message)?;
    let max = clamp_max(layout, max);
    if message.len() > max {
        return Err(BinaryHeaderError::MessageTooLarge {
            declared: message.len() as u64,
            max,
        });
    }
    let declared = layout.declared_length(message.len() - layout.size);
    layout.write(layout.length, declared, message);
    if let Some(checksum) = layout.checksum {
        let (header, payload) = message.split_at(layout.size);
        let sum = checksum.compute(header, payload);
        layout.write(checksum.field, sum, message);
    }
    Ok(())
}

/// Where the decoder is within the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Waiting for the header.
    Header,
    /// Header validated (still in the buffer); waiting for the whole message, this long.
    Message(usize),
}

/// Frames a byte stream as messages of a binary catalogue: the header its
/// [`HeaderLayout`] describes, then the payload, checked with the declared checksum.
///
/// Decoding waits for the header and validates it whole (magic, then version, then the
/// declared length against the header size and the maximum) before reserving anything
/// for the payload; then it waits for the payload and verifies the checksum. Encoding
/// fills the length and the checksum and refuses a magic or version the protocol would
/// not accept, or an oversize message.
///
/// After a decoding error the stream cannot be trusted: close the connection.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use ipcspec_runtime::codec::{
///     BinaryFrame, BinaryHeaderCodec, ByteOrder, FixedField, HeaderField, HeaderLayout,
///     LengthCounts,
/// };
/// use tokio_util::codec::{Decoder, Encoder};
///
/// const LAYOUT: HeaderLayout = HeaderLayout {
///     name: "Header",
///     size: 6,
///     byte_order: ByteOrder::Big,
///     magic: Some(FixedField { field: HeaderField { name: "magic", offset: 0, size: 2 }, value: 0xCAFE }),
///     version: None,
///     message_type: HeaderField { name: "kind", offset: 2, size: 2 },
///     length: HeaderField { name: "length", offset: 4, size: 2 },
///     length_counts: LengthCounts::Payload,
///     correlation_id: None,
///     timestamp: None,
///     flags: None,
///     checksum: None,
/// };
/// let mut codec = BinaryHeaderCodec::new(LAYOUT, 1 << 10);
/// let header = Bytes::from_static(&[0xCA, 0xFE, 0, 7, 0, 0]);
/// let mut buf = BytesMut::new();
/// codec.encode(BinaryFrame { header, payload: Bytes::from_static(b"hello") }, &mut buf).unwrap();
/// assert_eq!(&buf[..6], &[0xCA, 0xFE, 0, 7, 0, 5]);
/// let frame = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(LAYOUT.read(LAYOUT.message_type, &frame.header), 7);
/// assert_eq!(&frame.payload[..], b"hello");
/// ```
#[derive(Debug, Clone)]
pub struct BinaryHeaderCodec {
    layout: HeaderLayout,
    max_message_length: usize,
    state: DecodeState,
}

impl BinaryHeaderCodec {
    /// A codec for messages with this header `layout` and at most `max_message_length`
    /// bytes, header included (clamped to what the length field can declare; values
    /// below the header size accept no message).
    #[must_use]
    pub fn new(layout: HeaderLayout, max_message_length: usize) -> Self {
        Self {
            max_message_length: clamp_max(&layout, max_message_length),
            layout,
            state: DecodeState::Header,
        }
    }

    /// The header layout.
    #[must_use]
    pub fn layout(&self) -> &HeaderLayout {
        &self.layout
    }

    /// The longest message this codec decodes or encodes, header included, in bytes.
    #[must_use]
    pub fn max_message_length(&self) -> usize {
        self.max_message_length
    }

    /// The next whole message (header and payload) in `src`, validated, split off
    /// without copying; `None` when more bytes are needed. This is [`Decoder::decode`]
    /// for callers that keep the message in one piece (the server's frame is the
    /// message).
    ///
    /// # Errors
    ///
    /// As [`Decoder::decode`]: the stream cannot be trusted any more.
    pub fn decode_message(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<BytesMut>, BinaryHeaderError> {
        let total = match self.state {
            DecodeState::Header => {
                let Some(header) = src.get(..self.layout.size) else {
                    return Ok(None);
                };
                let total = check_header(&self.layout, self.max_message_length, header)?;
                self.state = DecodeState::Message(total);
                total
            }
            DecodeState::Message(total) => total,
        };
        if src.len() < total {
            // Bounded by the maximum, checked above.
            src.reserve(total - src.len());
            return Ok(None);
        }
        self.state = DecodeState::Header;
        let message = src.split_to(total);
        if let Some(checksum) = self.layout.checksum {
            let (header, payload) = message.split_at(self.layout.size);
            let expected = self.layout.read(checksum.field, header);
            let computed = checksum.compute(header, payload);
            if computed != expected {
                return Err(BinaryHeaderError::ChecksumMismatch { expected, computed });
            }
        }
        Ok(Some(message))
    }
}

impl Decoder for BinaryHeaderCodec {
    type Item = BinaryFrame;
    type Error = BinaryHeaderError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BinaryFrame>, BinaryHeaderError> {
        Ok(self.decode_message(src)?.map(|message| {
            let mut payload = message.freeze();
            let header = payload.split_to(self.layout.size);
            BinaryFrame { header, payload }
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BinaryFrame>, BinaryHeaderError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let bytes = src.len();
        self.state = DecodeState::Header;
        src.clear();
        if bytes == 0 {
            Ok(None)
        } else {
            Err(BinaryHeaderError::Truncated { bytes })
        }
    }
}

impl Encoder<BinaryFrame> for BinaryHeaderCodec {
    type Error = BinaryHeaderError;

    fn encode(&mut self, item: BinaryFrame, dst: &mut BytesMut) -> Result<(), BinaryHeaderError> {
        if item.header.len() != self.layout.size {
            return Err(BinaryHeaderError::HeaderSize {
                name: self.layout.name,
                given: item.header.len(),
                expected: self.layout.size,
            });
        }
        let total = item.header.len().saturating_add(item.payload.len());
        if total > self.max_message_length {
            return Err(BinaryHeaderError::MessageTooLarge {
                declared: total as u64,
                max: self.max_message_length,
            });
        }
        let start = dst.len();
        dst.reserve(total);
        dst.extend_from_slice(&item.header);
        dst.extend_from_slice(&item.payload);
        let sealed = seal_message(&self.layout, self.max_message_length, &mut dst[start..]);
        if sealed.is_err() {
            dst.truncate(start);
        }
        sealed
    }
}

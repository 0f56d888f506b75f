//! [`BinaryHeaderCodec`]: the 40-byte little-endian header of binary catalogues, then the
//! payload.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Why a binary message could not be decoded or encoded.
///
/// After any decoding error the stream cannot be trusted (frame boundaries are lost): the
/// protocol closes the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BinaryHeaderError {
    /// The header's magic number is not the codec's.
    #[error("bad magic number {found:#010x} (expected {expected:#010x})")]
    BadMagic {
        /// The magic number read (or given to the encoder).
        found: u32,
        /// The codec's magic number.
        expected: u32,
    },
    /// The header's version is not one the codec accepts.
    #[error("unsupported protocol version {found}")]
    UnsupportedVersion {
        /// The version read (or given to the encoder).
        found: u32,
    },
    /// The header's length is smaller than the header itself.
    #[error("declared message length {declared} is smaller than the 40-byte header")]
    LengthTooSmall {
        /// The length declared in the header.
        declared: u32,
    },
    /// The message (header included) is longer than the codec's maximum. Nothing was
    /// allocated for it.
    #[error("message of {declared} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The length declared in the header, or header plus payload given to the encoder.
        declared: usize,
        /// The codec's maximum message length, header included.
        max: usize,
    },
    /// The CRC-32C of the message does not match the header's checksum.
    #[error("checksum mismatch: header says {expected:#010x}, message has {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum in the header.
        expected: u32,
        /// The checksum computed over the received message.
        computed: u32,
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

/// The 40-byte header that starts every message of a binary catalogue. All fields are
/// little-endian, at the offsets given below, with no padding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BinaryHeader {
    /// Protocol magic number (offset 0).
    pub magic: u32,
    /// Protocol version (offset 4).
    pub version: u32,
    /// Message type code (offset 8).
    pub message_type: u32,
    /// Length of the whole message, header included, in bytes (offset 12).
    pub length: u32,
    /// Correlation id: ties a reply to its request (offset 16).
    pub correlation_id: u64,
    /// Timestamp, nanoseconds (offset 24).
    pub timestamp: u64,
    /// Flags (offset 32).
    pub flags: u32,
    /// CRC-32C (Castagnoli) of the whole message with this field zeroed (offset 36).
    pub checksum: u32,
}

impl BinaryHeader {
    /// Size of the header on the wire, in bytes.
    pub const SIZE: usize = 40;

    /// Offset of the `checksum` field.
    pub const CHECKSUM_OFFSET: usize = 36;

    /// Writes the 40 header bytes to `dst`.
    pub fn encode_into<B: BufMut>(&self, dst: &mut B) {
        dst.put_u32_le(self.magic);
        dst.put_u32_le(self.version);
        dst.put_u32_le(self.message_type);
        dst.put_u32_le(self.length);
        dst.put_u64_le(self.correlation_id);
        dst.put_u64_le(self.timestamp);
        dst.put_u32_le(self.flags);
        dst.put_u32_le(self.checksum);
    }

    /// The 40 header bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        self.encode_into(&mut &mut bytes[..]);
        bytes
    }

    /// Reads a header from the first 40 bytes of `src`; `None` if `src` is shorter.
    /// Nothing is validated: see [`BinaryHeaderCodec`] for that.
    #[must_use]
    pub fn decode_from(src: &[u8]) -> Option<Self> {
        let mut src = src.get(..Self::SIZE)?;
        Some(Self {
            magic: src.get_u32_le(),
            version: src.get_u32_le(),
            message_type: src.get_u32_le(),
            length: src.get_u32_le(),
            correlation_id: src.get_u64_le(),
            timestamp: src.get_u64_le(),
            flags: src.get_u32_le(),
            checksum: src.get_u32_le(),
        })
    }

    /// The CRC-32C of the message made of this header and `payload`, with the checksum
    /// field taken as zero (the header's other fields, `length` included, as they are).
    #[must_use]
    pub fn compute_checksum(&self, payload: &[u8]) -> u32 {
        let bytes = self.to_bytes();
        let crc = crc32c::crc32c(&bytes[..Self::CHECKSUM_OFFSET]);
        let crc = crc32c::crc32c_append(crc, &[0; 4]);
        crc32c::crc32c_append(crc, payload)
    }
}

/// One message of a binary catalogue: its header and its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryFrame {
    /// The header. When encoding, `length` and `checksum` are filled in by the codec.
    pub header: BinaryHeader,
    /// The payload: the bytes after the header.
    pub payload: Bytes,
}

/// Where the decoder is within the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Waiting for the 40-byte header.
    Header,
    /// Header read, validated and consumed; waiting for `length - 40` payload bytes.
    Payload(BinaryHeader),
}

/// Frames a byte stream as binary-catalogue messages: a [`BinaryHeader`] then
/// `length - 40` payload bytes, checked with CRC-32C.
///
/// Decoding waits for the 40 header bytes and validates the whole header (magic, then
/// version, then `length >= 40`, then `length <= max`) before reserving anything for the
/// payload; then it waits for the payload and verifies the checksum. Encoding fills
/// `length` and `checksum` from the payload and refuses a magic or version the codec
/// would not accept, or an oversize message.
///
/// After a decoding error the stream cannot be trusted: close the connection.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use ipcspec_runtime::codec::{BinaryFrame, BinaryHeader, BinaryHeaderCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = BinaryHeaderCodec::new(0x4950_4353, [1], 1 << 20);
/// let header = BinaryHeader { magic: 0x4950_4353, version: 1, message_type: 7, ..Default::default() };
/// let mut buf = BytesMut::new();
/// codec.encode(BinaryFrame { header, payload: Bytes::from_static(b"hello") }, &mut buf).unwrap();
/// let frame = codec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(frame.header.length, 45);
/// assert_eq!(&frame.payload[..], b"hello");
/// ```
#[derive(Debug, Clone)]
pub struct BinaryHeaderCodec {
    magic: u32,
    versions: Box<[u32]>,
    max_message_length: usize,
    state: DecodeState,
}

impl BinaryHeaderCodec {
    /// A codec for messages with this `magic`, one of `versions`, and at most
    /// `max_message_length` bytes, header included (values above `u32::MAX`, which the
    /// header cannot express, are clamped; values below 40 accept no message).
    #[must_use]
    pub fn new(
        magic: u32,
        versions: impl IntoIterator<Item = u32>,
        max_message_length: usize,
    ) -> Self {
        Self {
            magic,
            versions: versions.into_iter().collect(),
            max_message_length: max_message_length.min(u32::MAX as usize),
            state: DecodeState::Header,
        }
    }

    /// The magic number this codec expects.
    #[must_use]
    pub fn magic(&self) -> u32 {
        self.magic
    }

    /// The versions this codec accepts.
    #[must_use]
    pub fn versions(&self) -> &[u32] {
        &self.versions
    }

    /// The longest message this codec decodes or encodes, header included, in bytes.
    #[must_use]
    pub fn max_message_length(&self) -> usize {
        self.max_message_length
    }

    /// Checks magic and version.
    fn check_identity(&self, header: &BinaryHeader) -> Result<(), BinaryHeaderError> {
        if header.magic != self.magic {
            return Err(BinaryHeaderError::BadMagic {
                found: header.magic,
                expected: self.magic,
            });
        }
        if !self.versions.contains(&header.version) {
            return Err(BinaryHeaderError::UnsupportedVersion {
                found: header.version,
            });
        }
        Ok(())
    }

    /// Validates a received header; returns the payload length.
    fn validate(&self, header: &BinaryHeader) -> Result<usize, BinaryHeaderError> {
        self.check_identity(header)?;
        let declared = header.length as usize;
        if declared < BinaryHeader::SIZE {
            return Err(BinaryHeaderError::LengthTooSmall {
                declared: header.length,
            });
        }
        if declared > self.max_message_length {
            return Err(BinaryHeaderError::MessageTooLarge {
                declared,
                max: self.max_message_length,
            });
        }
        Ok(declared - BinaryHeader::SIZE)
    }
}

impl Decoder for BinaryHeaderCodec {
    type Item = BinaryFrame;
    type Error = BinaryHeaderError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BinaryFrame>, BinaryHeaderError> {
        let header = match self.state {
            DecodeState::Header => {
                let Some(header) = BinaryHeader::decode_from(src) else {
                    return Ok(None);
                };
                self.validate(&header)?;
                src.advance(BinaryHeader::SIZE);
                self.state = DecodeState::Payload(header);
                header
            }
            DecodeState::Payload(header) => header,
        };
        // Validated: at least the header size, at most the maximum.
        let payload_length = header.length as usize - BinaryHeader::SIZE;
        if src.len() < payload_length {
            src.reserve(payload_length - src.len());
            return Ok(None);
        }
        self.state = DecodeState::Header;
        let payload = src.split_to(payload_length).freeze();
        let computed = header.compute_checksum(&payload);
        if computed != header.checksum {
            return Err(BinaryHeaderError::ChecksumMismatch {
                expected: header.checksum,
                computed,
            });
        }
        Ok(Some(BinaryFrame { header, payload }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BinaryFrame>, BinaryHeaderError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let header = match self.state {
            DecodeState::Header => 0,
            DecodeState::Payload(_) => BinaryHeader::SIZE,
        };
        let bytes = src.len() + header;
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
        let BinaryFrame {
            mut header,
            payload,
        } = item;
        self.check_identity(&header)?;
        let declared = payload.len().saturating_add(BinaryHeader::SIZE);
        let too_large = || BinaryHeaderError::MessageTooLarge {
            declared,
            max: self.max_message_length,
        };
        if declared > self.max_message_length {
            return Err(too_large());
        }
        header.length = u32::try_from(declared).map_err(|_| too_large())?;
        header.checksum = header.compute_checksum(&payload);
        dst.reserve(declared);
        header.encode_into(dst);
        dst.extend_from_slice(&payload);
        Ok(())
    }
}

//! [`LengthPrefixedCodec`]: an unsigned length prefix of the [`LengthPrefix`] a catalogue
//! declares (2, 4 or 8 bytes, either byte order), then the body.
//!
//! This is tokio-util's `length_delimited::Builder` restricted to what the catalogue
//! language admits (`length_field_length` 2/4/8, `little_endian`/`big_endian`, a length
//! counting the body only, no offset or adjustment). It is written here rather than
//! wrapping `LengthDelimitedCodec` because that codec reports an oversized frame as an
//! opaque `io::Error`, and a refusal must say what was declared and what the limit is.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::ByteOrder;

/// Width of a length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixWidth {
    /// 2 bytes.
    U16,
    /// 4 bytes.
    U32,
    /// 8 bytes.
    U64,
}

impl PrefixWidth {
    /// Bytes of the prefix.
    #[must_use]
    pub const fn bytes(self) -> usize {
        match self {
            PrefixWidth::U16 => 2,
            PrefixWidth::U32 => 4,
            PrefixWidth::U64 => 8,
        }
    }

    /// The largest length the prefix can express.
    #[must_use]
    pub const fn max_value(self) -> u64 {
        match self {
            PrefixWidth::U16 => u16::MAX as u64,
            PrefixWidth::U32 => u32::MAX as u64,
            PrefixWidth::U64 => u64::MAX,
        }
    }
}

/// The length prefix of a length-prefixed framing: its width and byte order. The length
/// counts the body that follows, not the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LengthPrefix {
    /// Width of the prefix.
    pub width: PrefixWidth,
    /// Byte order of the prefix.
    pub byte_order: ByteOrder,
}

impl LengthPrefix {
    /// Bytes of the prefix.
    #[must_use]
    pub const fn size(self) -> usize {
        self.width.bytes()
    }

    /// `max` clamped to what the prefix can express.
    #[must_use]
    pub fn clamp(self, max: usize) -> usize {
        usize::try_from(self.width.max_value()).map_or(max, |limit| max.min(limit))
    }

    /// The length declared by the prefix at the start of `src`; `None` while `src` is
    /// shorter than the prefix.
    #[must_use]
    pub fn read(self, src: &[u8]) -> Option<u64> {
        src.get(..self.size())
            .map(|prefix| self.byte_order.read_uint(prefix))
    }

    /// Appends the prefix declaring `length` to `out`. `length` must fit the width
    /// (callers check it against [`Self::clamp`]ed limits first).
    pub fn write(self, length: usize, out: &mut BytesMut) {
        let mut prefix = [0u8; 8];
        let prefix = &mut prefix[..self.size()];
        self.byte_order.write_uint(length as u64, prefix);
        out.extend_from_slice(prefix);
    }
}

/// Why a length-prefixed frame could not be decoded or encoded.
///
/// After any decoding error the stream cannot be trusted (frame boundaries are lost): the
/// protocol closes the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LengthPrefixedError {
    /// The length (declared by the peer, or of a body given to the encoder) exceeds the
    /// codec's maximum. Nothing was allocated for it.
    #[error("frame of {declared} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The length declared in the prefix, or the size of the body to encode.
        declared: u64,
        /// The codec's maximum frame length.
        max: usize,
    },
    /// The stream ended inside a frame (in its prefix or its body).
    #[error(
        "the stream ended inside a frame: {bytes} byte(s) received, prefix included, of an incomplete frame"
    )]
    Truncated {
        /// Bytes of the incomplete frame received, its prefix included.
        bytes: usize,
    },
    /// The underlying transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Where the decoder is within the current frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Waiting for the prefix.
    Head,
    /// Prefix read and accepted (already consumed); waiting for this many body bytes.
    Body(usize),
}

/// Frames a byte stream as a [`LengthPrefix`], counting the body that follows (not the
/// prefix), then the body.
///
/// - The maximum frame length is required: a prefix declaring more is
///   [`LengthPrefixedError::FrameTooLarge`], returned as soon as the prefix is read and
///   before any memory is reserved for the body.
/// - A declared length of 0 is allowed: it is a frame with an empty body.
/// - Decoding yields the body as [`BytesMut`] (split off the read buffer, no copy).
/// - Encoding accepts anything that is `AsRef<[u8]>` and checks it against the maximum too.
/// - After a decoding error the stream cannot be trusted: close the connection.
///
/// ```
/// use bytes::BytesMut;
/// use ipcspec_runtime::codec::{ByteOrder, LengthPrefix, LengthPrefixedCodec, PrefixWidth};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let prefix = LengthPrefix { width: PrefixWidth::U16, byte_order: ByteOrder::Big };
/// let mut codec = LengthPrefixedCodec::new(prefix, 1024);
/// let mut buf = BytesMut::new();
/// codec.encode(&b"hello"[..], &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x00\x05hello");
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hello"[..]);
/// ```
#[derive(Debug, Clone)]
pub struct LengthPrefixedCodec {
    prefix: LengthPrefix,
    max_frame_length: usize,
    state: DecodeState,
}

impl LengthPrefixedCodec {
    /// A codec for `prefix` accepting bodies of at most `max_frame_length` bytes (the
    /// prefix not counted). Values above what the prefix can express are clamped.
    #[must_use]
    pub fn new(prefix: LengthPrefix, max_frame_length: usize) -> Self {
        Self {
            prefix,
            max_frame_length: prefix.clamp(max_frame_length),
            state: DecodeState::Head,
        }
    }

    /// The prefix this codec reads and writes.
    #[must_use]
    pub fn prefix(&self) -> LengthPrefix {
        self.prefix
    }

    /// The largest body this codec decodes or encodes, in bytes.
    #[must_use]
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }
}

impl Decoder for LengthPrefixedCodec {
    type Item = BytesMut;
    type Error = LengthPrefixedError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, LengthPrefixedError> {
        let length = match self.state {
            DecodeState::Head => {
                let Some(declared) = self.prefix.read(src) else {
                    return Ok(None);
                };
                let length = usize::try_from(declared)
                    .ok()
                    .filter(|&length| length <= self.max_frame_length)
                    .ok_or(LengthPrefixedError::FrameTooLarge {
                        declared,
                        max: self.max_frame_length,
                    })?;
                src.advance(self.prefix.size());
                self.state = DecodeState::Body(length);
                length
            }
            DecodeState::Body(length) => length,
        };
        if src.len() < length {
            // Bounded by `max_frame_length`, checked above.
            src.reserve(length - src.len());
            return Ok(None);
        }
        self.state = DecodeState::Head;
        Ok(Some(src.split_to(length)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, LengthPrefixedError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let prefix = match self.state {
            DecodeState::Head => 0,
            DecodeState::Body(_) => self.prefix.size(),
        };
        let bytes = src.len() + prefix;
        self.state = DecodeState::Head;
        src.clear();
        if bytes == 0 {
            Ok(None)
        } else {
            Err(LengthPrefixedError::Truncated { bytes })
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for LengthPrefixedCodec {
    type Error = LengthPrefixedError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), LengthPrefixedError> {
        let body = item.as_ref();
        if body.len() > self.max_frame_length {
            return Err(LengthPrefixedError::FrameTooLarge {
                declared: body.len() as u64,
                max: self.max_frame_length,
            });
        }
        dst.reserve(self.prefix.size() + body.len());
        self.prefix.write(body.len(), dst);
        dst.extend_from_slice(body);
        Ok(())
    }
}

//! [`LengthPrefixedCodec`]: a 4-byte little-endian length prefix, then the body.

use std::io;

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

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
        declared: usize,
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
    /// Waiting for the 4-byte prefix.
    Head,
    /// Prefix read and accepted (already consumed); waiting for this many body bytes.
    Body(usize),
}

/// Frames a byte stream as a 4-byte little-endian `u32` length, counting the body that
/// follows (not the prefix), then the body.
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
/// use ipcspec_runtime::codec::LengthPrefixedCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = LengthPrefixedCodec::new(1024);
/// let mut buf = BytesMut::new();
/// codec.encode(&b"hello"[..], &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x05\x00\x00\x00hello");
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hello"[..]);
/// ```
#[derive(Debug, Clone)]
pub struct LengthPrefixedCodec {
    max_frame_length: usize,
    state: DecodeState,
}

impl LengthPrefixedCodec {
    /// Size of the length prefix in bytes.
    pub const PREFIX_SIZE: usize = 4;

    /// A codec accepting bodies of at most `max_frame_length` bytes (the prefix not
    /// counted). Values above `u32::MAX`, which the prefix cannot express, are clamped.
    #[must_use]
    pub fn new(max_frame_length: usize) -> Self {
        Self {
            max_frame_length: max_frame_length.min(u32::MAX as usize),
            state: DecodeState::Head,
        }
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
                let Some(prefix) = src.first_chunk::<{ Self::PREFIX_SIZE }>() else {
                    return Ok(None);
                };
                let declared = u32::from_le_bytes(*prefix) as usize;
                if declared > self.max_frame_length {
                    return Err(LengthPrefixedError::FrameTooLarge {
                        declared,
                        max: self.max_frame_length,
                    });
                }
                src.advance(Self::PREFIX_SIZE);
                self.state = DecodeState::Body(declared);
                declared
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
            DecodeState::Body(_) => Self::PREFIX_SIZE,
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
        let too_large = || LengthPrefixedError::FrameTooLarge {
            declared: body.len(),
            max: self.max_frame_length,
        };
        if body.len() > self.max_frame_length {
            return Err(too_large());
        }
        let length = u32::try_from(body.len()).map_err(|_| too_large())?;
        dst.reserve(Self::PREFIX_SIZE + body.len());
        dst.put_u32_le(length);
        dst.extend_from_slice(body);
        Ok(())
    }
}

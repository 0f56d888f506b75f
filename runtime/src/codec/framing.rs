//! [`Framing`]: the framings a server or client speaks, and one decoder and encoder for
//! whichever is chosen, so the connection code is written once.
//!
//! The two framings fail differently, and the difference matters to a protocol: after a
//! bad length prefix the stream cannot be trusted (fatal: close), while a bad line of a
//! newline-delimited stream concerns that line only (the codec skips it and the peer can
//! be told what was wrong: [`FrameEvent::Bad`]).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::{LengthPrefixedCodec, LengthPrefixedError, NewlineCodec, NewlineError};

/// How a byte stream is cut into frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Framing {
    /// A 4-byte little-endian length, then the body ([`LengthPrefixedCodec`]).
    #[default]
    LengthPrefixed,
    /// One UTF-8 line per frame ([`NewlineCodec`]).
    Newline,
}

impl Framing {
    /// Appends one frame, whose body is `parts` concatenated, to `out`, framed. Encoding
    /// is stateless, so any task can frame into a shared buffer (the server's outbound
    /// queues do), and a body assembled from pieces (a header, a payload borrowed from
    /// a received frame, a trailer) is copied once, into `out`, with no buffer of its own.
    ///
    /// # Errors
    ///
    /// A body the peer could not decode back (above `max` bytes; for lines: empty, not
    /// UTF-8, with a newline or a trailing carriage return), described; `out` is then
    /// unchanged.
    pub fn encode_parts(
        self,
        parts: &[&[u8]],
        max: usize,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        self.encode_pieces(parts, false, max, out)
    }

    /// [`Self::encode_parts`] for text: the parts are UTF-8 by their type, so a line is
    /// not checked for it again.
    ///
    /// # Errors
    ///
    /// As [`Self::encode_parts`].
    pub fn encode_str_parts(
        self,
        parts: &[&str],
        max: usize,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        self.encode_pieces(parts, true, max, out)
    }

    fn encode_pieces<P: AsRef<[u8]>>(
        self,
        parts: &[P],
        utf8: bool,
        max: usize,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        let len: usize = parts.iter().map(|part| part.as_ref().len()).sum();
        match self {
            Framing::LengthPrefixed => {
                let max = max.min(u32::MAX as usize);
                let too_large =
                    || LengthPrefixedError::FrameTooLarge { declared: len, max }.to_string();
                if len > max {
                    return Err(too_large());
                }
                let prefix = u32::try_from(len).map_err(|_| too_large())?;
                out.reserve(LengthPrefixedCodec::PREFIX_SIZE + len);
                out.extend_from_slice(&prefix.to_le_bytes());
                for part in parts {
                    out.extend_from_slice(part.as_ref());
                }
                Ok(())
            }
            Framing::Newline => {
                if len == 0 {
                    return Err(NewlineError::EmptyLine.to_string());
                }
                if len > max {
                    return Err(NewlineError::LineTooLong { max }.to_string());
                }
                let start = out.len();
                out.reserve(len + 1);
                for part in parts {
                    out.extend_from_slice(part.as_ref());
                }
                let body = &out[start..];
                let text = if utf8 {
                    Ok(())
                } else {
                    std::str::from_utf8(body).map(drop)
                };
                let refused = match text {
                    Err(error) => Some(format!("a line must be UTF-8: {error}")),
                    Ok(()) => match memchr::memchr(b'\n', body) {
                        Some(offset) => Some(NewlineError::EmbeddedNewline { offset }.to_string()),
                        None if body.last() == Some(&b'\r') => {
                            Some(NewlineError::TrailingCarriageReturn.to_string())
                        }
                        None => None,
                    },
                };
                if let Some(refused) = refused {
                    out.truncate(start);
                    return Err(refused);
                }
                out.extend_from_slice(b"\n");
                Ok(())
            }
        }
    }
}

/// What the decoder found.
#[derive(Debug)]
pub enum FrameEvent {
    /// A complete frame (the body, without prefix or newline).
    Frame(BytesMut),
    /// A frame that could not be used, already skipped; the stream goes on.
    Bad(BadFrame),
}

/// A skipped frame of a newline-delimited stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// `line_too_long` or `invalid_utf8`.
    pub kind: &'static str,
    /// What was wrong, for the peer and the log.
    pub detail: String,
}

/// A decoding failure after which the stream cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FatalFrameError {
    /// A declared length above the maximum (nothing was allocated for it).
    #[error("frame of {declared} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The declared length.
        declared: usize,
        /// The limit.
        max: usize,
    },
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
enum Inner {
    LengthPrefixed(LengthPrefixedCodec),
    Newline(NewlineCodec),
}

/// Decodes and encodes frames of one [`Framing`] with one maximum size.
#[derive(Debug)]
pub struct FrameCodec {
    inner: Inner,
}

impl FrameCodec {
    /// A codec for `framing` with frames of at most `max` bytes.
    #[must_use]
    pub fn new(framing: Framing, max: usize) -> FrameCodec {
        let inner = match framing {
            Framing::LengthPrefixed => Inner::LengthPrefixed(LengthPrefixedCodec::new(max)),
            Framing::Newline => Inner::Newline(NewlineCodec::new(max)),
        };
        FrameCodec { inner }
    }

    /// The next frame or skipped frame in `buf`, `None` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`FatalFrameError`]: close the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<FrameEvent>, FatalFrameError> {
        match &mut self.inner {
            Inner::LengthPrefixed(codec) => match codec.decode(buf) {
                Ok(frame) => Ok(frame.map(FrameEvent::Frame)),
                Err(LengthPrefixedError::FrameTooLarge { declared, max }) => {
                    Err(FatalFrameError::TooLarge { declared, max })
                }
                Err(LengthPrefixedError::Io(error)) => Err(FatalFrameError::Io(error)),
                Err(other) => Err(FatalFrameError::Io(std::io::Error::other(
                    other.to_string(),
                ))),
            },
            Inner::Newline(codec) => match codec.decode_line(buf) {
                Ok(line) => Ok(line.map(FrameEvent::Frame)),
                Err(NewlineError::LineTooLong { max }) => Ok(Some(FrameEvent::Bad(BadFrame {
                    kind: "line_too_long",
                    detail: format!("a line exceeded the limit of {max} bytes and was skipped"),
                }))),
                Err(NewlineError::InvalidUtf8 { valid_up_to }) => {
                    Ok(Some(FrameEvent::Bad(BadFrame {
                        kind: "invalid_utf8",
                        detail: format!(
                            "a line was not valid UTF-8 (valid up to byte {valid_up_to}) and was skipped"
                        ),
                    })))
                }
                Err(NewlineError::Io(error)) => Err(FatalFrameError::Io(error)),
                Err(other) => Err(FatalFrameError::Io(std::io::Error::other(
                    other.to_string(),
                ))),
            },
        }
    }

    /// Appends `frame`, framed, to `out`.
    ///
    /// # Errors
    ///
    /// A frame the peer could not decode back (too large; for lines: empty, or with a
    /// newline or trailing carriage return), described.
    pub fn encode(&mut self, frame: Bytes, out: &mut BytesMut) -> Result<(), String> {
        let (framing, max) = match &self.inner {
            Inner::LengthPrefixed(codec) => (Framing::LengthPrefixed, codec.max_frame_length()),
            Inner::Newline(codec) => (Framing::Newline, codec.max_line_length()),
        };
        framing.encode_parts(&[&frame], max, out)
    }
}

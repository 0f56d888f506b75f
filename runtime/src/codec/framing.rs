//! [`Framing`]: the framings a server or client speaks, and one decoder and encoder for
//! whichever is chosen, so the connection code is written once.
//!
//! The two framings fail differently, and the difference matters to a protocol: after a
//! bad length prefix the stream cannot be trusted (fatal: close), while a bad line of a
//! newline-delimited stream concerns that line only (the codec skips it and the peer can
//! be told what was wrong: [`FrameEvent::Bad`]).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

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
            Inner::Newline(codec) => match codec.decode(buf) {
                Ok(line) => Ok(line.map(|line| FrameEvent::Frame(BytesMut::from(line.as_bytes())))),
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
        match &mut self.inner {
            Inner::LengthPrefixed(codec) => codec.encode(frame, out).map_err(|e| e.to_string()),
            Inner::Newline(codec) => {
                let text = std::str::from_utf8(&frame)
                    .map_err(|e| format!("a line must be UTF-8: {e}"))?;
                codec.encode(text, out).map_err(|e| e.to_string())
            }
        }
    }
}

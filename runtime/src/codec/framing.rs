//! [`Framing`]: the framings a server or client speaks, and one decoder and encoder for
//! whichever is chosen, so the connection code is written once.
//!
//! The framings fail differently, and the difference matters to a protocol: after a bad
//! length prefix or binary header the stream cannot be trusted (fatal: close), while a
//! bad line of a newline-delimited stream concerns that line only (the codec skips it and
//! the peer can be told what was wrong: [`FrameEvent::Bad`]).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::{
    BinaryHeaderCodec, BinaryHeaderError, HeaderLayout, LengthPrefix, LengthPrefixedCodec,
    LengthPrefixedError, NewlineCodec, NewlineError,
};

/// How a byte stream is cut into frames: what a catalogue's `wire.framing` declares
/// (the generated wire profile holds it). There is no default: the catalogue decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A length prefix, then the body ([`LengthPrefixedCodec`]).
    LengthPrefixed(LengthPrefix),
    /// One UTF-8 line per frame ([`NewlineCodec`]).
    Newline,
    /// A binary header carrying the length, then the payload ([`BinaryHeaderCodec`]).
    /// A frame is the whole message, header included; encoding a frame fills in its
    /// length and checksum.
    BinaryHeader(&'static HeaderLayout),
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
    /// UTF-8, with a newline or a trailing carriage return; for binary headers: shorter
    /// than the header, another magic or version), described; `out` is then unchanged.
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
            Framing::LengthPrefixed(prefix) => {
                let max = prefix.clamp(max);
                if len > max {
                    return Err(LengthPrefixedError::FrameTooLarge {
                        declared: len as u64,
                        max,
                    }
                    .to_string());
                }
                out.reserve(prefix.size() + len);
                prefix.write(len, out);
                for part in parts {
                    out.extend_from_slice(part.as_ref());
                }
                Ok(())
            }
            Framing::BinaryHeader(layout) => {
                if len > max {
                    return Err(BinaryHeaderError::MessageTooLarge {
                        declared: len as u64,
                        max,
                    }
                    .to_string());
                }
                let start = out.len();
                out.reserve(len);
                for part in parts {
                    out.extend_from_slice(part.as_ref());
                }
                super::binary_header::seal_message(layout, max, &mut out[start..]).map_err(
                    |error| {
                        out.truncate(start);
                        error.to_string()
                    },
                )
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
        declared: u64,
        /// The limit.
        max: usize,
    },
    /// A binary header that is not the protocol's (magic, version, length), or a
    /// message whose checksum does not match.
    #[error("{0}")]
    BadHeader(BinaryHeaderError),
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
enum Inner {
    LengthPrefixed(LengthPrefixedCodec),
    Newline(NewlineCodec),
    /// Boxed: the layout is a few hundred bytes, the other codecs a few words.
    BinaryHeader(Box<BinaryHeaderCodec>),
}

/// Decodes and encodes frames of one [`Framing`] with one maximum size.
#[derive(Debug)]
pub struct FrameCodec {
    framing: Framing,
    inner: Inner,
}

impl FrameCodec {
    /// A codec for `framing` with frames of at most `max` bytes.
    #[must_use]
    pub fn new(framing: Framing, max: usize) -> FrameCodec {
        let inner = match framing {
            Framing::LengthPrefixed(prefix) => {
                Inner::LengthPrefixed(LengthPrefixedCodec::new(prefix, max))
            }
            Framing::Newline => Inner::Newline(NewlineCodec::new(max)),
            Framing::BinaryHeader(layout) => {
                Inner::BinaryHeader(Box::new(BinaryHeaderCodec::new(*layout, max)))
            }
        };
        FrameCodec { framing, inner }
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
            Inner::BinaryHeader(codec) => match codec.decode_message(buf) {
                Ok(message) => Ok(message.map(FrameEvent::Frame)),
                Err(BinaryHeaderError::MessageTooLarge { declared, max }) => {
                    Err(FatalFrameError::TooLarge { declared, max })
                }
                Err(BinaryHeaderError::Io(error)) => Err(FatalFrameError::Io(error)),
                Err(other) => Err(FatalFrameError::BadHeader(other)),
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
        let max = match &self.inner {
            Inner::LengthPrefixed(codec) => codec.max_frame_length(),
            Inner::Newline(codec) => codec.max_line_length(),
            Inner::BinaryHeader(codec) => codec.max_message_length(),
        };
        self.framing.encode_parts(&[&frame], max, out)
    }
}

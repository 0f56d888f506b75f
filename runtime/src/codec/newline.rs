//! [`NewlineCodec`]: one UTF-8 line per frame, terminated by `\n`.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Why a line could not be decoded or encoded.
///
/// Decoding errors concern one line only: the codec skips that line and the next call to
/// `decode` continues with the following one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewlineError {
    /// A line (received, or given to the encoder) is longer than the maximum. When
    /// decoding, the rest of the line is discarded up to and including its newline and
    /// decoding then resumes; this error is reported once per over-long line.
    #[error("line exceeds the limit of {max} bytes")]
    LineTooLong {
        /// The codec's maximum line length, in bytes, the newline not counted.
        max: usize,
    },
    /// A received line is not valid UTF-8. The line has been consumed.
    #[error("line is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid UTF-8 prefix of the line, in bytes.
        valid_up_to: usize,
    },
    /// The stream ended inside a line (bytes after the last newline).
    #[error("the stream ended inside a line: {bytes} byte(s) without a terminating newline")]
    Truncated {
        /// Bytes of the unterminated line.
        bytes: usize,
    },
    /// A line given to the encoder contains a `\n`, which would split it in two.
    #[error("line contains a newline at byte {offset}")]
    EmbeddedNewline {
        /// Byte offset of the first `\n`.
        offset: usize,
    },
    /// A line given to the encoder ends with `\r`, which the receiver would strip.
    #[error("line ends with a carriage return, which the receiver would strip")]
    TrailingCarriageReturn,
    /// The encoder was given an empty line, which the receiver would skip.
    #[error("empty line: the receiver skips empty lines")]
    EmptyLine,
    /// The underlying transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Frames a byte stream as lines: each frame is one UTF-8 line terminated by `\n`.
///
/// - A `\r` just before the `\n` is stripped, so `\r\n` peers work.
/// - The maximum line length counts every byte before the `\n` (a `\r` included). The
///   decoder scans at most `max + 1` bytes of a line and remembers where it stopped, so a
///   line arriving in pieces is scanned once.
/// - An over-long line is [`NewlineError::LineTooLong`], reported once; the codec then
///   discards bytes up to and including the next `\n` and resumes: the stream recovers.
/// - A line that is not UTF-8 is [`NewlineError::InvalidUtf8`] for that line only.
/// - **Empty lines are skipped**: `\n` and `\r\n` alone yield no frame (so blank lines
///   between messages are harmless). Consequently the encoder refuses an empty line.
/// - At end of stream, bytes without a terminating `\n` are [`NewlineError::Truncated`].
/// - The encoder writes the line and `\n`, refusing lines the decoder would not return
///   unchanged (embedded `\n`, trailing `\r`, empty, too long).
///
/// ```
/// use bytes::BytesMut;
/// use ipcspec_runtime::codec::NewlineCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = NewlineCodec::new(1024);
/// let mut buf = BytesMut::from(&b"{\"a\":1}\r\n\n{\"b\":2}\n"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "{\"a\":1}");
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "{\"b\":2}");
/// assert_eq!(codec.decode(&mut buf).unwrap(), None);
/// codec.encode("hi", &mut buf).unwrap();
/// assert_eq!(&buf[..], b"hi\n");
/// ```
#[derive(Debug, Clone)]
pub struct NewlineCodec {
    max_line_length: usize,
    /// Bytes at the start of the buffer already scanned without finding a `\n`.
    next_index: usize,
    /// Inside an over-long line already reported: dropping bytes up to the next `\n`.
    is_discarding: bool,
}

impl NewlineCodec {
    /// A codec accepting lines of at most `max_line_length` bytes, the `\n` not counted.
    #[must_use]
    pub fn new(max_line_length: usize) -> Self {
        Self {
            max_line_length,
            next_index: 0,
            is_discarding: false,
        }
    }

    /// The longest line this codec decodes or encodes, in bytes, the `\n` not counted.
    #[must_use]
    pub fn max_line_length(&self) -> usize {
        self.max_line_length
    }
}

/// Position of the first `\n` in `bytes`.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

impl NewlineCodec {
    /// The next line of `src` as bytes (checked to be UTF-8, without its `\n` or `\r\n`),
    /// split off the buffer without copying; `None` when more bytes are needed. This is
    /// [`Decoder::decode`] without the `String`, for callers that keep bytes.
    ///
    /// # Errors
    ///
    /// As [`Decoder::decode`]: the errors concern one line, already skipped.
    pub fn decode_line(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, NewlineError> {
        loop {
            if self.is_discarding {
                match find_newline(src) {
                    Some(offset) => {
                        src.advance(offset + 1);
                        self.is_discarding = false;
                    }
                    None => {
                        src.clear();
                        return Ok(None);
                    }
                }
            }

            // Scan at most `max + 1` bytes: enough to see the `\n` ending a line of exactly
            // `max` bytes, or to know the line is too long.
            let read_to = src.len().min(self.max_line_length.saturating_add(1));
            // A buffer shorter than what was scanned is not the one we saw: rescan it.
            if self.next_index > read_to {
                self.next_index = 0;
            }
            let scanned = src.get(self.next_index..read_to).and_then(find_newline);
            match scanned {
                Some(offset) => {
                    let end = self.next_index + offset;
                    self.next_index = 0;
                    let mut line = src.split_to(end + 1);
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.truncate(end - 1);
                    }
                    if line.is_empty() {
                        continue;
                    }
                    return match std::str::from_utf8(&line) {
                        Ok(_) => Ok(Some(line)),
                        Err(error) => Err(NewlineError::InvalidUtf8 {
                            valid_up_to: error.valid_up_to(),
                        }),
                    };
                }
                None if src.len() > self.max_line_length => {
                    // `max + 1` bytes without a `\n`: too long. Drop what was scanned now so
                    // the buffer does not grow, and the rest of the line on later calls.
                    src.advance(read_to);
                    self.next_index = 0;
                    self.is_discarding = true;
                    return Err(NewlineError::LineTooLong {
                        max: self.max_line_length,
                    });
                }
                None => {
                    self.next_index = read_to;
                    return Ok(None);
                }
            }
        }
    }
}

impl Decoder for NewlineCodec {
    type Item = String;
    type Error = NewlineError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<String>, NewlineError> {
        Ok(self
            .decode_line(src)?
            .map(|line| String::from_utf8_lossy(&line).into_owned()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<String>, NewlineError> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        let bytes = src.len();
        let was_discarding = self.is_discarding;
        src.clear();
        self.next_index = 0;
        self.is_discarding = false;
        if bytes == 0 || was_discarding {
            // An over-long line cut by the end of stream was already reported.
            Ok(None)
        } else {
            Err(NewlineError::Truncated { bytes })
        }
    }
}

impl<T: AsRef<str>> Encoder<T> for NewlineCodec {
    type Error = NewlineError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), NewlineError> {
        let line = item.as_ref().as_bytes();
        if line.is_empty() {
            return Err(NewlineError::EmptyLine);
        }
        if line.len() > self.max_line_length {
            return Err(NewlineError::LineTooLong {
                max: self.max_line_length,
            });
        }
        if let Some(offset) = find_newline(line) {
            return Err(NewlineError::EmbeddedNewline { offset });
        }
        if line.last() == Some(&b'\r') {
            return Err(NewlineError::TrailingCarriageReturn);
        }
        dst.reserve(line.len() + 1);
        dst.extend_from_slice(line);
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

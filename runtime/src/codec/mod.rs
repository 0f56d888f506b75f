//! Framing codecs: how a byte stream is cut into frames.
//!
//! Each codec is a [`tokio_util::codec::Decoder`] and [`tokio_util::codec::Encoder`], so it
//! plugs into [`tokio_util::codec::Framed`] over any transport. They are
//! catalogue-agnostic: what a frame *contains* is the generated code's business.
//!
//! - [`LengthPrefixedCodec`]: a [`LengthPrefix`] (u16, u32 or u64, either byte order),
//!   then that many bytes.
//! - [`NewlineCodec`]: one UTF-8 line per frame, terminated by `\n` (`\r\n` accepted).
//! - [`BinaryHeaderCodec`]: the binary header a catalogue declares ([`HeaderLayout`]:
//!   field offsets and sizes, byte order, magic, version, what the length counts, the
//!   checksum and what it covers), then the payload.
//!
//! Which one a connection uses, and with which parameters, is a [`Framing`]: the
//! generated wire profile of each catalogue holds it (`<catalogue>::WIRE.framing`).
//!
//! Common rules, modelled on tokio-util's `LengthDelimitedCodec` and `LinesCodec`:
//!
//! - **Finite limits, always.** Every codec takes a maximum frame size. A declared length
//!   is checked against it right after the header is read and *before* any memory is
//!   reserved, so a peer cannot make us allocate by lying about a length.
//! - **Resumable decoding.** Each decoder keeps an explicit state (header read, bytes
//!   already scanned), so a frame arriving one byte at a time costs no rescanning.
//! - **No panics on input.** Malformed input is an error value: one small error enum per
//!   codec, each with precise messages and `From<std::io::Error>`.
//! - **Errors and trust.** After an error from [`LengthPrefixedCodec`] or
//!   [`BinaryHeaderCodec`] the byte stream cannot be trusted any more (frame boundaries
//!   are lost): the protocol closes the connection. [`NewlineCodec`] is self-synchronising
//!   and recovers at the next newline. Note that [`tokio_util::codec::Framed`] yields the
//!   error, then `None` once; polling it again resumes decoding.
//!
//! [`LengthPrefixedCodec`]: crate::codec::LengthPrefixedCodec
//! [`NewlineCodec`]: crate::codec::NewlineCodec
//! [`BinaryHeaderCodec`]: crate::codec::BinaryHeaderCodec

mod binary_header;
mod byte_order;
mod framing;
mod header_layout;
mod length_prefixed;
mod newline;

pub use binary_header::{BinaryFrame, BinaryHeaderCodec, BinaryHeaderError, seal_message};
pub use byte_order::ByteOrder;
pub use framing::{BadFrame, FatalFrameError, FrameCodec, FrameEvent, Framing};
pub use header_layout::{
    ChecksumAlgorithm, ChecksumCoverage, FixedField, HeaderChecksum, HeaderField, HeaderLayout,
    LengthCounts,
};
pub use length_prefixed::{LengthPrefix, LengthPrefixedCodec, LengthPrefixedError, PrefixWidth};
pub use newline::{NewlineCodec, NewlineError};

//! The framing codecs: frames split anywhere decode the same, limits are enforced before
//! any allocation, malformed input is an error value (never a panic), and the newline codec
//! recovers after a bad line.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use ipcspec_runtime::codec::{
    BinaryFrame, BinaryHeaderCodec, BinaryHeaderError, ByteOrder, ChecksumAlgorithm,
    ChecksumCoverage, FixedField, HeaderChecksum, HeaderField, HeaderLayout, LengthCounts,
    LengthPrefix, LengthPrefixedCodec, LengthPrefixedError, NewlineCodec, NewlineError,
    PrefixWidth,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder, Framed};

const MIB: usize = 1 << 20;

/// The prefix most tests use; `lp_every_width_and_byte_order` covers the others.
const U32_LE: LengthPrefix = LengthPrefix {
    width: PrefixWidth::U32,
    byte_order: ByteOrder::Little,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Feeds `data` to `codec` in chunks ending at `cuts` (sorted, in range or not), calling
/// `decode` after each chunk and `decode_eof` at the end, as `FramedRead` does. Returns
/// every item and error in order; stops at the first error when `stop_on_error`.
fn feed<D: Decoder>(
    codec: &mut D,
    data: &[u8],
    cuts: &[usize],
    stop_on_error: bool,
) -> Vec<Result<D::Item, D::Error>> {
    let mut boundaries: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    boundaries.push(data.len());
    boundaries.sort_unstable();
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    let mut start = 0;
    for end in boundaries {
        buf.extend_from_slice(&data[start..end]);
        start = end;
        // Bounded: every iteration consumes input or returns.
        for _ in 0..=data.len() + 1 {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => out.push(Ok(item)),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error));
                    if stop_on_error {
                        return out;
                    }
                }
            }
        }
    }
    for _ in 0..=data.len() + 1 {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => out.push(Ok(item)),
            Ok(None) => break,
            Err(error) => {
                out.push(Err(error));
                if stop_on_error {
                    return out;
                }
            }
        }
    }
    out
}

/// Cuts after every byte.
fn every_byte(data: &[u8]) -> Vec<usize> {
    (1..data.len()).collect()
}

fn ok_items<T, E: std::fmt::Debug>(results: Vec<Result<T, E>>) -> Vec<T> {
    results.into_iter().map(|r| r.unwrap()).collect()
}

// ---------------------------------------------------------------------------------------
// LengthPrefixedCodec
// ---------------------------------------------------------------------------------------

fn lp_encode(frames: &[&[u8]]) -> BytesMut {
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    let mut buf = BytesMut::new();
    for frame in frames {
        codec.encode(*frame, &mut buf).unwrap();
    }
    buf
}

#[test]
fn lp_wire_form_is_le_length_then_body() {
    assert_eq!(&lp_encode(&[b"abc"])[..], b"\x03\x00\x00\x00abc");
    assert_eq!(&lp_encode(&[b""])[..], b"\x00\x00\x00\x00");
}

#[test]
fn lp_every_width_and_byte_order() {
    let cases: [(PrefixWidth, ByteOrder, &[u8]); 6] = [
        (PrefixWidth::U16, ByteOrder::Little, b"\x03\x00"),
        (PrefixWidth::U16, ByteOrder::Big, b"\x00\x03"),
        (PrefixWidth::U32, ByteOrder::Little, b"\x03\x00\x00\x00"),
        (PrefixWidth::U32, ByteOrder::Big, b"\x00\x00\x00\x03"),
        (
            PrefixWidth::U64,
            ByteOrder::Little,
            b"\x03\x00\x00\x00\x00\x00\x00\x00",
        ),
        (
            PrefixWidth::U64,
            ByteOrder::Big,
            b"\x00\x00\x00\x00\x00\x00\x00\x03",
        ),
    ];
    for (width, byte_order, prefix) in cases {
        let mut codec = LengthPrefixedCodec::new(LengthPrefix { width, byte_order }, MIB);
        let mut buf = BytesMut::new();
        codec.encode(&b"abc"[..], &mut buf).unwrap();
        codec.encode(&b""[..], &mut buf).unwrap();
        assert_eq!(&buf[..prefix.len()], prefix, "{width:?} {byte_order:?}");
        assert_eq!(&buf[prefix.len()..prefix.len() + 3], b"abc");
        let got = ok_items(feed(&mut codec, &buf, &every_byte(&buf), true));
        assert_eq!(got, [&b"abc"[..], &b""[..]], "{width:?} {byte_order:?}");
    }
}

#[test]
fn lp_a_u16_prefix_caps_the_limit_and_a_u64_one_is_refused_before_allocating() {
    let u16_be = LengthPrefix {
        width: PrefixWidth::U16,
        byte_order: ByteOrder::Big,
    };
    let mut codec = LengthPrefixedCodec::new(u16_be, MIB);
    assert_eq!(codec.max_frame_length(), 65_535);
    let mut buf = BytesMut::new();
    assert!(matches!(
        codec.encode(&vec![0u8; 65_536][..], &mut buf),
        Err(LengthPrefixedError::FrameTooLarge {
            declared: 65_536,
            max: 65_535
        })
    ));
    let u64_le = LengthPrefix {
        width: PrefixWidth::U64,
        byte_order: ByteOrder::Little,
    };
    let mut buf = BytesMut::with_capacity(16);
    buf.extend_from_slice(&u64::MAX.to_le_bytes());
    let capacity = buf.capacity();
    let err = LengthPrefixedCodec::new(u64_le, MIB)
        .decode(&mut buf)
        .unwrap_err();
    assert_eq!(buf.capacity(), capacity);
    assert_eq!(
        err.to_string(),
        "frame of 18446744073709551615 bytes exceeds the limit of 1048576 bytes"
    );
}

#[test]
fn lp_one_byte_at_a_time() {
    let frames: [&[u8]; 3] = [b"first", b"", b"third frame"];
    let data = lp_encode(&frames);
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    let got = ok_items(feed(&mut codec, &data, &every_byte(&data), true));
    assert_eq!(got, frames.map(BytesMut::from));
}

#[test]
fn lp_many_frames_in_one_read() {
    let bodies: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; usize::from(i)]).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let mut buf = lp_encode(&refs);
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    for body in &bodies {
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &body[..]);
    }
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.is_empty());
}

#[test]
fn lp_zero_length_frame_is_an_empty_body() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    let mut codec = LengthPrefixedCodec::new(U32_LE, 0);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap().len(), 0);
    assert!(buf.is_empty());
}

#[test]
fn lp_exactly_max_is_accepted() {
    let body = [7u8; 100];
    let mut codec = LengthPrefixedCodec::new(U32_LE, 100);
    let mut buf = BytesMut::new();
    codec.encode(&body[..], &mut buf).unwrap();
    assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &body[..]);
}

#[test]
fn lp_max_plus_one_is_rejected_both_ways() {
    let mut codec = LengthPrefixedCodec::new(U32_LE, 100);
    let mut buf = BytesMut::new();
    let err = codec.encode(&[0u8; 101][..], &mut buf).unwrap_err();
    assert!(matches!(
        err,
        LengthPrefixedError::FrameTooLarge {
            declared: 101,
            max: 100
        }
    ));
    assert!(buf.is_empty(), "nothing written on error");

    let mut buf = BytesMut::new();
    buf.put_u32_le(101);
    let err = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        LengthPrefixedError::FrameTooLarge {
            declared: 101,
            max: 100
        }
    ));
}

#[test]
fn lp_declared_u32_max_does_not_allocate() {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u32_le(0xFFFF_FFFF);
    buf.put_slice(b"some bytes");
    let capacity = buf.capacity();
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    let err = codec.decode(&mut buf).unwrap_err();
    assert_eq!(buf.capacity(), capacity);
    assert_eq!(
        err.to_string(),
        "frame of 4294967295 bytes exceeds the limit of 1048576 bytes"
    );
}

#[test]
fn lp_truncated_frame_at_eof() {
    // Inside the body.
    let data = lp_encode(&[b"complete", b"cut short"]);
    let cut = &data[..data.len() - 3];
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    let results = feed(&mut codec, cut, &[], false);
    assert_eq!(results.len(), 2);
    assert_eq!(&results[0].as_ref().unwrap()[..], b"complete");
    assert!(matches!(
        results[1],
        Err(LengthPrefixedError::Truncated { bytes: 10 })
    ));

    // Inside the prefix.
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    let results = feed(&mut codec, &[5, 0], &[], false);
    assert!(matches!(
        results[..],
        [Err(LengthPrefixedError::Truncated { bytes: 2 })]
    ));

    // Clean end.
    let mut codec = LengthPrefixedCodec::new(U32_LE, MIB);
    assert!(feed(&mut codec, &lp_encode(&[b"x"]), &[], false).len() == 1);
}

#[test]
fn lp_errors_convert_from_io() {
    let err = LengthPrefixedError::from(std::io::Error::other("boom"));
    assert!(matches!(err, LengthPrefixedError::Io(_)));
    let _: &dyn std::error::Error = &err;
}

// ---------------------------------------------------------------------------------------
// NewlineCodec
// ---------------------------------------------------------------------------------------

fn lines_of<E: std::fmt::Debug>(results: Vec<Result<String, E>>) -> Vec<String> {
    ok_items(results)
}

#[test]
fn nl_one_byte_at_a_time() {
    let data = b"alpha\r\nbeta\n\n\r\ngamma\n";
    let mut codec = NewlineCodec::new(16);
    let got = lines_of(feed(&mut codec, data, &every_byte(data), true));
    assert_eq!(got, ["alpha", "beta", "gamma"]);
}

#[test]
fn nl_many_lines_in_one_read() {
    let mut data = String::new();
    for i in 0..500 {
        data.push_str(&format!("line {i}\n"));
    }
    let mut codec = NewlineCodec::new(64);
    let got = lines_of(feed(&mut codec, data.as_bytes(), &[], true));
    assert_eq!(got.len(), 500);
    assert_eq!(got[499], "line 499");
}

#[test]
fn nl_empty_lines_are_skipped() {
    let mut codec = NewlineCodec::new(8);
    let got = lines_of(feed(&mut codec, b"\n\r\n\na\n\n", &[], true));
    assert_eq!(got, ["a"]);
}

#[test]
fn nl_exactly_max_is_accepted_and_max_plus_one_rejected() {
    let mut codec = NewlineCodec::new(5);
    let mut buf = BytesMut::from(&b"12345\n"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "12345");

    // Exactly max, delivered before its newline: not an error yet.
    let mut buf = BytesMut::from(&b"12345"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b"\n");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "12345");

    // Max + 1, with or without the newline seen.
    let mut buf = BytesMut::from(&b"123456"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(NewlineError::LineTooLong { max: 5 })
    ));
    let mut codec = NewlineCodec::new(5);
    let mut buf = BytesMut::from(&b"123456\n"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(NewlineError::LineTooLong { max: 5 })
    ));

    // Encoding.
    let mut out = BytesMut::new();
    codec.encode("12345", &mut out).unwrap();
    assert!(matches!(
        codec.encode("123456", &mut out),
        Err(NewlineError::LineTooLong { max: 5 })
    ));
    assert_eq!(&out[..], b"12345\n");
}

#[test]
fn nl_recovers_after_an_oversize_line() {
    let mut data = b"ok1\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 10_000));
    data.extend_from_slice(b"\nok2\n");
    for cuts in [vec![], every_byte(&data), vec![5, 100, 5000, 10_003]] {
        let mut codec = NewlineCodec::new(64);
        let results = feed(&mut codec, &data, &cuts, false);
        assert_eq!(results.len(), 3, "one error per over-long line");
        assert_eq!(results[0].as_ref().unwrap(), "ok1");
        assert!(matches!(
            results[1],
            Err(NewlineError::LineTooLong { max: 64 })
        ));
        assert_eq!(results[2].as_ref().unwrap(), "ok2");
    }
}

#[test]
fn nl_oversize_line_does_not_grow_the_buffer() {
    let mut codec = NewlineCodec::new(16);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[b'x'; 100]);
    assert!(codec.decode(&mut buf).is_err());
    for _ in 0..100 {
        buf.extend_from_slice(&[b'y'; 100]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.len() <= 100, "discarded bytes are dropped");
    }
    buf.extend_from_slice(b"tail\nnext\n");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "next");
}

#[test]
fn nl_invalid_utf8_is_an_error_for_that_line_only() {
    let data = b"good\nab\xffcd\nalso good\n";
    let mut codec = NewlineCodec::new(64);
    let results = feed(&mut codec, data, &[], false);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), "good");
    assert!(matches!(
        results[1],
        Err(NewlineError::InvalidUtf8 { valid_up_to: 2 })
    ));
    assert_eq!(results[2].as_ref().unwrap(), "also good");
}

#[test]
fn nl_truncated_line_at_eof() {
    let mut codec = NewlineCodec::new(64);
    let results = feed(&mut codec, b"whole\npart", &[], false);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap(), "whole");
    assert!(matches!(
        results[1],
        Err(NewlineError::Truncated { bytes: 4 })
    ));
    assert_eq!(
        NewlineError::Truncated { bytes: 4 }.to_string(),
        "the stream ended inside a line: 4 byte(s) without a terminating newline"
    );
}

#[test]
fn nl_encoder_refuses_lines_that_would_not_round_trip() {
    let mut codec = NewlineCodec::new(64);
    let mut out = BytesMut::new();
    assert!(matches!(
        codec.encode("a\nb", &mut out),
        Err(NewlineError::EmbeddedNewline { offset: 1 })
    ));
    assert!(matches!(
        codec.encode("a\r", &mut out),
        Err(NewlineError::TrailingCarriageReturn)
    ));
    assert!(matches!(
        codec.encode("", &mut out),
        Err(NewlineError::EmptyLine)
    ));
    assert!(out.is_empty());
}

#[test]
fn nl_round_trip() {
    let lines = ["{\"type\":\"hello\"}", "héllo wörld", "a\rb", "x"];
    let mut codec = NewlineCodec::new(64);
    let mut buf = BytesMut::new();
    for line in lines {
        codec.encode(line, &mut buf).unwrap();
    }
    let got = lines_of(feed(&mut codec, &buf.clone(), &every_byte(&buf), true));
    assert_eq!(got, lines);
}

// ---------------------------------------------------------------------------------------
// BinaryHeaderCodec
// ---------------------------------------------------------------------------------------

const MAGIC: u32 = 0x4950_4353;

const fn field(name: &'static str, offset: usize, size: usize) -> HeaderField {
    HeaderField { name, offset, size }
}

/// A 40-byte little-endian header with every envelope member and a CRC-32C, as a binary
/// catalogue declares one (the generated `HEADER_LAYOUT` of such a catalogue looks the
/// same); `codegen/tests/header_layout.rs` checks a layout generated from a catalogue.
const LAYOUT: HeaderLayout = HeaderLayout {
    name: "TestHeader",
    size: 40,
    byte_order: ByteOrder::Little,
    magic: Some(FixedField {
        field: field("magic", 0, 4),
        value: MAGIC as u64,
    }),
    version: Some(FixedField {
        field: field("version", 4, 4),
        value: 1,
    }),
    message_type: field("message_type", 8, 4),
    length: field("length", 12, 4),
    length_counts: LengthCounts::HeaderAndPayload,
    correlation_id: Some(field("correlation_id", 16, 8)),
    timestamp: Some(field("timestamp", 24, 8)),
    flags: Some(field("flags", 32, 4)),
    checksum: Some(HeaderChecksum {
        field: field("checksum", 36, 4),
        algorithm: ChecksumAlgorithm::Crc32c,
        covers: ChecksumCoverage::MessageWithChecksumZeroed,
    }),
};

/// The fields of a [`LAYOUT`] header, for building and reading header bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct BinaryHeader {
    magic: u32,
    version: u32,
    message_type: u32,
    length: u32,
    correlation_id: u64,
    timestamp: u64,
    flags: u32,
    checksum: u32,
}

impl BinaryHeader {
    const SIZE: usize = 40;

    fn encode_into(&self, dst: &mut BytesMut) {
        dst.put_u32_le(self.magic);
        dst.put_u32_le(self.version);
        dst.put_u32_le(self.message_type);
        dst.put_u32_le(self.length);
        dst.put_u64_le(self.correlation_id);
        dst.put_u64_le(self.timestamp);
        dst.put_u32_le(self.flags);
        dst.put_u32_le(self.checksum);
    }

    fn to_bytes(self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode_into(&mut buf);
        buf.freeze()
    }

    fn parse(bytes: &[u8]) -> BinaryHeader {
        let u32_at = |at: usize| u32::try_from(LAYOUT.read(field("", at, 4), bytes)).unwrap();
        let u64_at = |at: usize| LAYOUT.read(field("", at, 8), bytes);
        BinaryHeader {
            magic: u32_at(0),
            version: u32_at(4),
            message_type: u32_at(8),
            length: u32_at(12),
            correlation_id: u64_at(16),
            timestamp: u64_at(24),
            flags: u32_at(32),
            checksum: u32_at(36),
        }
    }
}

/// The parsed header of a decoded frame.
fn parsed(frame: &BinaryFrame) -> BinaryHeader {
    assert_eq!(frame.header.len(), BinaryHeader::SIZE);
    BinaryHeader::parse(&frame.header)
}

fn bin_codec(max: usize) -> BinaryHeaderCodec {
    BinaryHeaderCodec::new(LAYOUT, max)
}

fn header(message_type: u32) -> BinaryHeader {
    BinaryHeader {
        magic: MAGIC,
        version: 1,
        message_type,
        length: 0,
        correlation_id: 0x0102_0304_0506_0708,
        timestamp: 1_700_000_000_000_000_000,
        flags: 0b101,
        checksum: 0,
    }
}

fn frame(message_type: u32, payload: &'static [u8]) -> BinaryFrame {
    BinaryFrame {
        header: header(message_type).to_bytes(),
        payload: Bytes::from_static(payload),
    }
}

fn bin_encode(frames: &[BinaryFrame]) -> BytesMut {
    let mut codec = bin_codec(MIB);
    let mut buf = BytesMut::new();
    for frame in frames {
        codec.encode(frame.clone(), &mut buf).unwrap();
    }
    buf
}

/// A raw header with the given fields (no checksum computed).
fn raw_header(magic: u32, version: u32, length: u32) -> BytesMut {
    let mut buf = BytesMut::new();
    BinaryHeader {
        magic,
        version,
        length,
        ..BinaryHeader::default()
    }
    .encode_into(&mut buf);
    buf
}

#[test]
fn bin_header_fields_are_read_where_the_layout_puts_them() {
    let bytes: Vec<u8> = (1..=40).collect();
    assert_eq!(LAYOUT.read(LAYOUT.message_type, &bytes), 0x0C0B_0A09);
    assert_eq!(LAYOUT.read(LAYOUT.length, &bytes), 0x100F_0E0D);
    assert_eq!(
        LAYOUT.read(LAYOUT.correlation_id.unwrap(), &bytes),
        0x1817_1615_1413_1211
    );
    let mut copy = bytes.clone();
    LAYOUT.write(LAYOUT.flags.unwrap(), 0x2423_2221, &mut copy);
    assert_eq!(copy, bytes);
}

#[test]
fn bin_checksum_of_a_known_vector() {
    let mut buf = bin_encode(&[frame(9, b"hello")]);
    // By hand: the header with length 45 and checksum zeroed, then the payload.
    let mut expected_message = Vec::new();
    expected_message.extend_from_slice(&MAGIC.to_le_bytes());
    expected_message.extend_from_slice(&1u32.to_le_bytes());
    expected_message.extend_from_slice(&9u32.to_le_bytes());
    expected_message.extend_from_slice(&45u32.to_le_bytes());
    expected_message.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    expected_message.extend_from_slice(&1_700_000_000_000_000_000u64.to_le_bytes());
    expected_message.extend_from_slice(&0b101u32.to_le_bytes());
    expected_message.extend_from_slice(&[0; 4]);
    expected_message.extend_from_slice(b"hello");
    let crc = crc32c::crc32c(&expected_message);
    expected_message[36..40].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(&buf[..], &expected_message[..]);

    let decoded = bin_codec(MIB).decode(&mut buf).unwrap().unwrap();
    assert_eq!(parsed(&decoded).checksum, crc);
    assert_eq!(parsed(&decoded).length, 45);
    assert_eq!(&decoded.payload[..], b"hello");
}

#[test]
fn bin_round_trip_split_at_every_offset() {
    let frames = [frame(1, b"hello"), frame(2, b""), frame(3, b"\x00\x01\x02")];
    let data = bin_encode(&frames);
    for cut in 0..=data.len() {
        let mut codec = bin_codec(MIB);
        let got = ok_items(feed(&mut codec, &data, &[cut], true));
        assert_eq!(got.len(), 3, "cut at {cut}");
        for (g, f) in got.iter().zip(&frames) {
            assert_eq!(g.payload, f.payload);
            assert_eq!(
                parsed(g).message_type,
                BinaryHeader::parse(&f.header).message_type
            );
            assert_eq!(parsed(g).length as usize, 40 + f.payload.len());
        }
    }
}

#[test]
fn bin_one_byte_at_a_time_and_many_in_one_read() {
    let frames: Vec<BinaryFrame> = (0..50).map(|i| frame(i, b"payload")).collect();
    let data = bin_encode(&frames);
    let mut codec = bin_codec(MIB);
    let got = ok_items(feed(&mut codec, &data, &every_byte(&data), true));
    assert_eq!(got.len(), 50);
    let mut codec = bin_codec(MIB);
    let got2 = ok_items(feed(&mut codec, &data, &[], true));
    assert_eq!(got, got2);
    assert_eq!(parsed(&got[49]).message_type, 49);
}

#[test]
fn bin_bad_magic() {
    let mut buf = raw_header(0xDEAD_BEEF, 1, 40);
    let err = bin_codec(MIB).decode(&mut buf).unwrap_err();
    assert!(matches!(
        err,
        BinaryHeaderError::BadMagic {
            found: 0xDEAD_BEEF,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "bad magic number 0xdeadbeef in `magic` (expected 0x49504353)"
    );
}

#[test]
fn bin_bad_version() {
    let mut buf = raw_header(MAGIC, 3, 40);
    assert!(matches!(
        bin_codec(MIB).decode(&mut buf),
        Err(BinaryHeaderError::UnsupportedVersion {
            field: "version",
            found: 3,
            expected: 1
        })
    ));
}

#[test]
fn bin_length_smaller_than_header() {
    let mut buf = raw_header(MAGIC, 1, 39);
    assert!(matches!(
        bin_codec(MIB).decode(&mut buf),
        Err(BinaryHeaderError::LengthTooSmall {
            declared: 39,
            header: 40
        })
    ));
}

#[test]
fn bin_exactly_max_and_max_plus_one() {
    let payload: &'static [u8] = &[0xAB; 60];
    let mut codec = bin_codec(100);
    let mut buf = BytesMut::new();
    codec.encode(frame(1, payload), &mut buf).unwrap();
    assert_eq!(buf.len(), 100);
    assert_eq!(
        &codec.decode(&mut buf).unwrap().unwrap().payload[..],
        payload
    );

    let big = frame(1, &[0xAB; 61]);
    assert!(matches!(
        codec.encode(big, &mut buf),
        Err(BinaryHeaderError::MessageTooLarge {
            declared: 101,
            max: 100
        })
    ));
    let mut buf = BytesMut::new();
    BinaryHeader {
        length: 101,
        ..header(1)
    }
    .encode_into(&mut buf);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(BinaryHeaderError::MessageTooLarge {
            declared: 101,
            max: 100
        })
    ));
}

#[test]
fn bin_declared_u32_max_does_not_allocate() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&raw_header(MAGIC, 1, 0xFFFF_FFFF));
    let capacity = buf.capacity();
    let err = bin_codec(MIB).decode(&mut buf).unwrap_err();
    assert_eq!(buf.capacity(), capacity);
    assert_eq!(
        err.to_string(),
        "message of 4294967295 bytes, header included, exceeds the limit of 1048576 bytes"
    );
}

#[test]
fn bin_header_is_validated_whole_before_the_payload() {
    // A bad header is reported as soon as its 40 bytes are in, whatever follows.
    let mut buf = raw_header(MAGIC, 1, 0xFFFF_FFFF);
    let capacity = buf.capacity();
    assert!(bin_codec(MIB).decode(&mut buf).is_err());
    assert_eq!(buf.capacity(), capacity);
    // 39 bytes of any header: nothing to say yet.
    let mut buf = BytesMut::from(&raw_header(0, 0, 0)[..39]);
    assert!(bin_codec(MIB).decode(&mut buf).unwrap().is_none());
}

#[test]
fn bin_bad_checksum() {
    let mut buf = bin_encode(&[frame(1, b"hello")]);
    let last = buf.len() - 1;
    buf[last] ^= 0x01;
    let expected = u64::from(u32::from_le_bytes(buf[36..40].try_into().unwrap()));
    match bin_codec(MIB).decode(&mut buf) {
        Err(BinaryHeaderError::ChecksumMismatch {
            expected: e,
            computed,
        }) => {
            assert_eq!(e, expected);
            assert_ne!(computed, expected);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    // A flipped header bit is caught too.
    let mut buf = bin_encode(&[frame(1, b"hello")]);
    buf[20] ^= 0x80;
    assert!(matches!(
        bin_codec(MIB).decode(&mut buf),
        Err(BinaryHeaderError::ChecksumMismatch { .. })
    ));
}

#[test]
fn bin_truncated_frame_at_eof() {
    let data = bin_encode(&[frame(1, b"whole"), frame(2, b"cut short")]);
    let mut codec = bin_codec(MIB);
    let results = feed(&mut codec, &data[..data.len() - 2], &[], false);
    assert_eq!(results.len(), 2);
    assert_eq!(&results[0].as_ref().unwrap().payload[..], b"whole");
    assert!(matches!(
        results[1],
        Err(BinaryHeaderError::Truncated { bytes: 47 })
    ));
    let mut codec = bin_codec(MIB);
    assert!(matches!(
        feed(&mut codec, &data[..10], &[], false)[..],
        [Err(BinaryHeaderError::Truncated { bytes: 10 })]
    ));
}

#[test]
fn bin_encoder_refuses_foreign_magic_or_version_or_a_short_header() {
    let mut codec = bin_codec(MIB);
    let mut buf = BytesMut::new();
    let with = |h: BinaryHeader| BinaryFrame {
        header: h.to_bytes(),
        payload: Bytes::new(),
    };
    assert!(matches!(
        codec.encode(
            with(BinaryHeader {
                magic: 1,
                ..header(1)
            }),
            &mut buf
        ),
        Err(BinaryHeaderError::BadMagic { found: 1, .. })
    ));
    assert!(matches!(
        codec.encode(
            with(BinaryHeader {
                version: 9,
                ..header(1)
            }),
            &mut buf
        ),
        Err(BinaryHeaderError::UnsupportedVersion { found: 9, .. })
    ));
    let short = BinaryFrame {
        header: Bytes::from_static(&[0; 39]),
        payload: Bytes::new(),
    };
    assert!(matches!(
        codec.encode(short, &mut buf),
        Err(BinaryHeaderError::HeaderSize {
            given: 39,
            expected: 40,
            ..
        })
    ));
    assert!(buf.is_empty());
}

// ---------------------------------------------------------------------------------------
// Properties: arbitrary bytes in arbitrary chunkings never panic; valid frames round-trip.
// ---------------------------------------------------------------------------------------

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..2048, 0..16)
}

proptest! {
    #[test]
    fn lp_arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in cuts(),
        max in 0usize..300,
    ) {
        let mut codec = LengthPrefixedCodec::new(U32_LE, max);
        let _ = feed(&mut codec, &data, &cuts, true);
    }

    #[test]
    fn lp_valid_frames_round_trip(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..10),
        cuts in cuts(),
    ) {
        let mut codec = LengthPrefixedCodec::new(U32_LE, 200);
        let mut buf = BytesMut::new();
        for frame in &frames {
            codec.encode(&frame[..], &mut buf).unwrap();
        }
        let got: Vec<Vec<u8>> = ok_items(feed(&mut codec, &buf, &cuts, true))
            .into_iter()
            .map(|b| b.to_vec())
            .collect();
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn nl_arbitrary_bytes_never_panic(
        data in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..512),
        cuts in cuts(),
        max in 0usize..64,
    ) {
        let mut codec = NewlineCodec::new(max);
        // Keep decoding after errors: the recovery path must not panic either.
        for line in feed(&mut codec, &data, &cuts, false).into_iter().flatten() {
            prop_assert!(!line.is_empty() && line.len() <= max && !line.contains('\n'));
        }
    }

    #[test]
    fn nl_valid_lines_round_trip(
        lines in proptest::collection::vec("[^\n]{0,40}", 0..10),
        cuts in cuts(),
    ) {
        let lines: Vec<String> = lines
            .into_iter()
            .filter(|l| !l.is_empty() && !l.ends_with('\r') && l.len() <= 80)
            .collect();
        let mut codec = NewlineCodec::new(80);
        let mut buf = BytesMut::new();
        for line in &lines {
            codec.encode(line, &mut buf).unwrap();
        }
        let got = lines_of(feed(&mut codec, &buf, &cuts, true));
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn bin_arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in cuts(),
        max in 0usize..300,
        valid_prefix in any::<bool>(),
    ) {
        let mut data = data;
        if valid_prefix && data.len() >= 16 {
            // Reach past the magic and version checks often.
            data[..4].copy_from_slice(&MAGIC.to_le_bytes());
            data[4..8].copy_from_slice(&1u32.to_le_bytes());
            let len = u32::try_from(40 + data.len() % 100).unwrap();
            data[12..16].copy_from_slice(&len.to_le_bytes());
        }
        let mut codec = bin_codec(max);
        let _ = feed(&mut codec, &data, &cuts, true);
    }

    #[test]
    fn bin_valid_frames_round_trip(
        frames in proptest::collection::vec(
            (any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>(),
             proptest::collection::vec(any::<u8>(), 0..200)),
            0..8),
        cuts in cuts(),
    ) {
        let frames: Vec<BinaryFrame> = frames
            .into_iter()
            .map(|(message_type, correlation_id, timestamp, flags, payload)| BinaryFrame {
                header: BinaryHeader {
                    magic: MAGIC,
                    version: 1,
                    message_type,
                    correlation_id,
                    timestamp,
                    flags,
                    ..BinaryHeader::default()
                }
                .to_bytes(),
                payload: Bytes::from(payload),
            })
            .collect();
        let mut codec = bin_codec(240);
        let mut buf = BytesMut::new();
        for frame in &frames {
            codec.encode(frame.clone(), &mut buf).unwrap();
        }
        let got = ok_items(feed(&mut codec, &buf, &cuts, true));
        prop_assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(&g.payload, &f.payload);
            let got = parsed(g);
            prop_assert_eq!(got.length as usize, 40 + f.payload.len());
            let checksum = LAYOUT.checksum.unwrap().compute(&g.header, &g.payload);
            prop_assert_eq!(u64::from(got.checksum), checksum);
            let mut expected = BinaryHeader::parse(&f.header);
            expected.length = got.length;
            expected.checksum = got.checksum;
            prop_assert_eq!(got, expected);
        }
    }
}

// ---------------------------------------------------------------------------------------
// End to end over a Unix socket pair with `Framed`: 1000 frames each way.
// ---------------------------------------------------------------------------------------

const N: usize = 1000;

/// Both ends send `N` items while receiving the other's `N`; returns what each received.
async fn exchange<C, S, R, E>(codec: C, make: impl Fn(usize, bool) -> S + Copy) -> (Vec<R>, Vec<R>)
where
    C: Decoder<Item = R, Error = E> + Encoder<S, Error = E> + Clone + Unpin,
    E: std::fmt::Debug + From<std::io::Error>,
{
    let (a, b) = tokio::net::UnixStream::pair().unwrap();
    let run = |stream, side: bool| {
        let framed = Framed::new(stream, codec.clone());
        async move {
            let (mut sink, mut stream) = framed.split();
            let send = async {
                for i in 0..N {
                    sink.send(make(i, side)).await.unwrap();
                }
                sink.flush().await.unwrap();
            };
            let receive = async {
                let mut got = Vec::with_capacity(N);
                while got.len() < N {
                    got.push(stream.next().await.unwrap().unwrap());
                }
                got
            };
            let ((), got) = tokio::join!(send, receive);
            got
        }
    };
    tokio::join!(run(a, true), run(b, false))
}

#[tokio::test]
async fn e2e_length_prefixed_over_unix_socket() {
    let make = |i: usize, side: bool| Bytes::from(format!("{side}:{i}:{}", "x".repeat(i % 300)));
    let (at_a, at_b) = exchange(LengthPrefixedCodec::new(U32_LE, MIB), make).await;
    for i in 0..N {
        assert_eq!(at_a[i], make(i, false));
        assert_eq!(at_b[i], make(i, true));
    }
}

#[tokio::test]
async fn e2e_newline_over_unix_socket() {
    let make = |i: usize, side: bool| format!("{{\"side\":{side},\"seq\":{i}}}");
    let (at_a, at_b) = exchange(NewlineCodec::new(1024), make).await;
    for i in 0..N {
        assert_eq!(at_a[i], make(i, false));
        assert_eq!(at_b[i], make(i, true));
    }
}

#[tokio::test]
async fn e2e_binary_header_over_unix_socket() {
    let make = |i: usize, side: bool| BinaryFrame {
        header: BinaryHeader {
            magic: MAGIC,
            version: 1,
            message_type: u32::from(side),
            correlation_id: i as u64,
            ..BinaryHeader::default()
        }
        .to_bytes(),
        payload: Bytes::from(vec![u8::try_from(i % 256).unwrap(); i % 500]),
    };
    let (at_a, at_b) = exchange(bin_codec(MIB), make).await;
    for i in 0..N {
        for (got, side) in [(&at_a[i], false), (&at_b[i], true)] {
            let sent = make(i, side);
            assert_eq!(got.payload, sent.payload);
            assert_eq!(parsed(got).correlation_id, i as u64);
            assert_eq!(parsed(got).message_type, u32::from(side));
        }
    }
}

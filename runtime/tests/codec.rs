//! The framing codecs: frames split anywhere decode the same, limits are enforced before
//! any allocation, malformed input is an error value (never a panic), and the newline codec
//! recovers after a bad line.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use ipcspec_runtime::codec::{
    BinaryFrame, BinaryHeader, BinaryHeaderCodec, BinaryHeaderError, LengthPrefixedCodec,
    LengthPrefixedError, NewlineCodec, NewlineError,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder, Framed};

const MIB: usize = 1 << 20;

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
    let mut codec = LengthPrefixedCodec::new(MIB);
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
fn lp_one_byte_at_a_time() {
    let frames: [&[u8]; 3] = [b"first", b"", b"third frame"];
    let data = lp_encode(&frames);
    let mut codec = LengthPrefixedCodec::new(MIB);
    let got = ok_items(feed(&mut codec, &data, &every_byte(&data), true));
    assert_eq!(got, frames.map(BytesMut::from));
}

#[test]
fn lp_many_frames_in_one_read() {
    let bodies: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; usize::from(i)]).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let mut buf = lp_encode(&refs);
    let mut codec = LengthPrefixedCodec::new(MIB);
    for body in &bodies {
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &body[..]);
    }
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.is_empty());
}

#[test]
fn lp_zero_length_frame_is_an_empty_body() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    let mut codec = LengthPrefixedCodec::new(0);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap().len(), 0);
    assert!(buf.is_empty());
}

#[test]
fn lp_exactly_max_is_accepted() {
    let body = [7u8; 100];
    let mut codec = LengthPrefixedCodec::new(100);
    let mut buf = BytesMut::new();
    codec.encode(&body[..], &mut buf).unwrap();
    assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &body[..]);
}

#[test]
fn lp_max_plus_one_is_rejected_both_ways() {
    let mut codec = LengthPrefixedCodec::new(100);
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
    let mut codec = LengthPrefixedCodec::new(MIB);
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
    let mut codec = LengthPrefixedCodec::new(MIB);
    let results = feed(&mut codec, cut, &[], false);
    assert_eq!(results.len(), 2);
    assert_eq!(&results[0].as_ref().unwrap()[..], b"complete");
    assert!(matches!(
        results[1],
        Err(LengthPrefixedError::Truncated { bytes: 10 })
    ));

    // Inside the prefix.
    let mut codec = LengthPrefixedCodec::new(MIB);
    let results = feed(&mut codec, &[5, 0], &[], false);
    assert!(matches!(
        results[..],
        [Err(LengthPrefixedError::Truncated { bytes: 2 })]
    ));

    // Clean end.
    let mut codec = LengthPrefixedCodec::new(MIB);
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

fn bin_codec(max: usize) -> BinaryHeaderCodec {
    BinaryHeaderCodec::new(MAGIC, [1, 2], max)
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
        header: header(message_type),
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
fn bin_header_layout() {
    assert_eq!(BinaryHeader::SIZE, 40);
    let h = BinaryHeader {
        magic: 0x0403_0201,
        version: 0x0807_0605,
        message_type: 0x0C0B_0A09,
        length: 0x100F_0E0D,
        correlation_id: 0x1817_1615_1413_1211,
        timestamp: 0x2019_1817_1615_1413,
        flags: 0x2423_2221,
        checksum: 0x2827_2625,
    };
    let bytes = h.to_bytes();
    assert_eq!(bytes[..16], (1..=16).collect::<Vec<u8>>()[..]);
    assert_eq!(
        bytes[16..24],
        [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
    );
    assert_eq!(
        bytes[24..32],
        [0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x20]
    );
    assert_eq!(
        bytes[32..40],
        [0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28]
    );
    assert_eq!(BinaryHeader::decode_from(&bytes), Some(h));
    assert_eq!(BinaryHeader::decode_from(&bytes[..39]), None);
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
    assert_eq!(decoded.header.checksum, crc);
    assert_eq!(decoded.header.length, 45);
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
            assert_eq!(g.header.message_type, f.header.message_type);
            assert_eq!(g.header.length as usize, 40 + f.payload.len());
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
    assert_eq!(got[49].header.message_type, 49);
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
        "bad magic number 0xdeadbeef (expected 0x49504353)"
    );
}

#[test]
fn bin_bad_version() {
    let mut buf = raw_header(MAGIC, 3, 40);
    assert!(matches!(
        bin_codec(MIB).decode(&mut buf),
        Err(BinaryHeaderError::UnsupportedVersion { found: 3 })
    ));
    // Version 2 is accepted by this codec.
    let mut f = frame(1, b"v2");
    f.header.version = 2;
    let mut buf = BytesMut::new();
    bin_codec(MIB).encode(f, &mut buf).unwrap();
    assert_eq!(
        bin_codec(MIB)
            .decode(&mut buf)
            .unwrap()
            .unwrap()
            .header
            .version,
        2
    );
}

#[test]
fn bin_length_smaller_than_header() {
    let mut buf = raw_header(MAGIC, 1, 39);
    assert!(matches!(
        bin_codec(MIB).decode(&mut buf),
        Err(BinaryHeaderError::LengthTooSmall { declared: 39 })
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

    let mut big = frame(1, &[0xAB; 61]);
    assert!(matches!(
        codec.encode(big.clone(), &mut buf),
        Err(BinaryHeaderError::MessageTooLarge {
            declared: 101,
            max: 100
        })
    ));
    big.header.length = 101;
    let mut buf = BytesMut::new();
    big.header.encode_into(&mut buf);
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
        "message of 4294967295 bytes exceeds the limit of 1048576 bytes"
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
    let expected = u32::from_le_bytes(buf[36..40].try_into().unwrap());
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
fn bin_encoder_refuses_foreign_magic_or_version() {
    let mut codec = bin_codec(MIB);
    let mut buf = BytesMut::new();
    let mut f = frame(1, b"");
    f.header.magic = 1;
    assert!(matches!(
        codec.encode(f, &mut buf),
        Err(BinaryHeaderError::BadMagic { found: 1, .. })
    ));
    let mut f = frame(1, b"");
    f.header.version = 9;
    assert!(matches!(
        codec.encode(f, &mut buf),
        Err(BinaryHeaderError::UnsupportedVersion { found: 9 })
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
        let mut codec = LengthPrefixedCodec::new(max);
        let _ = feed(&mut codec, &data, &cuts, true);
    }

    #[test]
    fn lp_valid_frames_round_trip(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..10),
        cuts in cuts(),
    ) {
        let mut codec = LengthPrefixedCodec::new(200);
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
                    version: 2,
                    message_type,
                    correlation_id,
                    timestamp,
                    flags,
                    ..BinaryHeader::default()
                },
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
            prop_assert_eq!(g.header.length as usize, 40 + f.payload.len());
            prop_assert_eq!(g.header.checksum, g.header.compute_checksum(&g.payload));
            let mut expected = f.header;
            expected.length = g.header.length;
            expected.checksum = g.header.checksum;
            prop_assert_eq!(g.header, expected);
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
    let (at_a, at_b) = exchange(LengthPrefixedCodec::new(MIB), make).await;
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
        },
        payload: Bytes::from(vec![u8::try_from(i % 256).unwrap(); i % 500]),
    };
    let (at_a, at_b) = exchange(bin_codec(MIB), make).await;
    for i in 0..N {
        for (got, side) in [(&at_a[i], false), (&at_b[i], true)] {
            let sent = make(i, side);
            assert_eq!(got.payload, sent.payload);
            assert_eq!(got.header.correlation_id, i as u64);
            assert_eq!(got.header.message_type, u32::from(side));
        }
    }
}

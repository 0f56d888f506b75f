//! The runtime's binary-header codec, built from the `HEADER_LAYOUT` and `WIRE` generated
//! for `codegen/tests/fixtures/altheader.json`, a header unlike VexFS's (a u16 magic
//! first, a u16 length counting the payload alone, a u8 version, the type last, no
//! checksum). Written into the fixtures' crate by `codegen/tests/rust_emitter.rs`.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use bytes::{Bytes, BytesMut};
use ipcspec_generated::altheader::{AH_MAGIC, AH_VERSION, HEADER_LAYOUT, Header, Ping, WIRE};
use ipcspec_runtime::binary::Binary;
use ipcspec_runtime::codec::{
    BinaryFrame, BinaryHeaderCodec, BinaryHeaderError, FrameEvent, Framing, LengthCounts,
};
use tokio_util::codec::{Decoder, Encoder};

fn codec() -> BinaryHeaderCodec {
    let Framing::BinaryHeader(layout) = WIRE.framing else {
        panic!(
            "altheader's profile is not a binary framing: {:?}",
            WIRE.framing
        );
    };
    BinaryHeaderCodec::new(*layout, WIRE.limits.max_message_bytes)
}

/// The header of a message of type `kind`, built with the generated header type.
fn header(kind: u16) -> Header {
    Header {
        magic: AH_MAGIC,
        size: 0,
        version: AH_VERSION,
        reserved: 0,
        kind,
    }
}

fn frame(kind: u16, seq: u32) -> BinaryFrame {
    BinaryFrame {
        header: Bytes::from(header(kind).to_bytes().unwrap()),
        payload: Bytes::from(Ping { seq }.to_bytes().unwrap()),
    }
}

fn encode(frames: &[BinaryFrame]) -> BytesMut {
    let mut codec = codec();
    let mut buf = BytesMut::new();
    for frame in frames {
        codec.encode(frame.clone(), &mut buf).unwrap();
    }
    buf
}

#[test]
fn the_generated_layout_is_the_catalogues() {
    assert_eq!(HEADER_LAYOUT.size, 8);
    assert_eq!(
        (HEADER_LAYOUT.length.offset, HEADER_LAYOUT.length.size),
        (2, 2)
    );
    assert_eq!(
        (
            HEADER_LAYOUT.message_type.offset,
            HEADER_LAYOUT.message_type.size
        ),
        (6, 2)
    );
    assert_eq!(HEADER_LAYOUT.length_counts, LengthCounts::Payload);
    assert_eq!(HEADER_LAYOUT.version.unwrap().field.size, 1);
    assert!(HEADER_LAYOUT.checksum.is_none());
    // 70000 in the catalogue, but a u16 payload length cannot declare more than this.
    assert_eq!(codec().max_message_length(), 65_535 + 8);
}

#[test]
fn frames_round_trip_split_anywhere_and_decode_with_the_generated_types() {
    let frames = [frame(1, 7), frame(2, 8), frame(1, 0xFFFF_FFFF)];
    let data = encode(&frames);
    assert_eq!(data.len(), 3 * 12);
    // The length counts the payload alone, at offset 2; the magic leads, little-endian.
    assert_eq!(&data[..8], &[0x1E, 0xA1, 4, 0, 3, 0, 1, 0]);
    for cut in 0..=data.len() {
        let mut codec = codec();
        let mut buf = BytesMut::from(&data[..cut]);
        let mut got = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            got.push(frame);
        }
        buf.extend_from_slice(&data[cut..]);
        while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
            got.push(frame);
        }
        assert_eq!(got.len(), 3, "cut at {cut}");
        for (got, sent) in got.iter().zip(&frames) {
            let decoded = Header::from_bytes(&got.header).unwrap();
            assert_eq!(
                decoded,
                Header {
                    size: 4,
                    ..Header::from_bytes(&sent.header).unwrap()
                }
            );
            assert_eq!(
                Ping::from_bytes(&got.payload).unwrap(),
                Ping::from_bytes(&sent.payload).unwrap()
            );
            assert_eq!(
                HEADER_LAYOUT.read(HEADER_LAYOUT.message_type, &got.header),
                u64::from(decoded.kind)
            );
        }
    }
    // The server's framing (the profile's codec) yields the same messages, whole.
    let mut codec = WIRE.codec();
    let mut buf = data.clone();
    let Ok(Some(FrameEvent::Frame(message))) = codec.decode(&mut buf) else {
        panic!("the profile's codec did not decode the first message");
    };
    assert_eq!(&message[..], &data[..12]);
}

#[test]
fn a_foreign_magic_version_length_or_truncation_is_refused_precisely() {
    let good = encode(&[frame(1, 7)]);

    let mut bad = good.clone();
    bad[0] = 0;
    let error = codec().decode(&mut bad).unwrap_err();
    assert!(matches!(
        error,
        BinaryHeaderError::BadMagic {
            field: "magic",
            found: 0xA100,
            expected: 0xA11E
        }
    ));
    assert_eq!(
        error.to_string(),
        "bad magic number 0xa100 in `magic` (expected 0xa11e)"
    );

    let mut bad = good.clone();
    bad[4] = 9;
    let error = codec().decode(&mut bad).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unsupported protocol version 9 in `version` (expected 3)"
    );

    // A length above the limit is refused from the header alone, before any allocation.
    let mut codec_small = BinaryHeaderCodec::new(HEADER_LAYOUT, 100);
    let mut bad = BytesMut::with_capacity(16);
    bad.extend_from_slice(&[0x1E, 0xA1, 0xFF, 0xFF, 3, 0, 1, 0]);
    let capacity = bad.capacity();
    let error = codec_small.decode(&mut bad).unwrap_err();
    assert_eq!(bad.capacity(), capacity);
    assert_eq!(
        error.to_string(),
        "message of 65543 bytes, header included, exceeds the limit of 100 bytes"
    );

    let mut cut = BytesMut::from(&good[..good.len() - 1]);
    let mut codec = codec();
    assert!(codec.decode(&mut cut).unwrap().is_none());
    let error = codec.decode_eof(&mut cut).unwrap_err();
    assert!(matches!(error, BinaryHeaderError::Truncated { bytes: 11 }));

    // The encoder refuses what a receiver would refuse.
    let mut out = BytesMut::new();
    let foreign = BinaryFrame {
        header: Bytes::from(
            Header {
                version: 4,
                ..header(1)
            }
            .to_bytes()
            .unwrap(),
        ),
        payload: Bytes::new(),
    };
    assert!(matches!(
        codec.encode(foreign, &mut out),
        Err(BinaryHeaderError::UnsupportedVersion {
            found: 4,
            expected: 3,
            ..
        })
    ));
    let oversized = BinaryFrame {
        header: Bytes::from(header(1).to_bytes().unwrap()),
        payload: Bytes::from(vec![0; 65_536]),
    };
    assert!(matches!(
        codec.encode(oversized, &mut out),
        Err(BinaryHeaderError::MessageTooLarge {
            declared: 65_544,
            max: 65_543
        })
    ));
    assert!(out.is_empty());
}

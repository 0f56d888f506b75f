//! The binary codec: round trips, and every malformed input an error with a precise path
//! and offset, never a panic or an allocation the input does not back.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use ipcspec_runtime::binary::{
    Binary, DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind, Reader, Writer,
};

/// What the emitter generates for a C-layout struct with a fixed part and tails:
/// `{ id: u64, flag: bool, pad: [u8; 3], count: u32, pair: Pair }` then `name`, `pairs`.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    id: u64,
    flag: bool,
    pad: [u8; 3],
    name_len: u32,
    pairs_count: u32,
    name: String,
    pairs: Vec<Pair>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pair {
    key: u16,
    value: i16,
}

impl Binary for Pair {
    const NAME: &'static str = "Pair";
    const SIZE: usize = 4;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        writer.write("key", &self.key)?;
        writer.write("value", &self.value)
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = reader.read("key")?;
        let value = reader.read("value")?;
        Ok(Pair { key, value })
    }
}

impl Binary for Record {
    const NAME: &'static str = "Record";
    const SIZE: usize = 20;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        writer.write("id", &self.id)?;
        writer.write("flag", &self.flag)?;
        writer.padding("pad", &self.pad)?;
        writer.write("name_len", &self.name_len)?;
        writer.write("pairs_count", &self.pairs_count)?;
        writer.string("name", &self.name, u64::from(self.name_len))?;
        writer.list("pairs", &self.pairs, u64::from(self.pairs_count))
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = reader.read("id")?;
        let flag = reader.read("flag")?;
        let pad = reader.padding("pad")?;
        let name_len = reader.read("name_len")?;
        let pairs_count = reader.read("pairs_count")?;
        let name = reader.string("name", u64::from(name_len))?;
        let pairs = reader.list("pairs", u64::from(pairs_count))?;
        Ok(Record {
            id,
            flag,
            pad,
            name_len,
            pairs_count,
            name,
            pairs,
        })
    }
}

fn sample() -> Record {
    Record {
        id: 0x0102_0304_0506_0708,
        flag: true,
        pad: [0; 3],
        name_len: 2,
        pairs_count: 2,
        name: "hx".to_owned(),
        pairs: vec![
            Pair { key: 1, value: -1 },
            Pair {
                key: 0xABCD,
                value: 2,
            },
        ],
    }
}

#[test]
fn round_trip_is_little_endian_in_layout_order() {
    let record = sample();
    let bytes = record.to_bytes().unwrap();
    assert_eq!(&bytes[..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(bytes[8], 1);
    assert_eq!(&bytes[12..16], &[2, 0, 0, 0]);
    assert_eq!(&bytes[20..22], b"hx");
    assert_eq!(&bytes[22..], &[1, 0, 0xFF, 0xFF, 0xCD, 0xAB, 2, 0]);
    assert_eq!(Record::from_bytes(&bytes).unwrap(), record);
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample().to_bytes().unwrap();
    for len in 0..bytes.len() {
        let error = Record::from_bytes(&bytes[..len]).unwrap_err();
        assert!(
            matches!(error.kind(), DecodeErrorKind::Truncated { .. }),
            "{len}: {error}"
        );
    }
    let error = Record::from_bytes(&bytes[..5]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Record.id: at byte 0: needs 8 byte(s) but only 5 remain"
    );
    let error = Record::from_bytes(&bytes[..25]).unwrap_err();
    assert_eq!(error.path(), "Record.pairs");
    assert_eq!(error.offset(), 22);
}

#[test]
fn hostile_counts_fail_before_allocating() {
    let mut record = sample();
    record.pairs_count = u32::MAX;
    // Encoding refuses the disagreement between the count and the list...
    let error = record.to_bytes().unwrap_err();
    assert_eq!(
        error.kind(),
        &EncodeErrorKind::LengthMismatch {
            declared: u64::from(u32::MAX),
            actual: 2
        }
    );
    assert_eq!(error.path(), "Record.pairs");
    // ...and decoding checks a forged count against the input before reserving memory.
    let mut bytes = sample().to_bytes().unwrap();
    bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let error = Record::from_bytes(&bytes).unwrap_err();
    assert_eq!(
        error.kind(),
        &DecodeErrorKind::Truncated {
            needed: u32::MAX as usize * 4,
            available: 8
        }
    );
    let mut reader = Reader::new(&[]);
    let error = reader.list::<Pair>("huge", u64::MAX).unwrap_err();
    assert!(
        matches!(error.kind(), DecodeErrorKind::LengthOverflow { .. }),
        "{error}"
    );
}

#[test]
fn invalid_values_are_rejected_with_their_field() {
    let good = sample().to_bytes().unwrap();

    let mut bad_bool = good.clone();
    bad_bool[8] = 2;
    let error = Record::from_bytes(&bad_bool).unwrap_err();
    assert_eq!(error.kind(), &DecodeErrorKind::InvalidBool { value: 2 });
    assert_eq!((error.path().as_str(), error.offset()), ("Record.flag", 8));

    let mut bad_padding = good.clone();
    bad_padding[10] = 1;
    let error = Record::from_bytes(&bad_padding).unwrap_err();
    assert_eq!(error.kind(), &DecodeErrorKind::NonZeroPadding);
    assert_eq!((error.path().as_str(), error.offset()), ("Record.pad", 9));

    let mut bad_utf8 = good.clone();
    bad_utf8[20] = 0xFF;
    let error = Record::from_bytes(&bad_utf8).unwrap_err();
    assert!(
        matches!(error.kind(), DecodeErrorKind::InvalidUtf8(_)),
        "{error}"
    );

    let mut trailing = good;
    trailing.push(0);
    let error = Record::from_bytes(&trailing).unwrap_err();
    assert_eq!(error.kind(), &DecodeErrorKind::TrailingBytes { count: 1 });

    let mut record = sample();
    record.pad = [0, 0, 1];
    assert_eq!(
        record.to_bytes().unwrap_err().kind(),
        &EncodeErrorKind::NonZeroPadding
    );
}

#[test]
fn time_values_are_u64_nanoseconds() {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(1_500_000_000_123_456_789).unwrap();
    let bytes = at.to_bytes().unwrap();
    assert_eq!(bytes, 1_500_000_000_123_456_789_u64.to_le_bytes());
    assert_eq!(time::OffsetDateTime::from_bytes(&bytes).unwrap(), at);
    let before_epoch = time::OffsetDateTime::from_unix_timestamp(-1).unwrap();
    assert!(matches!(
        before_epoch.to_bytes().unwrap_err().kind(),
        EncodeErrorKind::OutOfRange(_)
    ));
    let uptime = std::time::Duration::from_millis(1500);
    assert_eq!(
        std::time::Duration::from_bytes(&uptime.to_bytes().unwrap()).unwrap(),
        uptime
    );
}

#[test]
fn arrays_and_uuids_are_their_bytes_in_order() {
    let id = uuid::Uuid::from_u128(0x0011_2233_4455_6677_8899_AABB_CCDD_EEFF);
    assert_eq!(id.to_bytes().unwrap()[..2], [0x00, 0x11]);
    let array: [u16; 3] = [1, 2, 0x0300];
    assert_eq!(array.to_bytes().unwrap(), [1, 0, 2, 0, 0, 3]);
    let error = <[u16; 3]>::from_bytes(&[1, 0, 2]).unwrap_err();
    assert!(
        matches!(
            error.kind(),
            DecodeErrorKind::Truncated {
                needed: 6,
                available: 3
            }
        ),
        "{error}"
    );
}

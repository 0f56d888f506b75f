//! [`Binary`] for the primitives that may appear in a C layout.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Binary, DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind, Reader, Writer};

macro_rules! little_endian {
    ($($ty:ty),*) => {$(
        impl Binary for $ty {
            const NAME: &'static str = stringify!($ty);
            const SIZE: usize = size_of::<$ty>();

            fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
                writer.put(&self.to_le_bytes());
                Ok(())
            }

            fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                reader.take_array().map(<$ty>::from_le_bytes)
            }
        }
    )*};
}

little_endian!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// One byte, 0 or 1; anything else is rejected rather than read as `true`.
impl Binary for bool {
    const NAME: &'static str = "bool";
    const SIZE: usize = 1;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        writer.put(&[u8::from(*self)]);
        Ok(())
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = reader.position();
        match reader.take_array::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            [value] => Err(DecodeError::new(DecodeErrorKind::InvalidBool { value }, at)),
        }
    }
}

/// The 16 bytes in RFC 4122 (big-endian field) order, as `Uuid::as_bytes` holds them.
impl Binary for Uuid {
    const NAME: &'static str = "uuid";
    const SIZE: usize = 16;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        writer.put(self.as_bytes());
        Ok(())
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.take_array().map(Uuid::from_bytes)
    }
}

/// u64 nanoseconds since the Unix epoch.
impl Binary for OffsetDateTime {
    const NAME: &'static str = "timestamp";
    const SIZE: usize = 8;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        let nanos = u64::try_from(self.unix_timestamp_nanos()).map_err(|_| {
            EncodeError::new(EncodeErrorKind::OutOfRange(
                "a binary timestamp is u64 nanoseconds since 1970-01-01T00:00:00Z",
            ))
        })?;
        nanos.encode_to(writer)
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = reader.position();
        let nanos = u64::decode_from(reader)?;
        // Every u64 of nanoseconds (up to year 2554) is a valid date; map the error anyway
        // rather than trust that.
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::OutOfRange("timestamp beyond the supported dates"),
                at,
            )
        })
    }
}

/// u64 nanoseconds.
impl Binary for Duration {
    const NAME: &'static str = "duration";
    const SIZE: usize = 8;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        let nanos = u64::try_from(self.as_nanos()).map_err(|_| {
            EncodeError::new(EncodeErrorKind::OutOfRange(
                "a binary duration is at most u64::MAX nanoseconds",
            ))
        })?;
        nanos.encode_to(writer)
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        u64::decode_from(reader).map(Duration::from_nanos)
    }
}

/// Elements in order, no padding between them (C arrays have none).
impl<T: Binary, const N: usize> Binary for [T; N] {
    const NAME: &'static str = "array";
    const SIZE: usize = T::SIZE * N;

    fn encode_to(&self, writer: &mut Writer) -> Result<(), EncodeError> {
        for (index, element) in self.iter().enumerate() {
            element.encode_to(writer).map_err(|e| e.at_index(index))?;
        }
        Ok(())
    }

    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = reader.position();
        // Check the whole array up front so a short input fails before any allocation.
        if reader.remaining() < Self::SIZE {
            return Err(reader.error(DecodeErrorKind::Truncated {
                needed: Self::SIZE,
                available: reader.remaining(),
            }));
        }
        let mut out = Vec::with_capacity(N);
        for index in 0..N {
            out.push(T::decode_from(reader).map_err(|e| e.at_index(index))?);
        }
        // `out` holds exactly N elements, so the conversion cannot fail.
        out.try_into().map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::Truncated {
                    needed: Self::SIZE,
                    available: 0,
                },
                at,
            )
        })
    }
}

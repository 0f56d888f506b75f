//! [`ByteOrder`]: how the unsigned integers of a length prefix or a binary header are
//! laid out, and reading or writing one of 1, 2, 4 or 8 bytes in it.

/// Byte order of a multi-byte integer on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl ByteOrder {
    /// The unsigned integer in `bytes` (1 to 8 of them).
    ///
    /// # Panics
    ///
    /// When `bytes` is longer than 8: callers pass field sizes checked when their layout
    /// was made, never lengths read from the wire.
    #[must_use]
    pub fn read_uint(self, bytes: &[u8]) -> u64 {
        let mut buf = [0u8; 8];
        match self {
            ByteOrder::Little => {
                buf[..bytes.len()].copy_from_slice(bytes);
                u64::from_le_bytes(buf)
            }
            ByteOrder::Big => {
                buf[8 - bytes.len()..].copy_from_slice(bytes);
                u64::from_be_bytes(buf)
            }
        }
    }

    /// Writes the low `out.len()` bytes (1 to 8) of `value` into `out`.
    ///
    /// # Panics
    ///
    /// When `out` is longer than 8, as [`Self::read_uint`].
    pub fn write_uint(self, value: u64, out: &mut [u8]) {
        let size = out.len();
        match self {
            ByteOrder::Little => out.copy_from_slice(&value.to_le_bytes()[..size]),
            ByteOrder::Big => out.copy_from_slice(&value.to_be_bytes()[8 - size..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteOrder;

    #[test]
    fn reads_and_writes_each_width_in_both_orders() {
        for size in [1usize, 2, 4, 8] {
            let value = 0x0102_0304_0506_0708u64 & (u64::MAX >> (64 - 8 * size));
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let mut out = vec![0; size];
                order.write_uint(value, &mut out);
                assert_eq!(order.read_uint(&out), value);
            }
        }
        let mut out = [0; 2];
        ByteOrder::Big.write_uint(0x0102, &mut out);
        assert_eq!(out, [1, 2]);
        ByteOrder::Little.write_uint(0x0102, &mut out);
        assert_eq!(out, [2, 1]);
    }
}

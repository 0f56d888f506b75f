//! Binary encoding from the IR (`codegen/WIRE-MAPPING.md`, "Binary"), independent of
//! the generated Rust codecs.

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use super::resolve;
use crate::ir::{Module, PrimitiveType, Struct, Ty, TypeKind};

// ---------------------------------------------------------------------------------------
// Binary encoding from the IR (`codegen/WIRE-MAPPING.md`, "Binary")

/// Appends the binary form of `value` (of type `ty`) to `out`.
pub(super) fn encode(m: &Module, ty: &Ty, value: &Value, out: &mut Vec<u8>) -> anyhow::Result<()> {
    match ty {
        Ty::Prim(p) => encode_prim(*p, value, out),
        Ty::Array(item, n) => {
            let items = value.as_array().context("an array expected")?;
            ensure!(items.len() as u64 == *n, "an array of {n} items expected");
            for v in items {
                encode(m, item, v, out)?;
            }
            Ok(())
        }
        Ty::List(_) | Ty::Map(_) => bail!("a list or map outside a tail field has no binary form"),
        Ty::Named(id) => match &m.ty(*id).kind {
            TypeKind::Struct(s) => encode_struct(m, s, value, out),
            TypeKind::IntEnum(e) => encode_prim(e.repr, value, out),
            TypeKind::Alias(a) => encode(m, &a.ty, value, out),
            TypeKind::Enum(_) | TypeKind::Union(_) => {
                bail!("`{}` has no binary form", m.ty(*id).name)
            }
        },
    }
}

pub(super) fn encode_struct(
    m: &Module,
    s: &Struct,
    value: &Value,
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let layout = s.c_layout.as_ref().context("a struct without C layout")?;
    let object = value.as_object().context("an object expected")?;
    for key in object.keys() {
        ensure!(
            s.fields.iter().any(|f| &f.wire == key),
            "undeclared key `{key}`"
        );
    }
    let mut fixed = vec![0u8; usize::try_from(layout.size)?];
    for f in s.fields.iter().filter(|f| f.length_field.is_none()) {
        let v = object
            .get(&f.wire)
            .with_context(|| format!("field `{}` missing", f.wire))?;
        let place = layout
            .fields
            .iter()
            .find(|c| c.name == f.wire)
            .with_context(|| format!("field `{}` has no place in the layout", f.wire))?;
        let mut bytes = Vec::new();
        encode(m, &f.ty, v, &mut bytes)?;
        ensure!(
            bytes.len() as u64 == place.size,
            "field `{}` encodes to {} bytes, its place has {}",
            f.wire,
            bytes.len(),
            place.size
        );
        let start = usize::try_from(place.offset)?;
        fixed[start..start + bytes.len()].copy_from_slice(&bytes);
    }
    out.extend_from_slice(&fixed);
    for f in s.fields.iter() {
        let Some(count_field) = &f.length_field else {
            continue;
        };
        let v = object
            .get(&f.wire)
            .with_context(|| format!("tail `{}` missing", f.wire))?;
        let declared = object
            .get(count_field)
            .and_then(Value::as_u64)
            .with_context(|| format!("count `{count_field}` missing"))?;
        let count = encode_tail(m, &f.ty, v, out)?;
        ensure!(
            count == declared,
            "`{count_field}` says {declared}, `{}` has {count}",
            f.wire
        );
    }
    Ok(())
}

/// Appends a tail field; returns its count (bytes, or elements for lists).
pub(super) fn encode_tail(
    m: &Module,
    ty: &Ty,
    value: &Value,
    out: &mut Vec<u8>,
) -> anyhow::Result<u64> {
    match resolve(m, ty) {
        Ty::Prim(PrimitiveType::String) => {
            let s = value.as_str().context("a string expected")?;
            out.extend_from_slice(s.as_bytes());
            Ok(s.len() as u64)
        }
        Ty::Prim(PrimitiveType::Bytes) => {
            let bytes = value
                .as_str()
                .and_then(base64_decode)
                .context("base64 expected")?;
            out.extend_from_slice(&bytes);
            Ok(bytes.len() as u64)
        }
        Ty::List(item) => {
            let items = value.as_array().context("an array expected")?;
            for v in items {
                encode(m, &item, v, out)?;
            }
            Ok(items.len() as u64)
        }
        _ => bail!("not a tail type"),
    }
}

pub(super) fn encode_prim(
    p: PrimitiveType,
    value: &Value,
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    use PrimitiveType as P;
    match p {
        P::Bool => out.push(u8::from(value.as_bool().context("a bool expected")?)),
        P::F32 => {
            let f = value.as_f64().context("a number expected")?;
            let narrow = f as f32;
            ensure!(f64::from(narrow) == f, "{f} is no f32");
            out.extend_from_slice(&narrow.to_le_bytes());
        }
        P::F64 => {
            out.extend_from_slice(&value.as_f64().context("a number expected")?.to_le_bytes())
        }
        P::Uuid => out.extend_from_slice(
            &parse_uuid(value.as_str().context("a string expected")?).context("a UUID expected")?,
        ),
        P::Timestamp => {
            let ns = rfc3339_nanos(value.as_str().context("a string expected")?)
                .context("an RFC 3339 timestamp expected")?;
            out.extend_from_slice(
                &u64::try_from(ns)
                    .context("a timestamp before 1970 or after 2554")?
                    .to_le_bytes(),
            );
        }
        P::Duration => {
            let ms = value.as_u64().context("milliseconds expected")?;
            let ns = ms
                .checked_mul(1_000_000)
                .context("a duration over 584 years")?;
            out.extend_from_slice(&ns.to_le_bytes());
        }
        P::String | P::Bytes | P::Json | P::Fd => {
            bail!("`{}` has no fixed binary form", p.name())
        }
        _ => {
            let (lo, hi) = p.int_range().context("an integer type expected")?;
            let n = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from))
                .context("an integer expected")?;
            ensure!(lo <= n && n <= hi, "{n} is out of range for `{}`", p.name());
            let size = usize::try_from(p.c_size().context("no size")?)?;
            out.extend_from_slice(&n.to_le_bytes()[..size]);
        }
    }
    Ok(())
}

pub(super) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let digits: Vec<u8> = b.iter().copied().filter(|c| *c != b'-').collect();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Nanoseconds since the Unix epoch of an RFC 3339 timestamp.
pub(super) fn rfc3339_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let t = s.get(from..to)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let scale = 10_i128.pow(u32::try_from(9 - digits.len()).ok()?);
        nanos = digits.parse::<i128>().ok()? * scale;
    }
    let offset: i64 = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// Standard padded base64 (RFC 4648), strictly.
pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::new();
    let chunks = b.len() / 4;
    for (i, chunk) in b.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for (j, c) in chunk.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { value(*c)? };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::emit::examples;

    #[test]
    fn timestamps_and_base64_decode() {
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_nanos("2000-03-01T00:00:01.5+01:00"),
            Some((951_868_800 + 1 - 3600) * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(rfc3339_nanos("2025-02-29T00:00:00Z"), None);
        assert_eq!(rfc3339_nanos("2025-01-15 10:00:00Z"), None);
        assert_eq!(base64_decode("Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let encoded = examples::base64(text.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(base64_decode("Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(base64_decode("YWI"), None);
        assert_eq!(base64_decode("***="), None);
        assert_eq!(
            parse_uuid("123e4567-e89b-12d3-a456-426614174000").map(|b| b[0]),
            Some(0x12)
        );
        assert_eq!(parse_uuid("123e4567e89b12d3a456426614174000"), None);
    }
}

//! Comparing JSON values as the wire compares them. Shared by `rust_emitter.rs` and the
//! temporary fixture crate it builds (copied there as `tests/common/json_eq.rs`).

use serde_json::Value;

/// True when `actual` is the same wire value as `expected`. Three differences are not
/// differences: floats within f32 precision (an `f32` field turns 0.1 into
/// 0.10000000149011612), timestamps naming the same instant (`.500Z` comes back as
/// `.5Z`), and UUIDs differing only in case (they are written lower-case).
pub fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => same_number(a, b),
        (Value::String(a), Value::String(b)) => a == b || same_instant(a, b) || same_uuid(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => expected == actual,
    }
}

fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return a == b;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

fn same_instant(a: &str, b: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    match (
        time::OffsetDateTime::parse(a, &Rfc3339),
        time::OffsetDateTime::parse(b, &Rfc3339),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn same_uuid(a: &str, b: &str) -> bool {
    a.len() == 36 && a.eq_ignore_ascii_case(b)
}

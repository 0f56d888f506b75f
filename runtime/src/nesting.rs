//! JSON nesting depth, checked on the raw text before anything is decoded.
//!
//! Catalogues limit how deep a receiver lets JSON nest (`limits.maxNestingDepth`: 64,
//! System.Text.Json's default). serde_json stops at 128 levels on its own, so between the
//! two a body would be accepted that the catalogue refuses, and a value forwarded
//! unparsed (a broker's payload) is never decoded at all. [`deeper_than`] answers on the
//! bytes: the envelope object is depth 1, each array or object inside adds one, scalars
//! add nothing (the conformance vectors' rule).
//!
//! The common case costs one vectorised count: text with no more `{` and `[` than the
//! limit cannot nest deeper than it. Only longer texts are scanned, string by string.

/// Whether the JSON text `json` nests deeper than `max` levels of arrays and objects.
///
/// Text that is not JSON gets some answer (brackets inside strings are skipped, the
/// rest counted); the decoder that follows rejects it either way.
///
/// ```
/// use ipcspec_runtime::nesting::deeper_than;
///
/// assert!(!deeper_than(br#"{"a":[1,{"b":2}]}"#, 3));
/// assert!(deeper_than(br#"{"a":[1,{"b":2}]}"#, 2));
/// assert!(!deeper_than(br#"{"a":"[[[[[["}"#, 1)); // brackets in strings do not nest
/// ```
#[must_use]
pub fn deeper_than(json: &[u8], max: usize) -> bool {
    if memchr::memchr2_iter(b'{', b'[', json).count() <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// The depth of a decoded value, by the same rule.
    fn depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn at_the_limit_passes_and_one_more_does_not() {
        assert!(!deeper_than(nested(64).as_bytes(), 64));
        assert!(deeper_than(nested(65).as_bytes(), 64));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let wide = format!("[{}]", vec!["{}"; 500].join(","));
        assert!(!deeper_than(wide.as_bytes(), 2));
        assert!(deeper_than(wide.as_bytes(), 1));
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let text = format!(r#"{{"a":"\"{}"}}"#, "[".repeat(100));
        assert!(!deeper_than(text.as_bytes(), 1));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[\\[\\]{}\"\\\\a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(12, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\\[{\"]{1,3}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_the_depth_of_the_decoded_value(value in json_value(), max in 0usize..14) {
            let text = serde_json::to_string(&value).unwrap();
            prop_assert_eq!(deeper_than(text.as_bytes(), max), depth(&value) > max, "{}", text);
        }
    }
}

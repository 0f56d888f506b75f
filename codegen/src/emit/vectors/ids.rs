//! Stable vector ids: case names derived from what a case does, and the retired-ids list.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use heck::ToKebabCase;
use serde_json::Value;

use crate::emit::examples;

/// The ids listed in a retired-ids file: one per line, `#` comments and blank lines
/// ignored.
pub fn parse_retired(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `text` (a retired-ids file) with `ids` appended, sorted.
pub fn retire(text: &str, ids: &BTreeSet<String>) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for id in ids {
        out.push_str(id);
        out.push('\n');
    }
    out
}

/// The ids of a vectors file's text.
pub fn ids_in(text: &str) -> anyhow::Result<Vec<String>> {
    let doc: Value = serde_json::from_str(text).context("not JSON")?;
    let list = doc
        .get("vectors")
        .and_then(Value::as_array)
        .context("no `vectors` array")?;
    list.iter()
        .map(|v| {
            v.get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .context("a vector without `id`")
        })
        .collect()
}

pub(super) fn is_case_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

// ---------------------------------------------------------------------------------------
// Case names

/// A kebab-case case name for a wrong value's description (`required field `deadline`
/// missing` -> `missing-deadline`).
pub(super) fn case_name(what: &str) -> String {
    let between = |prefix: &str, suffix: &str| {
        what.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .filter(|inner| !inner.contains('`'))
    };
    if let Some(f) = between("required field `", "` missing") {
        return format!("missing-{}", kebab(f));
    }
    if let Some(f) = between("field `", "` of the wrong type") {
        return format!("wrong-type-{}", kebab(f));
    }
    if let Some(f) = between("field `", "` is null") {
        return format!("null-{}", kebab(f));
    }
    if let Some(f) = between("padding `", "` is not zero") {
        return format!("nonzero-padding-{}", kebab(f));
    }
    match what {
        "an undeclared key" => return "undeclared-key".into(),
        "a value of the wrong JSON type" => return "wrong-json-type".into(),
        _ => {}
    }
    if let Some((f, rest)) = what
        .strip_prefix("field `")
        .and_then(|r| r.split_once("`: "))
    {
        return format!("{}-{}", kebab(f), slug(rest));
    }
    if let Some((v, rest)) = what
        .strip_prefix("variant `")
        .and_then(|r| r.split_once('`'))
    {
        let rest = rest.trim_start_matches(':').trim();
        let tail = if rest.starts_with("required field")
            || rest.starts_with("field `")
            || rest.starts_with("padding `")
            || rest.starts_with("an undeclared")
        {
            case_name(rest)
        } else {
            slug(rest)
        };
        return format!("variant-{}-{tail}", kebab(v));
    }
    slug(what)
}

pub(super) fn kebab(name: &str) -> String {
    let k = name.to_kebab_case();
    slug(&k)
}

/// Lower-case words joined by `-`; text in backticks is kept when it is an identifier
/// and dropped otherwise (patterns).
pub(super) fn slug(text: &str) -> String {
    let mut words = String::new();
    for (i, part) in text.split('`').enumerate() {
        let inside = i % 2 == 1;
        if inside {
            let ident = !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if ident {
                words.push(' ');
                words.push_str(&part.to_kebab_case());
                words.push(' ');
            }
        } else {
            words.push_str(part);
        }
    }
    let mut out = String::new();
    for c in words.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "case".into() } else { out }
}

/// Names for wrong values: their case names, with a content hash appended to names that
/// two different values share; identical values are kept once.
pub(super) fn named_wrongs(wrongs: Vec<examples::Wrong>) -> Vec<(String, examples::Wrong)> {
    let mut by_name: BTreeMap<String, Vec<examples::Wrong>> = BTreeMap::new();
    let mut order = Vec::new();
    for w in wrongs {
        let name = case_name(&w.what);
        let list = by_name.entry(name.clone()).or_default();
        if list.iter().any(|x| x.value == w.value) {
            continue;
        }
        if list.is_empty() {
            order.push(name);
        }
        list.push(w);
    }
    let mut out = Vec::new();
    for name in order {
        let Some(list) = by_name.remove(&name) else {
            continue;
        };
        let several = list.len() > 1;
        for w in list {
            let case = if several {
                format!("{name}-{:08x}", fnv32(&w.value.to_string()))
            } else {
                name.clone()
            };
            out.push((case, w));
        }
    }
    out
}

pub(super) fn fnv32(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn case_names_follow_the_wrong_values() {
        assert_eq!(
            case_name("required field `deadline` missing"),
            "missing-deadline"
        );
        assert_eq!(
            case_name("field `percentComplete` of the wrong type"),
            "wrong-type-percent-complete"
        );
        assert_eq!(case_name("field `eta` is null"), "null-eta");
        assert_eq!(
            case_name("padding `reserved0` is not zero"),
            "nonzero-padding-reserved0"
        );
        assert_eq!(
            case_name("field `percentComplete`: above the maximum 100"),
            "percent-complete-above-the-maximum-100"
        );
        assert_eq!(
            case_name("field `userId`: does not match `^[a-z_][a-z0-9_-]*[$]?$`"),
            "user-id-does-not-match"
        );
        assert_eq!(
            case_name("variant `Identifier` without its tag `by`"),
            "variant-identifier-without-its-tag-by"
        );
        assert_eq!(
            case_name("variant `Identifier`: required field `id` missing"),
            "variant-identifier-missing-id"
        );
        assert_eq!(case_name("an undeclared key"), "undeclared-key");
        assert!(is_case_name("missing-deadline"));
        assert!(!is_case_name("Missing"));
        assert!(!is_case_name("a--b"));
    }

    #[test]
    fn retired_ids_are_parsed_and_appended() {
        let text = "# retired\n\na/b/valid/c\n";
        let ids = parse_retired(text);
        assert_eq!(ids.len(), 1);
        let more: BTreeSet<String> = ["z/y/invalid/x".to_owned()].into();
        let next = retire(text, &more);
        assert_eq!(parse_retired(&next).len(), 2);
        assert!(next.ends_with("z/y/invalid/x\n"));
    }
}

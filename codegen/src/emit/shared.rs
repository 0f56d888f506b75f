//! What more than one emitter needs: text helpers (templates, word wrapping, lists,
//! constraint and framing prose, literal spellings) and the JSON form of values and of
//! binary messages. Emitters share these through this module and never import each
//! other's helpers.

use anyhow::anyhow;
use serde::Serialize;
use serde_json::{Value, json};

use crate::ir::{ByteOrder, Constraints, Encoding, Framing, LengthCounts, Module, TypeId};

/// A tera engine holding one template, with autoescaping off (the output is code).
pub fn engine(name: &str, source: &str) -> anyhow::Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    tera.add_raw_template(name, source)
        .map_err(|e| anyhow!("template {name}: {}", error_chain(&e)))?;
    Ok(tera)
}

/// Renders `name` with `context`, then normalizes whitespace: no trailing spaces, at most
/// one blank line in a row, none after a line that opens a brace or before one that closes
/// it, none at the top, and exactly one newline at the end.
pub fn render<T: Serialize>(tera: &tera::Tera, name: &str, context: &T) -> anyhow::Result<String> {
    let context = tera::Context::from_serialize(context)
        .map_err(|e| anyhow!("context: {}", error_chain(&e)))?;
    let raw = tera
        .render(name, &context)
        .map_err(|e| anyhow!("rendering {name}: {}", error_chain(&e)))?;
    let mut out = String::with_capacity(raw.len());
    let mut blank = false;
    let mut previous_opens = false;
    for line in raw.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank = true;
            continue;
        }
        let closes = line.trim_start().starts_with('}');
        if blank && !out.is_empty() && !previous_opens && !closes {
            out.push('\n');
        }
        blank = false;
        out.push_str(line);
        out.push('\n');
        previous_opens = line.ends_with('{');
    }
    Ok(out)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Word-wraps `text` to `width` columns. Line breaks in the text are kept; an empty line
/// separates paragraphs.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for source_line in text.trim().lines() {
        if source_line.trim().is_empty() {
            if out.last().is_some_and(|l| !l.is_empty()) {
                out.push(String::new());
            }
            continue;
        }
        let mut line = String::new();
        for word in source_line.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push(line);
        }
    }
    out
}

/// Wraps `text` as a list item: the first line starts with `marker`, the next ones are
/// indented to align with the text.
pub fn wrap_item(marker: &str, text: &str, width: usize) -> Vec<String> {
    let indent = " ".repeat(marker.chars().count());
    wrap(text, width.saturating_sub(indent.len()))
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{marker}{l}")
            } else {
                format!("{indent}{l}")
            }
        })
        .collect()
}

/// Joins paragraphs (each already wrapped) with an empty line between non-empty ones.
pub fn paragraphs(parts: Vec<Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(part);
    }
    out
}

/// `a`, `a and b`, `a, b and c`.
pub fn list_text(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Constraints as prose (`Constraints: minLength 1, maxLength 16.`), if any.
pub fn constraints_text(c: &Constraints) -> Option<String> {
    let num = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    };
    let mut parts = Vec::new();
    if let Some(v) = c.minimum {
        parts.push(format!("minimum {}", num(v)));
    }
    if let Some(v) = c.maximum {
        parts.push(format!("maximum {}", num(v)));
    }
    if let Some(v) = c.min_length {
        parts.push(format!("minLength {v}"));
    }
    if let Some(v) = c.max_length {
        parts.push(format!("maxLength {v}"));
    }
    if let Some(v) = &c.pattern {
        parts.push(format!("pattern `{v}`"));
    }
    if let Some(v) = c.min_items {
        parts.push(format!("minItems {v}"));
    }
    if let Some(v) = c.max_items {
        parts.push(format!("maxItems {v}"));
    }
    (!parts.is_empty()).then(|| format!("Constraints: {}.", parts.join(", ")))
}

/// A one-sentence description of the framing, for file comments.
pub fn framing_text(module: &Module) -> String {
    let order = |o: ByteOrder| match o {
        ByteOrder::Little => "little-endian",
        ByteOrder::Big => "big-endian",
    };
    let encoding = match module.wire.encoding {
        Encoding::Json => "JSON",
        Encoding::BinaryLe => "little-endian binary",
    };
    match &module.wire.framing {
        Framing::LengthPrefixed {
            width_bytes,
            byte_order,
        } => format!(
            "Framing: each {encoding} message is preceded by its length in bytes, a {width_bytes}-byte {} unsigned integer.",
            order(*byte_order)
        ),
        Framing::NewlineDelimited => {
            format!("Framing: one {encoding} message per line (newline-delimited).")
        }
        Framing::BinaryHeader {
            header,
            byte_order,
            length_counts,
        } => format!(
            "Framing: every message starts with the {} binary header `{}` (its length field counts {}), followed by the {encoding} payload.",
            order(*byte_order),
            module.ty(*header).name,
            match length_counts {
                LengthCounts::HeaderAndPayload => "the header and the payload",
                LengthCounts::Payload => "the payload only",
            }
        ),
    }
}

/// The number of hexadecimal digits of `text` when it is written in hexadecimal.
pub fn hex_width(text: Option<&str>) -> Option<usize> {
    let body = text?.trim_start_matches('-');
    let digits = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))?;
    Some(digits.chars().filter(|c| *c != '_').count())
}

// ---------------------------------------------------------------------------------------
// The JSON form of values and of binary messages

/// Key of the header in the decoded form of a binary message.
pub const BINARY_HEADER_KEY: &str = "header";
/// Key of the payload in the decoded form of a binary message.
pub const BINARY_PAYLOAD_KEY: &str = "payload";

/// True when messages travel as binary structs (the JSON Schema then describes their
/// decoded form).
pub fn is_binary(module: &Module) -> bool {
    module.wire.encoding != Encoding::Json
}

/// The header struct of a binary-header framing.
pub fn binary_header(module: &Module) -> Option<TypeId> {
    match &module.wire.framing {
        crate::ir::Framing::BinaryHeader { header, .. } => Some(*header),
        _ => None,
    }
}

/// An integer from the IR as a JSON number (numbers outside the i64/u64 range cannot
/// occur in a catalogue).
pub fn int(v: i128) -> Value {
    if let Ok(v) = i64::try_from(v) {
        json!(v)
    } else if let Ok(v) = u64::try_from(v) {
        json!(v)
    } else {
        json!(v as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("one\n\n\ntwo", 10), vec!["one", "", "two"]);
        assert_eq!(
            wrap_item("1. ", "aa bb cc", 7),
            vec!["1. aa", "   bb", "   cc"]
        );
        assert_eq!(
            list_text(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}

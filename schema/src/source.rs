//! Parsing a catalogue file while keeping positions.
//!
//! `jsonc-parser` (in strict JSON mode: no comments, no trailing commas) gives an AST with
//! byte ranges. From it we build a [`SourceMap`] from JSON pointer to the spans of a
//! member's key and value, report duplicate keys (which `serde_json` would silently
//! collapse), and produce the `serde_json::Value` the model deserializes from.

use std::collections::HashMap;

use jsonc_parser::ast::{self, ObjectPropName};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

use crate::diagnostic::{Diagnostic, Part};
use crate::model::Src;

/// Byte spans of a JSON member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpans {
    /// The key, for object members.
    pub key: Option<(usize, usize)>,
    /// The value.
    pub value: (usize, usize),
}

/// JSON pointer -> spans, for one file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    nodes: HashMap<String, NodeSpans>,
}

impl SourceMap {
    /// The span of `part` of the node at `src`. A pointer that names nothing in the file
    /// (a member that is missing) resolves to its nearest existing ancestor.
    pub fn span(&self, src: &Src, part: Part) -> (usize, usize) {
        let mut pointer = src.pointer();
        loop {
            if let Some(spans) = self.nodes.get(pointer) {
                return match part {
                    Part::Key => spans.key.unwrap_or(spans.value),
                    Part::Value => spans.value,
                };
            }
            match pointer.rfind('/') {
                Some(cut) => pointer = &pointer[..cut],
                None => return (0, 0),
            }
        }
    }

    /// True if the file has a node at `src`.
    pub fn contains(&self, src: &Src) -> bool {
        self.nodes.contains_key(src.pointer())
    }
}

/// The result of parsing: the value (absent on a syntax error), the map and any
/// diagnostics found while parsing.
#[derive(Debug)]
pub struct Parsed {
    /// The document, when it is syntactically valid JSON.
    pub value: Option<serde_json::Value>,
    /// Spans of every node.
    pub map: SourceMap,
    /// Syntax errors and duplicate keys.
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses strict JSON text.
pub fn parse(text: &str) -> Parsed {
    let options = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let mut map = SourceMap::default();
    let mut diagnostics = Vec::new();
    let ast = match jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &options) {
        Ok(result) => result.value,
        Err(error) => {
            let range = error.range();
            let end = range
                .end
                .max(range.start + 1)
                .min(text.len().max(range.start));
            diagnostics.push(
                Diagnostic::error("ipcspec::syntax", format!("invalid JSON: {}", error.kind()))
                    .at_span(range.start, end, "here")
                    .help("catalogues are strict JSON (RFC 8259): no comments, no trailing commas, keys in double quotes"),
            );
            return Parsed {
                value: None,
                map,
                diagnostics,
            };
        }
    };
    let Some(ast) = ast else {
        diagnostics.push(
            Diagnostic::error("ipcspec::syntax", "the file is empty")
                .at_span(0, 0, "expected a JSON object")
                .help("a catalogue is one JSON object; start from an example in specs/README.md"),
        );
        return Parsed {
            value: None,
            map,
            diagnostics,
        };
    };
    let value = convert(&ast, &Src::default(), None, &mut map, &mut diagnostics);
    Parsed {
        value: Some(value),
        map,
        diagnostics,
    }
}

fn span(range: jsonc_parser::common::Range) -> (usize, usize) {
    (range.start, range.end)
}

fn convert(
    node: &ast::Value<'_>,
    at: &Src,
    key: Option<(usize, usize)>,
    map: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> serde_json::Value {
    map.nodes.insert(
        at.pointer().to_owned(),
        NodeSpans {
            key,
            value: span(node.range()),
        },
    );
    match node {
        ast::Value::StringLit(s) => serde_json::Value::String(s.value.to_string()),
        ast::Value::BooleanLit(b) => serde_json::Value::Bool(b.value),
        ast::Value::NullKeyword(_) => serde_json::Value::Null,
        ast::Value::NumberLit(n) => number(n.value),
        ast::Value::Array(array) => serde_json::Value::Array(
            array
                .elements
                .iter()
                .enumerate()
                .map(|(i, element)| convert(element, &at.at(i), None, map, diagnostics))
                .collect(),
        ),
        ast::Value::Object(object) => {
            let mut out = serde_json::Map::new();
            let mut first_seen: HashMap<&str, (usize, usize)> = HashMap::new();
            for prop in &object.properties {
                let name: &str = match &prop.name {
                    ObjectPropName::String(lit) => lit.value.as_ref(),
                    ObjectPropName::Word(lit) => lit.value,
                };
                let key_span = span(prop.name.range());
                if let Some(first) = first_seen.get(name) {
                    diagnostics.push(
                        Diagnostic::error(
                            "ipcspec::duplicate-key",
                            format!("the key `{name}` appears twice in one object"),
                        )
                        .at_span(key_span.0, key_span.1, "second occurrence")
                        .at_span(first.0, first.1, "first occurrence")
                        .help("JSON readers disagree on which copy wins; keep exactly one"),
                    );
                    continue;
                }
                first_seen.insert(name, key_span);
                let value = convert(&prop.value, &at.at(name), Some(key_span), map, diagnostics);
                out.insert(name.to_owned(), value);
            }
            serde_json::Value::Object(out)
        }
    }
}

fn number(text: &str) -> serde_json::Value {
    // Integers keep their exact value (u64 and i64 both fit serde_json's Number); anything
    // else, including integers beyond 64 bits, is read as f64 like every JSON reader does.
    if let Ok(v) = text.parse::<u64>() {
        return serde_json::Value::from(v);
    }
    if let Ok(v) = text.parse::<i64>() {
        return serde_json::Value::from(v);
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// 1-based line and column (in characters) of byte offset `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_pointers_to_spans() {
        let text = "{\n  \"a\": [1, {\"b/c\": true}]\n}";
        let parsed = parse(text);
        assert!(parsed.diagnostics.is_empty());
        let b = Src("/a/1/b~1c".into());
        let (start, end) = parsed.map.span(&b, Part::Value);
        assert_eq!(&text[start..end], "true");
        let (start, end) = parsed.map.span(&b, Part::Key);
        assert_eq!(&text[start..end], "\"b/c\"");
        // A missing member falls back to its parent.
        let (start, _) = parsed.map.span(&Src("/a/1/missing".into()), Part::Value);
        assert_eq!(&text[start..start + 1], "{");
    }

    #[test]
    fn reports_duplicate_keys_with_both_spans() {
        let parsed = parse(r#"{"x": 1, "x": 2}"#);
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(parsed.diagnostics[0].code, "ipcspec::duplicate-key");
        assert_eq!(parsed.diagnostics[0].labels.len(), 2);
    }

    #[test]
    fn rejects_comments_and_trailing_commas() {
        assert_eq!(parse("{\"a\": 1, }").diagnostics[0].code, "ipcspec::syntax");
        assert_eq!(
            parse("{\"a\": 1 // c\n}").diagnostics[0].code,
            "ipcspec::syntax"
        );
        assert!(parse("").value.is_none());
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé d", 7), (2, 4));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}

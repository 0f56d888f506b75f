//! Doc comments: catalogue prose as `///` lines.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::Constraints;

/// `#[doc]` attributes (rendered as `///`) for each paragraph in `parts`, separated by
/// blank doc lines; empty parts are skipped.
pub(super) fn outer<S: AsRef<str>>(parts: &[S]) -> TokenStream {
    let lines = lines(parts);
    quote! { #( #[doc = #lines] )* }
}

/// `#![doc]` attributes (rendered as `//!`).
pub(super) fn inner<S: AsRef<str>>(parts: &[S]) -> TokenStream {
    let lines = lines(parts);
    quote! { #( #![doc = #lines] )* }
}

/// Doc lines with the leading space rustdoc expects after `///`.
fn lines<S: AsRef<str>>(parts: &[S]) -> Vec<String> {
    let mut out = Vec::new();
    for part in parts
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| !p.trim().is_empty())
    {
        if !out.is_empty() {
            out.push(String::new());
        }
        for line in part.trim().lines() {
            if line.trim().is_empty() {
                out.push(String::new());
            } else {
                out.extend(wrap(&escape_html(line.trim_end())).map(|l| format!(" {l}")));
            }
        }
    }
    out
}

/// How many characters of prose a doc line holds: with `/// ` and the indentation of a
/// nested item (up to 8 columns) a line stays within rustfmt's 100 columns.
const DOC_WIDTH: usize = 88;

/// `line` broken at spaces into lines of at most [`DOC_WIDTH`] characters (a longer word
/// stays whole). A line never starts with what Markdown would read as a list item, a
/// heading or a quote, so wrapping cannot change how the text renders.
fn wrap(line: &str) -> impl Iterator<Item = String> {
    // Leading indentation (a nested list in the catalogue's prose) is kept on the first
    // line; continuation lines are lazy continuations of the same paragraph.
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut lines = Vec::new();
    let mut current = indent.to_owned();
    for word in line.split_whitespace() {
        let fits = current.trim().is_empty()
            || current.chars().count() + 1 + word.chars().count() <= DOC_WIDTH;
        if fits || starts_block(word) {
            if !current.trim().is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        } else {
            lines.push(std::mem::take(&mut current));
            current.push_str(word);
        }
    }
    lines.push(current);
    lines.into_iter()
}

/// True for a word that would start a Markdown block at the beginning of a line.
fn starts_block(word: &str) -> bool {
    let ordered = word
        .strip_suffix(['.', ')'])
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    ordered
        || matches!(word, "-" | "+" | "*" | ">" | "|")
        || word.starts_with('#')
        || word.starts_with("```")
        || word.starts_with("===")
        || word.starts_with("---")
}

/// Catalogue prose is plain text, but rustdoc reads `<port id>` as an HTML tag: `<`
/// outside code spans becomes `&lt;` (which renders as `<`).
fn escape_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    // Length of the backtick run that opened the current code span, if inside one.
    let mut fence: Option<usize> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                let mut run = 1;
                while chars.next_if_eq(&'`').is_some() {
                    run += 1;
                }
                fence = match fence {
                    None => Some(run),
                    Some(open) if open == run => None,
                    other => other,
                };
                out.push_str(&"`".repeat(run));
            }
            '<' if fence.is_none() => out.push_str("&lt;"),
            c => out.push(c),
        }
    }
    out
}

/// The constraints the runtime checks, as one doc line (`Constraints: 1 to 16
/// characters, pattern `^[a-z]+$`.`), or an empty string.
pub(super) fn constraints(c: &Constraints) -> String {
    let mut parts = Vec::new();
    if let Some(range) = range(c.minimum, c.maximum, "", number) {
        parts.push(format!("value {range}"));
    }
    if let Some(range) = range(c.min_length, c.max_length, " characters", |v| v.to_string()) {
        parts.push(range);
    }
    if let Some(range) = range(c.min_items, c.max_items, " items", |v| v.to_string()) {
        parts.push(range);
    }
    if let Some(pattern) = &c.pattern {
        parts.push(format!("pattern {}", code(pattern)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("Constraints: {}.", parts.join(", "))
    }
}

fn range<T: Copy>(
    min: Option<T>,
    max: Option<T>,
    unit: &str,
    show: impl Fn(T) -> String,
) -> Option<String> {
    match (min, max) {
        (Some(min), Some(max)) => Some(format!("{} to {}{unit}", show(min), show(max))),
        (Some(min), None) => Some(format!("at least {}{unit}", show(min))),
        (None, Some(max)) => Some(format!("at most {}{unit}", show(max))),
        (None, None) => None,
    }
}

fn number(value: f64) -> String {
    // Whole numbers without a trailing `.0`: `-1000`, not `-1000.0`.
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}

/// `text` as Markdown inline code, with a fence longer than any backtick run inside.
pub(super) fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::{DOC_WIDTH, escape_html, wrap};

    #[test]
    fn long_lines_wrap_at_spaces_without_starting_a_markdown_block() {
        let words = "word ".repeat(40);
        let lines: Vec<String> = wrap(words.trim()).collect();
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= DOC_WIDTH));
        assert_eq!(lines.join(" "), words.trim());
        // `- 1` would become a list item at the start of a line: it stays on the line
        // before.
        let text = format!("{} - 1. # x", "a".repeat(DOC_WIDTH - 1));
        let lines: Vec<String> = wrap(&text).collect();
        assert_eq!(lines[1], "x", "{lines:?}");
        let long = "x".repeat(DOC_WIDTH + 10);
        assert_eq!(wrap(&long).collect::<Vec<_>>(), [long]);
    }

    #[test]
    fn angle_brackets_are_escaped_outside_code() {
        assert_eq!(
            escape_html("form 'netlink:<port id>'"),
            "form 'netlink:&lt;port id>'"
        );
        assert_eq!(escape_html("`Vec<u8>` and <b>"), "`Vec<u8>` and &lt;b>");
        assert_eq!(escape_html("``a ` <b`` <c"), "``a ` <b`` &lt;c");
    }
}

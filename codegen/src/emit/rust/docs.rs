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
        out.extend(part.trim().lines().map(|line| {
            if line.trim().is_empty() {
                String::new()
            } else {
                format!(" {}", escape_html(line.trim_end()))
            }
        }));
    }
    out
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
    use super::escape_html;

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

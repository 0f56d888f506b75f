//! Diagnostics as plain data; rendering lives in [`crate::render`].
//!
//! A diagnostic names what is wrong, where (one primary and any secondary labels) and how
//! to fix it. Locations are JSON pointers into the catalogue ([`Src`]) or raw byte spans
//! (for problems found before there is a pointer, such as a syntax error); the
//! [`crate::SourceMap`] turns pointers into spans when the diagnostic is rendered.

use crate::model::Src;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The catalogue is unusable until this is fixed.
    Error,
    /// The catalogue works but probably not as meant.
    Warning,
}

/// Which part of a JSON member a label points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The member's value.
    Value,
    /// The member's key (falls back to the value for array elements).
    Key,
}

/// Where a label points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A node of the catalogue, by JSON pointer.
    Node(Src, Part),
    /// A byte range of the file.
    Span { start: usize, end: usize },
}

/// A labelled location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub location: Location,
    /// What about it (may be empty).
    pub message: String,
}

/// One problem in a catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code, e.g. `ipcspec::unknown-type`. Tests and tools match on it.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// One line saying what is wrong.
    pub message: String,
    /// The first label is the primary location.
    pub labels: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with the given code and message and no location yet.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    /// A warning with the given code and message and no location yet.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Adds a label on the value at `src`.
    pub fn at(mut self, src: &Src, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            location: Location::Node(src.clone(), Part::Value),
            message: message.into(),
        });
        self
    }

    /// Adds a label on the key of the member at `src`.
    pub fn at_key(mut self, src: &Src, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            location: Location::Node(src.clone(), Part::Key),
            message: message.into(),
        });
        self
    }

    /// Adds a label on a raw byte range.
    pub fn at_span(mut self, start: usize, end: usize, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            location: Location::Span { start, end },
            message: message.into(),
        });
        self
    }

    /// Sets the fix hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A "did you mean" suffix for `name` among `candidates`, or an empty string.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

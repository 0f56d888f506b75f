//! Rendering diagnostics for people (miette's graphical report, rustc-like) and for tools
//! (one `path:line:column: severity[code]: message` line each).

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use crate::diagnostic::{Diagnostic, Location, Severity};
use crate::load::SourceFile;
use crate::source::line_col;

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unicode art with ANSI colours, for terminals.
    Color,
    /// Unicode art without colours, for logs and snapshots.
    Plain,
}

/// Renders every diagnostic of a file as a rustc-like report.
pub fn render(source: &SourceFile, diagnostics: &[Diagnostic], style: Style) -> String {
    let theme = match style {
        Style::Color => GraphicalTheme::unicode(),
        Style::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let named = Arc::new(NamedSource::new(
        source.path.display().to_string(),
        source.text.clone(),
    ));
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report::new(source, diagnostic, named.clone());
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
        out.push('\n');
    }
    out
}

/// One line per diagnostic: `path:line:column: error[code]: message`.
pub fn render_short(source: &SourceFile, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        let (line, column) = diagnostic
            .labels
            .first()
            .map(|label| line_col(&source.text, span_of(source, &label.location).0))
            .unwrap_or((1, 1));
        let severity = match diagnostic.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "{}:{line}:{column}: {severity}[{}]: {}\n",
            source.path.display(),
            diagnostic.code,
            diagnostic.message
        ));
    }
    out
}

fn span_of(source: &SourceFile, location: &Location) -> (usize, usize) {
    match location {
        Location::Node(src, part) => source.map.span(src, *part),
        Location::Span { start, end } => (*start, *end),
    }
}

/// A diagnostic resolved against its file, in the form miette renders.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    labels: Vec<LabeledSpan>,
    source: Arc<NamedSource<String>>,
}

impl<'a> Report<'a> {
    fn new(
        file: &SourceFile,
        diagnostic: &'a Diagnostic,
        source: Arc<NamedSource<String>>,
    ) -> Self {
        let labels = diagnostic
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let (start, end) = span_of(file, &label.location);
                let text = (!label.message.is_empty()).then(|| label.message.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, (start, end - start))
                } else {
                    LabeledSpan::new_with_span(text, (start, end - start))
                }
            })
            .collect();
        Report {
            diagnostic,
            labels,
            source,
        }
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.labels.is_empty() {
            None
        } else {
            Some(&*self.source)
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

//! The run's outputs: the human summary, `report.json`, JUnit XML and one self-contained
//! HTML page where every verdict is seen at a glance and every transcript can be opened.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::engine::{CaseResult, Verdict};
use crate::protocol::Capabilities;

/// Everything a run produced.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The runner's version.
    pub runner: &'static str,
    /// The catalogue.
    pub catalogue: String,
    /// How the implementation was reached.
    pub target: String,
    /// The capabilities the cases were derived from.
    pub capabilities: Capabilities,
    /// Unix time of the start, in seconds.
    pub started: u64,
    /// How long the run took.
    pub duration_ms: u64,
    /// Counts by verdict.
    pub summary: Summary,
    /// Every case, in run order.
    pub cases: Vec<CaseResult>,
}

/// Counts by verdict.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Passed (ok, non-strict, expected failures).
    pub passed: usize,
    /// Failed (conformance failures, unexpected passes).
    pub failed: usize,
    /// Harness errors.
    pub errors: usize,
    /// Not run.
    pub skipped: usize,
}

impl Summary {
    /// Counts `cases`.
    #[must_use]
    pub fn of(cases: &[CaseResult]) -> Summary {
        let mut summary = Summary::default();
        for case in cases {
            match case.verdict {
                Verdict::Skipped => summary.skipped += 1,
                Verdict::Error => summary.errors += 1,
                verdict if verdict.passed() => summary.passed += 1,
                _ => summary.failed += 1,
            }
        }
        summary
    }
}

fn label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "ok",
        Verdict::NonStrict => "non-strict",
        Verdict::Failed => "FAILED",
        Verdict::Error => "ERROR",
        Verdict::Skipped => "skipped",
        Verdict::ExpectedFailure => "xfail",
        Verdict::UnexpectedPass => "XPASS",
    }
}

impl Report {
    /// The human summary: one line per case (details for failures), then
    /// `N passed, N failed` as the last line (errors count as failed there).
    #[must_use]
    pub fn human(&self) -> String {
        let mut out = String::new();
        for case in &self.cases {
            let _ = writeln!(
                out,
                "{:<10} {:<55} {}",
                label(case.verdict),
                case.id,
                case.title
            );
            if matches!(
                case.verdict,
                Verdict::Failed | Verdict::Error | Verdict::UnexpectedPass
            ) {
                let _ = writeln!(out, "           expected: {}", case.expected);
                if let Some(actual) = &case.actual {
                    let _ = writeln!(out, "           actual:   {actual}");
                }
            }
        }
        if self.summary.skipped > 0 {
            let _ = writeln!(out, "{} skipped", self.summary.skipped);
        }
        if self.summary.errors > 0 {
            let _ = writeln!(out, "{} harness errors", self.summary.errors);
        }
        let _ = write!(
            out,
            "{} passed, {} failed",
            self.summary.passed,
            self.summary.failed + self.summary.errors
        );
        out
    }

    /// Writes `report.json`, `junit.xml` and `report.html` into `dir`.
    ///
    /// # Errors
    ///
    /// A file that cannot be written, named.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("report.json", serde_json::to_string_pretty(self)? + "\n")?;
        write("junit.xml", self.junit())?;
        write("report.html", self.html())?;
        Ok(())
    }

    /// JUnit XML: one test suite, one test case per case.
    #[must_use]
    pub fn junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&self.catalogue),
            self.cases.len(),
            self.summary.failed,
            self.summary.errors,
            self.summary.skipped,
            self.duration_ms as f64 / 1000.0
        );
        for case in &self.cases {
            let _ = write!(
                out,
                "  <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\">",
                xml(&self.catalogue),
                xml(&case.group),
                xml(&case.id),
                case.duration_ms as f64 / 1000.0
            );
            let detail = || {
                format!(
                    "expected: {}\nactual: {}",
                    case.expected,
                    case.actual.as_deref().unwrap_or("")
                )
            };
            match case.verdict {
                Verdict::Failed | Verdict::UnexpectedPass => {
                    let _ = write!(
                        out,
                        "<failure message=\"{}\">{}</failure>",
                        xml(case.actual.as_deref().unwrap_or("failed")),
                        xml(&detail())
                    );
                }
                Verdict::Error => {
                    let _ = write!(
                        out,
                        "<error message=\"{}\">{}</error>",
                        xml(case.actual.as_deref().unwrap_or("error")),
                        xml(&detail())
                    );
                }
                Verdict::Skipped => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml(&case.expected));
                }
                _ => {}
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("</testsuite>\n");
        out
    }

    /// One self-contained HTML page (no external resources).
    #[must_use]
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for (index, case) in self.cases.iter().enumerate() {
            let class = match case.verdict {
                Verdict::Ok | Verdict::ExpectedFailure => "ok",
                Verdict::NonStrict => "lenient",
                Verdict::Skipped => "skip",
                _ => "bad",
            };
            let mut transcript = String::new();
            for event in &case.transcript {
                let _ = writeln!(
                    transcript,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code>{}</td></tr>",
                    event.at_ms,
                    xml(&event.connection),
                    event.kind,
                    xml(&event.text),
                    event
                        .hex
                        .as_ref()
                        .map(|h| format!("<div class=\"hex\">{}</div>", xml(h)))
                        .unwrap_or_default()
                );
            }
            let _ = writeln!(
                rows,
                "<tr class=\"{class}\"><td><span class=\"v\">{verdict}</span></td><td>{level}</td><td>{group}</td>\
                 <td><details id=\"case-{index}\"><summary><b>{id}</b> {title}</summary>\
                 <p>Cites: {cites}</p><p>Expected: {expected}</p>{actual}\
                 <table class=\"t\"><tr><th>ms</th><th>conn</th><th>event</th><th>data</th></tr>{transcript}</table>\
                 </details></td><td>{ms}</td></tr>",
                verdict = label(case.verdict),
                level = match case.level {
                    crate::scenario::Level::Must => "must",
                    crate::scenario::Level::Should => "should",
                },
                group = xml(&case.group),
                id = xml(&case.id),
                title = xml(&case.title),
                cites = xml(&case.cites.join(", ")),
                expected = xml(&case.expected),
                actual = case
                    .actual
                    .as_ref()
                    .map(|a| format!("<p>Actual: {}</p>", xml(a)))
                    .unwrap_or_default(),
                ms = case.duration_ms,
            );
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>ipcspec conformance: {catalogue}</title>\n<style>\n\
             body{{font-family:system-ui,sans-serif;margin:1.5em}}\
             table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:4px;text-align:left;vertical-align:top}}\
             tr.ok .v{{background:#2e7d32}}tr.lenient .v{{background:#f9a825}}tr.bad .v{{background:#c62828}}tr.skip .v{{background:#9e9e9e}}\
             .v{{color:#fff;padding:2px 6px;border-radius:3px;font-weight:bold}}\
             .t td{{font-size:12px}}.hex{{color:#777;word-break:break-all;font-family:monospace;font-size:11px}}\
             code{{white-space:pre-wrap;word-break:break-all}}\n</style></head><body>\n\
             <h1>Conformance of {target}</h1><p>Catalogue <b>{catalogue}</b>; runner {runner}; \
             {passed} passed, {failed} failed, {errors} harness errors, {skipped} skipped, in {ms} ms.</p>\n\
             <table><tr><th>verdict</th><th>level</th><th>group</th><th>case (click for the transcript)</th><th>ms</th></tr>\n\
             {rows}</table></body></html>\n",
            catalogue = xml(&self.catalogue),
            target = xml(&self.target),
            runner = self.runner,
            passed = self.summary.passed,
            failed = self.summary.failed,
            errors = self.summary.errors,
            skipped = self.summary.skipped,
            ms = self.duration_ms,
        )
    }
}

/// Escapes text for XML and HTML.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

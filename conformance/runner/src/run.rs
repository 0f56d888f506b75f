//! A whole run: which cases, against what, with which expected failures.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::engine::{CaseResult, Context, Target, Verdict, run_case};
use crate::report::{Report, Summary};
use crate::scenario::{Case, Level, Role, ScenarioFile};

/// Which cases to run.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Only these ids.
    pub cases: Vec<String>,
    /// Only these groups.
    pub groups: Vec<String>,
    /// Also run `should` cases.
    pub strict: bool,
}

/// Reads a scenario file.
///
/// # Errors
///
/// Unreadable or malformed, with the file named; a duplicate case id.
pub fn load_scenarios(path: &Path) -> anyhow::Result<ScenarioFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ScenarioFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a scenario file", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    for case in &file.cases {
        if !seen.insert(case.id.as_str()) {
            bail!("{}: case id `{}` appears twice", path.display(), case.id);
        }
    }
    Ok(file)
}

/// Reads an expected-failures file: one `ID # reason` per line; `#` lines are comments.
///
/// # Errors
///
/// Unreadable, or a line without a reason.
pub fn load_expected_failures(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut failures = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((id, reason)) = line.split_once('#') else {
            bail!(
                "{}:{}: `{line}` has no reason; write `ID # reason`",
                path.display(),
                number + 1
            );
        };
        failures.insert(id.trim().to_owned(), reason.trim().to_owned());
    }
    Ok(failures)
}

fn skipped(case: &Case, why: String) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        group: case.group.clone(),
        level: case.level,
        cites: case.cites.clone(),
        verdict: Verdict::Skipped,
        expected: why,
        actual: None,
        duration_ms: 0,
        transcript: Vec::new(),
    }
}

/// Runs the selected cases of `file` against `target`.
///
/// # Errors
///
/// Only when the implementation cannot be reached at all; per-case problems are verdicts.
pub fn run(
    ctx: &Context,
    file: &ScenarioFile,
    target: &mut Target,
    target_name: &str,
    selection: &Selection,
    expected_failures: &BTreeMap<String, String>,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for id in expected_failures.keys() {
        if !file.cases.iter().any(|case| &case.id == id) {
            bail!(
                "the expected-failures file names `{id}`, which is no case of {}",
                file.catalogue
            );
        }
    }
    let mut results = Vec::new();
    for case in &file.cases {
        if !selection.cases.is_empty() && !selection.cases.contains(&case.id) {
            continue;
        }
        if !selection.groups.is_empty() && !selection.groups.contains(&case.group) {
            continue;
        }
        if case.level == Level::Should && !selection.strict {
            results.push(skipped(
                case,
                "a should-level case (run with --strict)".to_owned(),
            ));
            continue;
        }
        if case.role == Role::Client {
            results.push(skipped(
                case,
                "implementation-as-client cases need --client-command".to_owned(),
            ));
            continue;
        }
        if let Some(missing) = case
            .requires
            .iter()
            .find(|f| !ctx.capabilities.features.contains(f))
        {
            results.push(skipped(
                case,
                format!("the implementation does not declare `{missing}`"),
            ));
            continue;
        }
        let mut result = match target.ensure_running() {
            Ok(()) => run_case(ctx, target.socket(), case),
            Err(error) => {
                let mut result = skipped(case, "the implementation accepts connections".to_owned());
                result.verdict = Verdict::Error;
                result.actual = Some(format!("{error:#}"));
                result
            }
        };
        if let Some(status) = target.crashed() {
            result.verdict = Verdict::Failed;
            result.actual = Some(format!(
                "the implementation crashed ({status}); restarted for the next case"
            ));
        }
        if let Some(reason) = expected_failures.get(&case.id) {
            result.verdict = match result.verdict {
                Verdict::Failed => Verdict::ExpectedFailure,
                Verdict::Ok | Verdict::NonStrict => {
                    result.actual = Some(format!("passed, but expected to fail: {reason}"));
                    Verdict::UnexpectedPass
                }
                other => other,
            };
        }
        results.push(result);
    }
    let summary = Summary::of(&results);
    Ok(Report {
        runner: env!("CARGO_PKG_VERSION"),
        catalogue: file.catalogue.clone(),
        target: target_name.to_owned(),
        capabilities: ctx.capabilities.clone(),
        started: unix,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        summary,
        cases: results,
    })
}

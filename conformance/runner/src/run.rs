//! A whole run: which cases, against what, with which expected failures.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::engine::{CaseResult, Context, Target, Verdict, run_case};
use crate::report::{Report, Summary};
use crate::scenario::{Case, Level, Role, ScenarioFile};

/// How long after a case in which the implementation closed a connection the runner
/// waits to see whether it exited.
const CRASH_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Which cases to run.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Only these ids.
    pub cases: Vec<String>,
    /// Only these groups.
    pub groups: Vec<String>,
    /// Also run `should` cases.
    pub strict: bool,
    /// The shell command that starts the implementation as a client (once per client
    /// case); client cases are skipped without it.
    pub client_command: Option<String>,
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

/// Records that the implementation crashed during `result`'s case.
fn mark_crash(result: &mut CaseResult, status: &str) {
    if result
        .actual
        .as_deref()
        .is_some_and(|a| a.contains("crashed"))
    {
        return;
    }
    result.verdict = Verdict::Failed;
    let before = result
        .actual
        .take()
        .map(|a| format!(" ({a})"))
        .unwrap_or_default();
    result.actual = Some(format!(
        "the implementation crashed ({status}); restarted for the next case{before}"
    ));
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
        if case.role == Role::Client && selection.client_command.is_none() {
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
        if case.role == Role::Server && matches!(target, Target::Absent) {
            results.push(skipped(
                case,
                "no implementation as server (--connect or --spawn)".to_owned(),
            ));
            continue;
        }
        if let (Role::Client, Some(command)) = (case.role, &selection.client_command) {
            results.push(crate::engine::run_client_case(ctx, command, case));
            continue;
        }
        // A crash that surfaced only now happened during the case before.
        if let Some(status) = target.crashed()
            && let Some(previous) = results
                .iter_mut()
                .rev()
                .find(|r: &&mut CaseResult| r.verdict != Verdict::Skipped)
        {
            mark_crash(previous, &status);
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
        // When the implementation closed a connection, give a dying process the moment
        // it needs to become a reapable exit status, so its crash is counted here.
        let closed = result.transcript.iter().any(|event| event.kind == "closed");
        let crash = if closed {
            target.crashed_within(CRASH_GRACE)
        } else {
            target.crashed()
        };
        if let Some(status) = crash {
            mark_crash(&mut result, &status);
        }
        results.push(result);
    }
    // The last case's crash, if the process is gone by now.
    std::thread::sleep(std::time::Duration::from_millis(50));
    if let Some(status) = target.crashed()
        && let Some(last) = results
            .iter_mut()
            .rev()
            .find(|r: &&mut CaseResult| r.verdict != Verdict::Skipped)
    {
        mark_crash(last, &status);
    }
    for result in &mut results {
        if let Some(reason) = expected_failures.get(&result.id) {
            result.verdict = match result.verdict {
                Verdict::Failed => Verdict::ExpectedFailure,
                Verdict::Ok | Verdict::NonStrict => {
                    result.actual = Some(format!("passed, but expected to fail: {reason}"));
                    Verdict::UnexpectedPass
                }
                other => other,
            };
        }
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

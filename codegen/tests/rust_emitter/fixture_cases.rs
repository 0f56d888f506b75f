//! Runs `cases.json` against the fixture catalogues' generated modules. Written into a
//! temporary crate by `codegen/tests/rust_emitter.rs`, which also writes `cases.json`:
//! every example of every type, and hand-written inputs the wire must accept or reject.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

#[path = "common/json_eq.rs"]
mod json_eq;

use serde_json::Value;

/// The round trip `codec` of `module` on the type named `ty`.
fn run(module: &str, codec: &str, ty: &str, input: Value) -> Option<Result<Value, String>> {
    let json = |result: Option<Result<Value, serde_json::Error>>| {
        result.map(|r| r.map_err(|e| e.to_string()))
    };
    match (module, codec) {
        ("everything", "json") => json(ipcspec_generated::everything::registries::json_roundtrip(ty, input)),
        ("everything", "binary") => ipcspec_generated::everything::registries::binary_roundtrip(ty, input),
        ("binwire", "json") => json(ipcspec_generated::binwire::registries::json_roundtrip(ty, input)),
        ("binwire", "binary") => ipcspec_generated::binwire::registries::binary_roundtrip(ty, input),
        ("altheader", "json") => json(ipcspec_generated::altheader::registries::json_roundtrip(ty, input)),
        ("altheader", "binary") => ipcspec_generated::altheader::registries::binary_roundtrip(ty, input),
        _ => None,
    }
}

/// What is wrong with one case's outcome, if anything.
fn check(case: &Value) -> Option<String> {
    let field = |key: &str| case[key].as_str().unwrap_or_default();
    let input = &case["input"];
    let outcome = run(
        field("module"),
        field("codec"),
        field("type"),
        input.clone(),
    );
    let expect = &case["expect"];
    match outcome {
        None => Some("no such module, codec or type".to_owned()),
        Some(Ok(output)) => {
            let wanted = if expect.as_str() == Some("same") {
                Some(input)
            } else {
                expect.get("ok")
            };
            match wanted {
                Some(wanted) if json_eq::same(wanted, &output) => None,
                Some(wanted) => Some(format!("came back as {output}, expected {wanted}")),
                None => Some(format!(
                    "accepted as {output}, expected an error containing {}",
                    expect["error"]
                )),
            }
        }
        Some(Err(error)) => match expect["error"].as_str() {
            Some(part) if error.contains(part) => None,
            Some(part) => Some(format!("error {error:?} does not contain {part:?}")),
            None => Some(format!("rejected: {error}")),
        },
    }
}

#[test]
fn cases() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("../cases.json")).unwrap();
    assert!(!cases.is_empty(), "no cases");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case).map(|problem| format!("{}: {problem}", case["name"])))
        .collect();
    println!("{} case(s) checked", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

//! The generated TypeScript type-checks under `tsc --strict`, accepts valid messages
//! (`tests/ts/usage.ts`) and rejects misuse (`tests/ts/misuse_*.ts`, each with the TS error
//! code it must fail with). tsc is the project's own (`tools/node`, installed by
//! `cargo xtask test` with `npm ci`); a missing tsc fails the tests with the command to run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipcspec_codegen::output::Target;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tsc() -> PathBuf {
    let tsc = root().join("tools/node/node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "{} is missing: install the project's Node tools with `npm ci --prefix tools/node` \
         (`cargo xtask test` does it; it needs node and npm)",
        tsc.display()
    );
    tsc
}

/// A fresh work directory under the target dir.
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ts_compile")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The TypeScript of the fixture catalogues, written under `dir/fixtures`.
fn fixture_outputs(dir: &Path) -> Vec<PathBuf> {
    let fixtures = root().join("codegen/tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let report = ipcspec_codegen::check(&files);
    assert!(
        report.ok(),
        "{}",
        report.render(ipcspec_codegen::Format::Short, false)
    );
    let outputs = ipcspec_codegen::generate(&report.loaded, &[Target::Ts]).unwrap();
    let out_dir = dir.join("fixtures");
    std::fs::create_dir_all(&out_dir).unwrap();
    outputs
        .iter()
        .map(|file| {
            let path = out_dir.join(&file.path);
            std::fs::write(&path, &file.contents).unwrap();
            path
        })
        .collect()
}

fn generated_ts() -> Vec<PathBuf> {
    let dir = root().join("generated/ts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask codegen`", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ts"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no .ts in generated/ts; run `cargo xtask codegen`"
    );
    files
}

/// Writes a tsconfig (strict, no emit, `@generated/*` and `@fixtures/*` mapped) for `files`
/// and runs tsc on it. Returns whether it passed and what it printed.
fn run_tsc(dir: &Path, files: &[PathBuf]) -> (bool, String) {
    let config = serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "target": "ES2022",
            "module": "ES2022",
            "moduleResolution": "Bundler",
            "types": [],
            "noFallthroughCasesInSwitch": true,
            "paths": {
                "@generated/*": [root().join("generated/ts/*").display().to_string()],
                "@fixtures/*": [dir.join("fixtures/*").display().to_string()],
            },
        },
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
    });
    let config_path = dir.join("tsconfig.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let out = Command::new(tsc())
        .args(["--strict", "--noEmit", "--pretty", "false", "-p"])
        .arg(&config_path)
        .output()
        .expect("tsc runs (it needs node on PATH)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn generated_typescript_and_usage_type_check() {
    let dir = work_dir("usage");
    let mut files = generated_ts();
    files.extend(fixture_outputs(&dir));
    files.push(root().join("codegen/tests/ts/usage.ts"));
    let (ok, output) = run_tsc(&dir, &files);
    assert!(ok, "tsc --strict failed:\n{output}");
}

/// Error codes in tsc output (`file(1,2): error TS2322: ...`), with the files they are in.
fn errors(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let (location, rest) = line.split_once(": error ")?;
            let code = rest.split(':').next()?.to_owned();
            let file = location.split('(').next().unwrap_or(location).to_owned();
            Some((file, code))
        })
        .collect()
}

#[test]
fn misuse_fails_with_the_expected_error() {
    let dir = work_dir("misuse");
    fixture_outputs(&dir);
    let ts_dir = root().join("codegen/tests/ts");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&ts_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("misuse_") && n.ends_with(".ts"))
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 6,
        "expected the misuse fixtures in {}",
        ts_dir.display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(case).unwrap();
        let expected = source
            .split("(expected ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("{name}: its comment must say `(expected TSnnnn)`"))
            .to_owned();
        let (ok, output) = run_tsc(&dir, std::slice::from_ref(case));
        let found = errors(&output);
        let codes: BTreeSet<&str> = found.iter().map(|(_, c)| c.as_str()).collect();
        let elsewhere: Vec<&(String, String)> = found
            .iter()
            .filter(|(file, _)| !file.ends_with(&name))
            .collect();
        if ok {
            failures.push(format!("{name}: compiled, but must fail with {expected}"));
        } else if codes != BTreeSet::from([expected.as_str()]) || !elsewhere.is_empty() {
            failures.push(format!(
                "{name}: must fail only with {expected} in the file itself, got:\n{output}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Removes comments and string literals, so that words in docs do not count as code.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for n in chars.by_ref() {
                    if previous == '*' && n == '/' {
                        break;
                    }
                    previous = n;
                }
                out.push(' ');
            }
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for n in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if n == '\\' {
                        escaped = true;
                    } else if n == c {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn generated_typescript_never_uses_any() {
    let dir = work_dir("any");
    let mut files = generated_ts();
    files.extend(fixture_outputs(&dir));
    for file in files {
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        let uses_any = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .any(|word| word == "any");
        assert!(!uses_any, "{} uses `any`", file.display());
    }
    assert_eq!(
        code_only("a /* any */ b // any\n\"any\" c"),
        "a   b \n\"\" c"
    );
}

//! `cargo xtask test`: every check CI runs, in the order that fails fastest.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::project_root;

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(project_root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

pub fn run() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    crate::codegen::run(true)?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    node_tools()?;
    systemd_analyze()?;
    let (passed, failed) = cargo_test(&["test", "--workspace", "--locked"])?;
    // The closing line CI reads: the total over every test binary of the workspace.
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} test(s) failed");
    }
    Ok(())
}

/// Installs the project's Node tools (`tools/node`: the TypeScript compiler the codegen
/// tests run) with `npm ci` from the committed lockfile, unless they are already there.
fn node_tools() -> anyhow::Result<()> {
    let dir = project_root().join("tools/node");
    if dir.join("node_modules/.bin/tsc").exists() {
        return Ok(());
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    eprintln!("xtask: npm ci (in tools/node)");
    let status = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .map_err(|e| {
            anyhow::anyhow!(
                "running `{npm} ci` in tools/node: {e}. The tests need Node.js and npm to \
                 install the TypeScript compiler: install them (Debian/Ubuntu: \
                 `apt-get install nodejs npm`) and run `cargo xtask test` again"
            )
        })?;
    if !status.success() {
        bail!("`{npm} ci` in tools/node failed ({status})");
    }
    Ok(())
}

/// Installs `systemd-analyze` (Debian's `systemd` package), which the Migration tests
/// run to verify the shipped units, unless it is already there. Only `apt-get` is tried:
/// elsewhere the error says what to install.
fn systemd_analyze() -> anyhow::Result<()> {
    let present = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    let how = "the Migration tests verify the systemd units with `systemd-analyze`: install it \
               (Debian/Ubuntu: `apt-get install systemd`) and run `cargo xtask test` again";
    eprintln!("xtask: apt-get install systemd (for systemd-analyze)");
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", "systemd"][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| anyhow::anyhow!("running `apt-get {}`: {e}; {how}", args.join(" ")))?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status}); {how}", args.join(" "));
        }
    }
    Ok(())
}

/// Runs `cargo test`, streaming its output, and totals the `test result:` lines.
fn cargo_test(args: &[&str]) -> anyhow::Result<(u64, u64)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .args(args)
        .current_dir(project_root())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cargo}"))?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok((passed, failed))
}

/// The number before `label` in `ok. 12 passed; 0 failed; ...`.
fn count(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim_start())
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn totals_a_summary_line() {
        let line =
            "ok. 12 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s";
        assert_eq!(count(line, " passed"), 12);
        assert_eq!(count(line, " failed"), 3);
        assert_eq!(count("FAILED. 1 passed; 2 failed;", " failed"), 2);
    }
}

#![allow(clippy::unwrap_used)]
//! The conformance suite against the reference `migration-service` and
//! `migration-agent`: every must- and should-level case of
//! `conformance/scenarios/migration.json`, server and client, passes, run exactly as
//! `ipcspec-conformance run --spawn conformance/migration-service.sh --client-command
//! conformance/migration-agent.sh` runs it.

use std::path::Path;

use ipcspec_conformance::engine::{Context, Target, Verdict};
use ipcspec_conformance::run::{Selection, load_scenarios, run};

#[test]
fn the_reference_service_passes_the_migration_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = load_scenarios(&root.join("conformance/scenarios/migration.json")).unwrap();
    let ctx = Context::new(
        &root.join("specs/migration.json"),
        Some(&root.join("conformance/capabilities/migration-service.json")),
        ipcspec_conformance::engine::default_other_user(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "MIGRATION_SERVICE={} exec {}",
        env!("CARGO_BIN_EXE_migration-service"),
        root.join("conformance/migration-service.sh").display()
    );
    let mut target = Target::Spawn {
        command: command.clone(),
        socket: dir.path().join("impl.sock"),
        log: dir.path().join("implementation.log"),
        child: None,
    };
    let selection = Selection {
        strict: true,
        client_command: Some(format!(
            "MIGRATION_AGENT={} exec {}",
            env!("CARGO_BIN_EXE_migration-agent"),
            root.join("conformance/migration-agent.sh").display()
        )),
        ..Selection::default()
    };
    let report = run(
        &ctx,
        &file,
        &mut target,
        &command,
        &selection,
        &Default::default(),
    );
    target.stop();
    let report = report.unwrap();
    report.write(&dir.path().join("out")).unwrap();
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Ok))
        .map(|c| {
            format!(
                "{} {:?}: expected {}; actual {:?}",
                c.id, c.verdict, c.expected, c.actual
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{failed:#?}\nimplementation log:\n{}",
        std::fs::read_to_string(dir.path().join("implementation.log")).unwrap_or_default()
    );
    assert_eq!(report.cases.len(), file.cases.len());
    let human = report.human();
    assert_eq!(
        human.lines().last().unwrap(),
        format!("{} passed, 0 failed", file.cases.len())
    );
    for name in ["report.json", "junit.xml", "report.html"] {
        assert!(dir.path().join("out").join(name).exists(), "{name} missing");
    }
}

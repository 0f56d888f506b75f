//! The generated C headers and the generated Rust `repr(C)` structs agree byte for byte:
//! a C program compiled against each header prints `sizeof` and `offsetof` of every
//! struct that Rust lays out as `repr(C)`, and the numbers must equal the `size_of` and
//! `offset_of!` the Rust compiler measured (`C_LAYOUTS` in the generated crate). Also the
//! generated JSON envelope reads and writes the seeds' own example messages.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

type Layouts = &'static [ipcspec_runtime::binary::CLayout];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compiles and runs a program printing `name size` and `name.member offset` lines.
fn c_measurements(header: &str, layouts: Layouts) -> BTreeMap<String, usize> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_rust_layout");
    std::fs::create_dir_all(&dir).unwrap();
    let mut program = format!(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"{header}\"\nint main(void) {{\n"
    );
    for layout in layouts {
        let (name, members) = (layout.name, layout.members);
        program.push_str(&format!(
            "  printf(\"{name} %zu\\n\", sizeof(struct {name}));\n"
        ));
        for (member, _) in members {
            program.push_str(&format!(
                "  printf(\"{name}.{member} %zu\\n\", offsetof(struct {name}, {member}));\n"
            ));
        }
    }
    program.push_str("  return 0;\n}\n");
    let stem = header.trim_end_matches(".h");
    let source = dir.join(format!("{stem}.c"));
    let binary = dir.join(stem);
    std::fs::write(&source, program).unwrap();
    let compiled = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(root().join("generated/c"))
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .output()
        .expect("gcc is installed (apt-get install gcc)");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let run = Command::new(&binary).output().unwrap();
    assert!(run.status.success());
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.split_once(' ').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn c_and_rust_agree_on_every_repr_c_struct() {
    use ipcspec_generated::vexfs;
    let mut compared = 0;
    for (header, layouts) in [
        ("vexfs.h", vexfs::registries::C_LAYOUTS),
        // JSON-only catalogues have no C layout to compare.
        ("migration.h", &[][..]),
        ("direct-ipc.h", &[]),
        ("xstatenet.h", &[]),
    ] {
        if layouts.is_empty() {
            continue;
        }
        let c = c_measurements(header, layouts);
        for layout in layouts {
            let name = layout.name;
            assert_eq!(
                c[name], layout.size,
                "sizeof(struct {name}) in C vs size_of in Rust"
            );
            for (member, offset) in layout.members {
                let key = format!("{name}.{member}");
                assert_eq!(c[&key], *offset, "offsetof({name}, {member}) in C vs Rust");
            }
            compared += 1;
        }
    }
    // vexfs's ioctl arguments and header are repr(C): the comparison is never empty.
    assert!(compared >= 5, "only {compared} structs compared");
    assert!(
        vexfs::registries::C_LAYOUTS
            .iter()
            .any(|l| l.name == "MessageHeader" && l.size == 40)
    );
}

#[test]
fn the_seed_001_example_message_reads_and_writes_through_the_envelope() {
    use ipcspec_generated::migration::Envelope;
    // The seed's envelope, with its example id and timestamp, as a HEARTBEAT.
    let text = r#"{"id":"unique-message-id","type":"HEARTBEAT","timestamp":"2024-01-01T12:00:00Z","payload":{}}"#;
    let received: Envelope = serde_json::from_str(text).unwrap();
    assert_eq!(received.message_type, "HEARTBEAT");
    assert_eq!(received.id, "unique-message-id");
    assert_eq!(received.payload.get(), "{}");
    assert_eq!(received.correlation_id, None);
    let typed = Envelope {
        id: received.id.clone(),
        message_type: received.message_type.clone(),
        timestamp: received.timestamp,
        payload: serde_json::json!({}),
        correlation_id: None,
    };
    assert_eq!(serde_json::to_string(&typed).unwrap(), text);
    // The catalogue rejects undeclared keys, in the envelope too.
    let extra = text.replace("\"payload\"", "\"extra\":1,\"payload\"");
    let error = serde_json::from_str::<Envelope>(&extra).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `extra`"),
        "{error}"
    );
    // An id is required on every message.
    let no_id = text.replace("\"id\":\"unique-message-id\",", "");
    assert!(serde_json::from_str::<Envelope>(&no_id).is_err());
}

#[test]
fn the_seed_004_message_without_id_reads_through_the_envelope() {
    use ipcspec_generated::xstatenet::Envelope;
    // Exactly what the seed's InterProcessClient writes: no Id, PascalCase keys.
    let text = r#"{"Type":"Register","Payload":{"MachineId":"machine-1","ProcessName":"ui","ProcessId":42,"RegisteredAt":"2025-01-01T00:00:00.1234567Z"}}"#;
    let received: Envelope = serde_json::from_str(text).unwrap();
    assert_eq!(received.message_type, "Register");
    assert_eq!(received.id, None);
    assert!(received.payload.get().contains("machine-1"));
}

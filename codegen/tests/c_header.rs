#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

//! The C headers compile as C11 and C++17 with every warning an error, the seed's C
//! examples compile unchanged against `generated/c/vexfs.h`, and the compiler's `sizeof` and
//! `offsetof` of every C-layout struct equal the layouts in the IR. A missing compiler is a
//! failure that says what to install.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipcspec_codegen::ir::{self, Module, TypeKind};
use ipcspec_codegen::output::Target;

const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"];
const CXX_FLAGS: &[&str] = &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh work directory under the target dir.
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c_header")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `gcc` or `g++`, after checking that it runs.
fn compiler(name: &str) -> &str {
    let works = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "`{name}` is needed to check the C headers; install it (Debian/Ubuntu: `apt-get install gcc g++`)"
    );
    name
}

fn run(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn catalogues(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "catalogue.schema.json")
        })
        .collect();
    files.sort();
    files
}

/// The IR of each catalogue.
fn modules(files: &[PathBuf]) -> Vec<Module> {
    let report = ipcspec_codegen::check(files);
    assert!(
        report.ok(),
        "{}",
        report.render(ipcspec_codegen::Format::Short, false)
    );
    report
        .loaded
        .iter()
        .map(|l| ir::lower(l.valid().unwrap()).unwrap())
        .collect()
}

/// The checked-in headers of `specs/`.
fn generated_headers() -> Vec<PathBuf> {
    let dir = root().join("generated/c");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask codegen`", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        catalogues("specs").len(),
        "one header per catalogue in generated/c; run `cargo xtask codegen`"
    );
    files
}

/// The headers of the fixture catalogues, generated into `dir`.
fn fixture_headers(dir: &Path) -> Vec<PathBuf> {
    let report = ipcspec_codegen::check(&catalogues("codegen/tests/fixtures"));
    let outputs = ipcspec_codegen::generate(&report.loaded, &[Target::C]).unwrap();
    outputs
        .iter()
        .map(|file| {
            let path = dir.join(&file.path);
            std::fs::write(&path, &file.contents).unwrap();
            path
        })
        .collect()
}

/// Compiles a translation unit including `headers` as C11 and as C++17.
fn compile_including(dir: &Path, name: &str, headers: &[PathBuf]) -> Vec<String> {
    let includes: String = headers
        .iter()
        .map(|h| format!("#include \"{}\"\n", h.display()))
        .collect();
    let body = format!("{includes}\nint main(void) {{ return 0; }}\n");
    let mut failures = Vec::new();
    for (compiler_name, flags, ext) in [("gcc", C_FLAGS, "c"), ("g++", CXX_FLAGS, "cpp")] {
        let source = dir.join(format!("{name}.{ext}"));
        std::fs::write(&source, &body).unwrap();
        let (ok, output) = run(Command::new(compiler(compiler_name))
            .args(flags)
            .args(["-fsyntax-only"])
            .arg(&source));
        if !ok {
            failures.push(format!(
                "{compiler_name} {} {name}:\n{output}",
                flags.join(" ")
            ));
        }
    }
    failures
}

#[test]
fn headers_compile_as_c11_and_cpp17() {
    let dir = work_dir("compile");
    let generated = generated_headers();
    let mut failures = Vec::new();
    for header in generated.iter().chain(&fixture_headers(&dir)) {
        let name = header
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        failures.extend(compile_including(&dir, &name, std::slice::from_ref(header)));
    }
    // The headers of all the catalogues in one translation unit: no macro clashes.
    failures.extend(compile_including(&dir, "all_specs", &generated));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_examples_compile_against_the_vexfs_header() {
    let (ok, output) = run(Command::new(compiler("gcc"))
        .args(C_FLAGS)
        .args(["-fsyntax-only", "-I"])
        .arg(root().join("generated/c"))
        .arg(root().join("codegen/tests/c/seed_examples.c")));
    assert!(
        ok,
        "the seed's C examples do not compile against generated/c/vexfs.h:\n{output}"
    );
}

/// A C program printing, for every C-layout struct of `module`, one JSON line
/// `{"module":..,"struct":..,"size":..,"align":..,"offsets":{"field":offset,..}}`.
fn layout_program(module: &Module, header: &Path) -> String {
    let mut body = String::new();
    for def in &module.types {
        let TypeKind::Struct(s) = &def.kind else {
            continue;
        };
        if s.c_layout.is_none() {
            continue;
        }
        let name = &def.idents.c;
        body.push_str(&format!(
            "    printf(\"{{\\\"module\\\":\\\"{}\\\",\\\"struct\\\":\\\"{name}\\\",\\\"size\\\":%zu,\\\"align\\\":%zu,\\\"offsets\\\":{{\", sizeof(struct {name}), _Alignof(struct {name}));\n",
            module.name
        ));
        let fixed: Vec<&ir::Field> = s.fields.iter().filter(|f| f.c_offset.is_some()).collect();
        for (i, f) in fixed.iter().enumerate() {
            let comma = if i + 1 < fixed.len() { "," } else { "" };
            body.push_str(&format!(
                "    printf(\"\\\"{}\\\":%zu{comma}\", offsetof(struct {name}, {}));\n",
                f.wire, f.idents.c
            ));
        }
        body.push_str("    printf(\"}}\\n\");\n");
    }
    format!(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"{}\"\n\nint main(void)\n{{\n{body}    return 0;\n}}\n",
        header.display()
    )
}

#[derive(Debug, PartialEq)]
struct Layout {
    size: u64,
    align: u64,
    offsets: BTreeMap<String, u64>,
}

/// Compiles and runs the layout program of every catalogue with C-layout structs and
/// compares what the compiler says with the IR. The JSON lines are kept in
/// `<target>/tmp/c_header/layouts/layouts.jsonl`, for comparison with other languages.
#[test]
fn compiled_layouts_equal_the_ir() {
    let dir = work_dir("layouts");
    let fixture_dir = dir.join("fixtures");
    std::fs::create_dir_all(&fixture_dir).unwrap();
    fixture_headers(&fixture_dir);
    let mut cases: Vec<(Module, PathBuf)> = Vec::new();
    for module in modules(&catalogues("specs")) {
        let header = root()
            .join("generated/c")
            .join(format!("{}.h", module.name));
        cases.push((module, header));
    }
    for module in modules(&catalogues("codegen/tests/fixtures")) {
        let header = fixture_dir.join(format!("{}.h", module.name));
        cases.push((module, header));
    }
    let mut lines = Vec::new();
    let mut checked = 0;
    for (module, header) in &cases {
        let source = dir.join(format!("{}_layout.c", module.name.replace('-', "_")));
        let binary = dir.join(format!("{}_layout", module.name.replace('-', "_")));
        std::fs::write(&source, layout_program(module, header)).unwrap();
        let (ok, output) = run(Command::new(compiler("gcc"))
            .args(C_FLAGS)
            .arg("-o")
            .arg(&binary)
            .arg(&source));
        assert!(
            ok,
            "layout program of {} does not compile:\n{output}",
            module.name
        );
        let out = Command::new(&binary).output().unwrap();
        assert!(
            out.status.success(),
            "layout program of {} failed",
            module.name
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let printed: BTreeMap<String, Layout> = stdout
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let offsets = v["offsets"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, o)| (k.clone(), o.as_u64().unwrap()))
                    .collect();
                let layout = Layout {
                    size: v["size"].as_u64().unwrap(),
                    align: v["align"].as_u64().unwrap(),
                    offsets,
                };
                (v["struct"].as_str().unwrap().to_owned(), layout)
            })
            .collect();
        let expected: BTreeMap<String, Layout> = module
            .types
            .iter()
            .filter_map(|def| match &def.kind {
                TypeKind::Struct(s) => s.c_layout.as_ref().map(|l| {
                    let offsets = l
                        .fields
                        .iter()
                        .map(|f| (f.name.clone(), f.offset))
                        .collect();
                    let layout = Layout {
                        size: l.size,
                        align: l.align,
                        offsets,
                    };
                    (def.idents.c.clone(), layout)
                }),
                _ => None,
            })
            .collect();
        assert_eq!(
            printed, expected,
            "C layouts of {} differ from the IR",
            module.name
        );
        checked += expected.len();
        lines.extend(stdout.lines().map(str::to_owned));
    }
    assert!(
        checked >= 30,
        "expected the C-layout structs of vexfs and the fixtures, got {checked}"
    );
    std::fs::write(dir.join("layouts.jsonl"), lines.join("\n") + "\n").unwrap();
}

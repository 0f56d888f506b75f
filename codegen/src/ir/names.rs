//! Case conversion and keyword escaping for every target language, in one pure module.
//!
//! Catalogue names are written as the protocol spells them (`BACKUP_REQUEST`,
//! `service_id_ptr`, `MachineId`). Each backend needs its own spelling: Rust types in
//! UpperCamelCase and members in snake_case, C as written (the seeds' C names must
//! compile unchanged), TypeScript as written for keys and enum members. These functions
//! are the only place those rules live.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// Rust keywords (2015-2024 editions, strict and reserved) that need `r#` or a rename.
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// Keywords `r#` cannot escape.
const RUST_UNRAW: &[&str] = &["crate", "self", "Self", "super"];

/// C11 and C++17 keywords (the headers compile as both), plus names `<stdint.h>` and
/// `<linux/ioctl.h>` reserve.
const C_KEYWORDS: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_Bool",
    "_Complex",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "bitand",
    "bitor",
    "bool",
    "catch",
    "char16_t",
    "char32_t",
    "class",
    "compl",
    "constexpr",
    "const_cast",
    "decltype",
    "delete",
    "dynamic_cast",
    "explicit",
    "export",
    "false",
    "friend",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "static_assert",
    "static_cast",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "xor",
    "xor_eq",
    "int8_t",
    "int16_t",
    "int32_t",
    "int64_t",
    "uint8_t",
    "uint16_t",
    "uint32_t",
    "uint64_t",
];

/// TypeScript reserved words that cannot name a type, enum member or binding.
const TS_RESERVED: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "implements",
    "interface",
    "let",
    "package",
    "private",
    "protected",
    "public",
    "static",
    "yield",
    "any",
    "boolean",
    "number",
    "string",
    "symbol",
    "unknown",
    "never",
    "object",
    "bigint",
    "undefined",
];

/// A Rust type name: UpperCamelCase, keyword-safe. `BACKUP_REQUEST` -> `BackupRequest`,
/// `IpcServiceRegisterRequest` stays.
pub fn rust_type(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    if camel.is_empty() {
        return "Unnamed".into();
    }
    rust_escape(prefix_digit(camel, 'T'))
}

/// A Rust field, method or module name: snake_case, keyword-safe (`type` -> `r#type`).
pub fn rust_member(name: &str) -> String {
    let snake = name.to_snake_case();
    if snake.is_empty() {
        return "unnamed".into();
    }
    rust_escape(prefix_digit(snake, '_'))
}

/// A Rust constant name: SCREAMING_SNAKE_CASE.
pub fn rust_const(name: &str) -> String {
    let shouty = name.to_shouty_snake_case();
    rust_escape(prefix_digit(shouty, '_'))
}

/// A Rust enum variant: UpperCamelCase (`RENDERER` -> `Renderer`, `Float32` stays).
pub fn rust_variant(name: &str) -> String {
    rust_type(name)
}

fn rust_escape(name: String) -> String {
    if RUST_UNRAW.contains(&name.as_str()) {
        format!("{name}_")
    } else if RUST_KEYWORDS.contains(&name.as_str()) {
        format!("r#{name}")
    } else {
        name
    }
}

fn prefix_digit(name: String, prefix: char) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{prefix}{name}")
    } else {
        name
    }
}

/// A C identifier: the catalogue spelling, with `_` appended to a keyword.
pub fn c_ident(name: &str) -> String {
    if C_KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// A C macro or enumerator: SCREAMING_SNAKE_CASE parts joined by `_`.
pub fn c_macro(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.to_shouty_snake_case())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A TypeScript type or enum name: the catalogue spelling when it is a legal identifier
/// that is not reserved, else UpperCamelCase with a `_` suffix on a reserved word.
pub fn ts_type(name: &str) -> String {
    let name = if is_ts_identifier(name) {
        name.to_owned()
    } else {
        name.to_upper_camel_case()
    };
    if TS_RESERVED.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// A TypeScript enum member: the catalogue spelling (enum members may be reserved words
/// when accessed as `Enum.member`, but not `default`-like keywords in declarations).
pub fn ts_member(name: &str) -> String {
    if TS_RESERVED.contains(&name) || !is_ts_identifier(name) {
        format!("{name}_")
    } else {
        name.to_owned()
    }
}

/// A TypeScript property key: bare when it is an identifier, else a quoted string.
pub fn ts_key(wire: &str) -> String {
    if is_ts_identifier(wire) {
        wire.to_owned()
    } else {
        format!("{wire:?}")
    }
}

fn is_ts_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// An anchor for generated documentation: lower kebab-case, stable across runs.
pub fn anchor(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| heck::ToKebabCase::to_kebab_case(*p))
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names() {
        let table = [
            ("BACKUP_REQUEST", "BackupRequest"),
            ("IpcServiceRegisterRequest", "IpcServiceRegisterRequest"),
            ("HealthStatus", "HealthStatus"),
            ("RENDERER", "Renderer"),
            ("Float32", "Float32"),
            ("self", "Self_"),
        ];
        for (from, to) in table {
            assert_eq!(rust_type(from), to, "{from}");
        }
        let members = [
            ("userId", "user_id"),
            ("service_id_ptr", "service_id_ptr"),
            ("MachineId", "machine_id"),
            ("type", "r#type"),
            ("Type", "r#type"),
            ("self", "self_"),
            ("BACKUP_REQUEST", "backup_request"),
            ("webContentsId", "web_contents_id"),
        ];
        for (from, to) in members {
            assert_eq!(rust_member(from), to, "{from}");
        }
        assert_eq!(rust_const("IPC_MAGIC"), "IPC_MAGIC");
    }

    #[test]
    fn c_names() {
        assert_eq!(c_ident("service_id_ptr"), "service_id_ptr");
        assert_eq!(c_ident("default"), "default_");
        assert_eq!(c_ident("class"), "class_");
        assert_eq!(
            c_macro(&["vexfs", "DataType", "Float32"]),
            "VEXFS_DATA_TYPE_FLOAT32"
        );
        assert_eq!(
            c_macro(&["direct-ipc", "MSG", "MAP_UPDATE"]),
            "DIRECT_IPC_MSG_MAP_UPDATE"
        );
    }

    #[test]
    fn ts_names() {
        assert_eq!(ts_type("ProcessType"), "ProcessType");
        assert_eq!(ts_type("string"), "string_");
        assert_eq!(ts_member("RENDERER"), "RENDERER");
        assert_eq!(ts_member("default"), "default_");
        assert_eq!(ts_key("webContentsId"), "webContentsId");
        assert_eq!(ts_key("x-y"), "\"x-y\"");
        assert_eq!(anchor(&["msg", "BACKUP_REQUEST"]), "msg-backup-request");
    }
}

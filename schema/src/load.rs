//! Loading a catalogue: parse, deserialize item by item, validate.
//!
//! Loading is total: it always returns every diagnostic it can find in one pass. Each item
//! of a collection (a type, a message, ...) is deserialized on its own, so one malformed
//! item is reported and skipped while the others are still read and validated. Semantic
//! validation runs only when the document's shape is sound, so it never reports an
//! "unknown type" that is really a typo in a skipped definition.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diagnostic::Diagnostic;
use crate::model::{Catalogue, Src};
use crate::source::{self, SourceMap};
use crate::validate;

/// A catalogue file's text and the positions of its nodes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as given (shown in diagnostics).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// JSON pointer -> spans.
    pub map: SourceMap,
}

/// The outcome of loading one catalogue.
#[derive(Debug)]
pub struct Loaded {
    /// The source the diagnostics point into.
    pub source: SourceFile,
    /// The catalogue, when the document had the right shape (it may still have semantic errors).
    pub catalogue: Option<Catalogue>,
    /// Every problem found, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// True when no diagnostic is an error.
    pub fn is_ok(&self) -> bool {
        self.catalogue.is_some() && !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The catalogue if it has no errors.
    pub fn valid(&self) -> Option<&Catalogue> {
        if self.is_ok() {
            self.catalogue.as_ref()
        } else {
            None
        }
    }
}

/// Reads and loads the catalogue at `path`. An unreadable file is reported as a diagnostic.
pub fn load_file(path: &Path) -> Loaded {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(path, text),
        Err(error) => Loaded {
            source: SourceFile {
                path: path.to_owned(),
                text: String::new(),
                map: SourceMap::default(),
            },
            catalogue: None,
            diagnostics: vec![
                Diagnostic::error(
                    "ipcspec::io",
                    format!("cannot read {}: {error}", path.display()),
                )
                .help("check the path and the file's permissions"),
            ],
        },
    }
}

/// Loads catalogue text; `path` is used only to name the file in diagnostics.
pub fn load_str(path: &Path, text: String) -> Loaded {
    let parsed = source::parse(&text);
    let mut diagnostics = parsed.diagnostics;
    if let Some(value) = &parsed.value {
        blank_docs(value, &Src::default(), &mut diagnostics);
    }
    let catalogue = parsed
        .value
        .and_then(|value| deserialize(value, &mut diagnostics));
    if let Some(catalogue) = &catalogue {
        if !diagnostics.iter().any(Diagnostic::is_error) {
            diagnostics.extend(validate::validate(catalogue));
        }
    }
    let map = parsed.map;
    // File order, so a reader fixes them top to bottom; ties keep discovery order.
    diagnostics.sort_by_key(|d| {
        d.labels.first().map_or(0, |label| match &label.location {
            crate::diagnostic::Location::Node(src, part) => map.span(src, *part).0,
            crate::diagnostic::Location::Span { start, .. } => *start,
        })
    });
    Loaded {
        source: SourceFile {
            path: path.to_owned(),
            text,
            map,
        },
        catalogue,
        diagnostics,
    }
}

/// Items that remember where they were defined.
trait Located: DeserializeOwned {
    fn set_src(&mut self, src: Src);
}

macro_rules! located {
    ($($ty:ty),*) => {$(
        impl Located for $ty {
            fn set_src(&mut self, src: Src) {
                self.src = src;
            }
        }
    )*};
}
located!(
    crate::model::Role,
    crate::model::Channel,
    crate::model::Message,
    crate::model::Ioctl,
    crate::model::Constant,
    crate::model::ErrorCode,
    crate::model::StateMachine
);

impl Located for crate::model::TypeDef {
    fn set_src(&mut self, src: Src) {
        crate::model::TypeDef::set_src(self, src);
    }
}

fn deserialize(value: serde_json::Value, diagnostics: &mut Vec<Diagnostic>) -> Option<Catalogue> {
    let serde_json::Value::Object(mut root) = value else {
        diagnostics.push(
            Diagnostic::error("ipcspec::shape", "a catalogue must be a JSON object")
                .at(&Src::default(), "not an object")
                .help("start from an example in specs/README.md"),
        );
        return None;
    };
    let roles = take_items(&mut root, "roles", diagnostics);
    let channels = take_items(&mut root, "channels", diagnostics);
    let types = take_items(&mut root, "types", diagnostics);
    let messages = take_items(&mut root, "messages", diagnostics);
    let ioctls = take_items(&mut root, "ioctls", diagnostics);
    let constants = take_items(&mut root, "constants", diagnostics);
    let errors = take_items(&mut root, "errors", diagnostics);
    let state_machines = take_items(&mut root, "stateMachines", diagnostics);
    let mut catalogue: Catalogue = from_value(
        serde_json::Value::Object(root),
        &Src::default(),
        diagnostics,
    )?;
    let items_ok = [
        roles.is_some(),
        channels.is_some(),
        types.is_some(),
        messages.is_some(),
        ioctls.is_some(),
        constants.is_some(),
        errors.is_some(),
        state_machines.is_some(),
    ];
    catalogue.roles = roles.unwrap_or_default();
    catalogue.channels = channels.unwrap_or_default();
    catalogue.types = types.unwrap_or_default();
    catalogue.messages = messages.unwrap_or_default();
    catalogue.ioctls = ioctls.unwrap_or_default();
    catalogue.constants = constants.unwrap_or_default();
    catalogue.errors = errors.unwrap_or_default();
    catalogue.state_machines = state_machines.unwrap_or_default();
    items_ok.iter().all(|ok| *ok).then_some(catalogue)
}

/// Removes the array at `key` from `root` (leaving an empty array so the root still has
/// the member) and deserializes each element on its own. Returns `None` when any element
/// failed; a member that is not an array is left for the root's deserializer to report.
fn take_items<T: Located>(
    root: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Vec<T>> {
    let Some(serde_json::Value::Array(elements)) = root.get_mut(key) else {
        return Some(Vec::new());
    };
    let elements = std::mem::take(elements);
    let base = Src::default().at(key);
    let mut items = Vec::with_capacity(elements.len());
    let mut all_ok = true;
    for (index, element) in elements.into_iter().enumerate() {
        let src = base.at(index);
        match from_value::<T>(element, &src, diagnostics) {
            Some(mut item) => {
                item.set_src(src);
                items.push(item);
            }
            None => all_ok = false,
        }
    }
    all_ok.then_some(items)
}

/// Deserializes `value` (found at `at`), turning a failure into a located diagnostic.
fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    at: &Src,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(item) => Some(item),
        Err(error) => {
            let mut src = at.clone();
            for segment in error.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => src = src.at(index),
                    serde_path_to_error::Segment::Map { key } => src = src.at(key),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => {}
                }
            }
            diagnostics.push(shape_diagnostic(error.inner().to_string(), &src));
            None
        }
    }
}

fn shape_diagnostic(message: String, src: &Src) -> Diagnostic {
    // serde's messages are precise ("unknown field `acknowleged`, expected one of ...",
    // "missing field `doc`"); the hint adds where to look things up.
    let help = if message.starts_with("unknown field") {
        "remove the key or correct its spelling; specs/README.md lists every key"
    } else if message.starts_with("missing field") {
        "add the member; specs/README.md shows every construct with its required keys"
    } else if message.starts_with("unknown variant") {
        "use one of the listed values"
    } else {
        "see specs/README.md for the expected form; editors that read `$schema` complete it"
    };
    let diagnostic = Diagnostic::error("ipcspec::shape", message);
    let diagnostic = if help.starts_with("remove the key") {
        diagnostic.at_key(src, "not a key of this object")
    } else {
        diagnostic.at(src, "")
    };
    diagnostic.help(help)
}

/// Every `doc` in the language is prose a reader relies on: a blank one is an error.
fn blank_docs(value: &serde_json::Value, at: &Src, diagnostics: &mut Vec<Diagnostic>) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                let src = at.at(key);
                if key == "doc" && member.as_str().is_some_and(|d| d.trim().is_empty()) {
                    diagnostics.push(
                        Diagnostic::error("ipcspec::empty-doc", "documentation is empty")
                            .at(&src, "")
                            .help("say what the item means, with its unit; where a seed is silent, start with \"Catalogue decision:\" and say why"),
                    );
                }
                blank_docs(member, &src, diagnostics);
            }
        }
        serde_json::Value::Array(elements) => {
            for (i, element) in elements.iter().enumerate() {
                blank_docs(element, &at.at(i), diagnostics);
            }
        }
        _ => {}
    }
}

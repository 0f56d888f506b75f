//! Binary codec errors: what went wrong, where (byte offset), and in which field.

use std::fmt;

/// One step of the path to the failing field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Type(&'static str),
    Field(&'static str),
    Index(usize),
}

/// Field path, built innermost first as an error travels out of nested decoders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Path(Vec<Segment>);

impl Path {
    fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }
}

/// The path-recording methods both error types share: nested codecs wrap an error in
/// the field, index and type it happened in as it travels outwards.
macro_rules! path_methods {
    ($error:ident) => {
        impl $error {
            /// The failing field's path, like `Query.pairs[2].key` (empty for a bare value).
            pub fn path(&self) -> String {
                self.path.to_string()
            }

            /// Records that the error happened inside field `name`.
            #[must_use]
            pub fn in_field(mut self, name: &'static str) -> Self {
                self.path.push(Segment::Field(name));
                self
            }

            /// Records that the error happened inside element `index` of a list or array.
            #[must_use]
            pub fn at_index(mut self, index: usize) -> Self {
                self.path.push(Segment::Index(index));
                self
            }

            /// Records the outermost type being decoded or encoded.
            #[must_use]
            pub fn in_type(mut self, name: &'static str) -> Self {
                self.path.push(Segment::Type(name));
                self
            }
        }
    };
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in self.0.iter().rev() {
            match segment {
                Segment::Type(name) => f.write_str(name)?,
                Segment::Field(name) if first => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Fewer bytes remain than the value needs.
    #[error("needs {needed} byte(s) but only {available} remain")]
    Truncated {
        /// Bytes the value needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// Bytes follow the end of the value.
    #[error("{count} unexpected byte(s) after the end of the value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A `bool` byte other than 0 or 1.
    #[error("{value} is not a bool (0 or 1)")]
    InvalidBool {
        /// The byte read.
        value: u8,
    },
    /// An integer enum value the catalogue does not declare.
    #[error("{value} is not a value of {ty}")]
    UnknownEnumValue {
        /// The enum type.
        ty: &'static str,
        /// The value read.
        value: i128,
    },
    /// A padding or reserved field is not zero.
    #[error("padding is not zero")]
    NonZeroPadding,
    /// A `string` tail is not UTF-8.
    #[error("not UTF-8: {0}")]
    InvalidUtf8(std::str::Utf8Error),
    /// A count times the element size does not fit in memory.
    #[error("count {count} of {element_size}-byte elements is too large")]
    LengthOverflow {
        /// The count read.
        count: u64,
        /// Bytes per element.
        element_size: usize,
    },
    /// A value decodes to something its Rust type cannot hold.
    #[error("out of range: {0}")]
    OutOfRange(&'static str),
}

/// A decoding failure: the kind, the byte offset where the failing value starts, and the
/// path of the field being decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    offset: usize,
    path: Path,
}

impl DecodeError {
    /// An error of `kind` for the value starting at `offset`.
    pub fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError {
            kind,
            offset,
            path: Path::default(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// Byte offset of the failing value in the decoded input.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

path_methods!(DecodeError);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.0.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            DecodeErrorKind::InvalidUtf8(error) => Some(error),
            _ => None,
        }
    }
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeErrorKind {
    /// A tail's count field disagrees with the tail's length.
    #[error("the count field says {declared} but there are {actual}")]
    LengthMismatch {
        /// The count field's value.
        declared: u64,
        /// The tail's actual length (bytes or elements).
        actual: usize,
    },
    /// A padding or reserved field is not zero.
    #[error("padding is not zero")]
    NonZeroPadding,
    /// The value has no binary form (a timestamp before 1970, a duration over 584 years).
    #[error("out of range: {0}")]
    OutOfRange(&'static str),
}

/// An encoding failure and the path of the field being encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    kind: EncodeErrorKind,
    path: Path,
}

impl EncodeError {
    /// An error of `kind`.
    pub fn new(kind: EncodeErrorKind) -> Self {
        EncodeError {
            kind,
            path: Path::default(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &EncodeErrorKind {
        &self.kind
    }
}

path_methods!(EncodeError);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.0.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for EncodeError {}

//! C layout of structs: sizes, alignments and offsets computed by the model.
//!
//! The rules are the System V / Linux ABI rules every C compiler on the supported
//! targets follows: each member at the next multiple of its alignment, the struct's
//! alignment the largest member alignment, its size rounded up to that alignment. The
//! catalogue language demands that no padding be implicit, so a layout with a gap is an
//! error that says which padding field to add; the header that C sees and the bytes on
//! the wire then agree by construction, and generated code can assert every offset.

use std::collections::HashMap;

use crate::model::{
    Catalogue, Composite, Field, Layout, PrimitiveType, StructDef, TypeDef, TypeRef,
};

/// A field's place in a C struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CField {
    /// Member name.
    pub name: String,
    /// Byte offset from the start of the struct.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Alignment in bytes.
    pub align: u64,
}

/// The computed layout of a C-layout struct's fixed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CLayout {
    /// `sizeof`.
    pub size: u64,
    /// `_Alignof`.
    pub align: u64,
    /// Fixed members in order.
    pub fields: Vec<CField>,
    /// Names of the variable-length tail fields that follow the fixed part on the wire.
    pub tail: Vec<String>,
}

/// Why a struct has no valid C layout. `field` indexes the struct's `fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// The field's type cannot be represented in C layout.
    NotRepresentable { field: usize, reason: String },
    /// The compiler would insert `bytes` of padding before the field.
    ImplicitPadding {
        field: usize,
        offset: u64,
        bytes: u64,
    },
    /// The compiler would insert `bytes` of padding after the last field.
    TrailingPadding { size: u64, bytes: u64 },
    /// A fixed field follows a variable-length tail field.
    FixedAfterTail { field: usize },
    /// The struct contains itself.
    Recursive { field: usize },
}

/// Size and alignment of a type inside a C struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SizeAlign {
    size: u64,
    align: u64,
}

/// Computes C layouts, caching each struct's result.
#[derive(Debug)]
pub struct LayoutCalculator<'a> {
    types: HashMap<&'a str, &'a TypeDef>,
    cache: HashMap<String, Result<CLayout, LayoutError>>,
    in_progress: Vec<String>,
}

impl<'a> LayoutCalculator<'a> {
    /// A calculator over the types of `catalogue`.
    pub fn new(catalogue: &'a Catalogue) -> Self {
        LayoutCalculator {
            types: catalogue.types.iter().map(|t| (t.name(), t)).collect(),
            cache: HashMap::new(),
            in_progress: Vec::new(),
        }
    }

    /// The layout of the struct named `name` (which must have `layout: "c"`).
    pub fn layout(&mut self, name: &str) -> Option<Result<CLayout, LayoutError>> {
        if let Some(done) = self.cache.get(name) {
            return Some(done.clone());
        }
        let TypeDef::Struct(def) = self.types.get(name).copied()? else {
            return None;
        };
        self.in_progress.push(name.to_owned());
        let result = self.compute(def);
        self.in_progress.pop();
        self.cache.insert(name.to_owned(), result.clone());
        Some(result)
    }

    /// Size of `ty` as a fixed-size C element (for tail list elements), or why it has none.
    pub fn element_size(&mut self, ty: &TypeRef) -> Result<u64, String> {
        self.size_align(ty)
            .map(|sa| sa.size)
            .map_err(|problem| match problem {
                Problem::Recursive => "the type contains itself".to_owned(),
                Problem::Reason(reason) => reason,
            })
    }

    fn compute(&mut self, def: &StructDef) -> Result<CLayout, LayoutError> {
        let mut offset = 0u64;
        let mut align = 1u64;
        let mut fields = Vec::new();
        let mut tail = Vec::new();
        for (index, field) in def.fields.iter().enumerate() {
            if is_tail(field) {
                tail.push(field.name.clone());
                continue;
            }
            if !tail.is_empty() {
                return Err(LayoutError::FixedAfterTail { field: index });
            }
            if field.optional || field.nullable {
                return Err(LayoutError::NotRepresentable {
                    field: index,
                    reason: "C has no absent or null member: remove `optional`/`nullable` and use a flag or a sentinel value".into(),
                });
            }
            let sa = self.size_align(&field.ty).map_err(|reason| match reason {
                Problem::Recursive => LayoutError::Recursive { field: index },
                Problem::Reason(reason) => LayoutError::NotRepresentable {
                    field: index,
                    reason,
                },
            })?;
            let aligned = offset.next_multiple_of(sa.align);
            if aligned != offset {
                return Err(LayoutError::ImplicitPadding {
                    field: index,
                    offset,
                    bytes: aligned - offset,
                });
            }
            fields.push(CField {
                name: field.name.clone(),
                offset,
                size: sa.size,
                align: sa.align,
            });
            offset += sa.size;
            align = align.max(sa.align);
        }
        let size = offset.next_multiple_of(align);
        if size != offset {
            return Err(LayoutError::TrailingPadding {
                size: offset,
                bytes: size - offset,
            });
        }
        Ok(CLayout {
            size,
            align,
            fields,
            tail,
        })
    }

    fn size_align(&mut self, ty: &TypeRef) -> Result<SizeAlign, Problem> {
        match ty {
            TypeRef::Named(name) => {
                if let Some(primitive) = PrimitiveType::from_name(name) {
                    return match (primitive.c_size(), primitive.c_align()) {
                        (Some(size), Some(align)) => Ok(SizeAlign { size, align }),
                        _ => Err(Problem::Reason(format!(
                            "`{name}` has no fixed size; C layout admits integers, floats, bool, uuid, timestamp, duration, fixed arrays, integer enums and C-layout structs"
                        ))),
                    };
                }
                let Some(def) = self.types.get(name.as_str()).copied() else {
                    return Err(Problem::Reason(format!("`{name}` is not defined")));
                };
                match def {
                    TypeDef::IntEnum(e) => {
                        let size = e.repr.c_size().unwrap_or(0);
                        Ok(SizeAlign { size, align: size })
                    }
                    TypeDef::Alias(a) => {
                        if self.in_progress.iter().any(|n| n == name) {
                            return Err(Problem::Recursive);
                        }
                        self.in_progress.push(name.clone());
                        let result = self.size_align(&a.ty);
                        self.in_progress.pop();
                        result
                    }
                    TypeDef::Struct(s) => {
                        if s.layout != Layout::C {
                            return Err(Problem::Reason(format!(
                                "`{name}` is a record struct; give it `\"layout\": \"c\"` to nest it"
                            )));
                        }
                        if self.in_progress.iter().any(|n| n == name) {
                            return Err(Problem::Recursive);
                        }
                        match self.layout(name) {
                            Some(Ok(layout)) if layout.tail.is_empty() => Ok(SizeAlign {
                                size: layout.size,
                                align: layout.align,
                            }),
                            Some(Ok(_)) => Err(Problem::Reason(format!(
                                "`{name}` has a variable-length tail and cannot be nested"
                            ))),
                            Some(Err(LayoutError::Recursive { .. })) => Err(Problem::Recursive),
                            _ => Err(Problem::Reason(format!("`{name}` has no valid C layout itself"))),
                        }
                    }
                    TypeDef::Enum(_) => Err(Problem::Reason(format!(
                        "`{name}` is a string enum; C layout needs an `intEnum` with an explicit `repr`"
                    ))),
                    TypeDef::Union(_) => Err(Problem::Reason(format!(
                        "`{name}` is a tagged union, which C layout cannot express"
                    ))),
                }
            }
            TypeRef::Composite(Composite::Array(array)) => {
                let element = self.size_align(&array.of)?;
                let len = u64::try_from(array.len.value).unwrap_or(0);
                Ok(SizeAlign {
                    size: element.size.saturating_mul(len),
                    align: element.align,
                })
            }
            TypeRef::Composite(Composite::List(_)) | TypeRef::Composite(Composite::Map(_)) => {
                Err(Problem::Reason(
                    "lists and maps have no fixed size; use a fixed `array`, a user pointer (`u64` with `pointee`), or a tail field with `lengthField`".into(),
                ))
            }
        }
    }
}

enum Problem {
    Recursive,
    Reason(String),
}

/// True for a variable-length tail field (one with a `lengthField`).
pub fn is_tail(field: &Field) -> bool {
    field.length_field.is_some()
}

/// Linux `_IOC_SIZEBITS`: an ioctl argument is at most 2^14 - 1 bytes.
pub const IOC_SIZE_MAX: u64 = (1 << 14) - 1;

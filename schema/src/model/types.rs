//! Types: primitives, references, constraints and the named type definitions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Src;
use crate::intlit::IntLit;

/// A built-in scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PrimitiveType {
    /// `true` or `false`; one byte in C layout.
    Bool,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
    /// UTF-8 text.
    String,
    /// Raw bytes; base64 (RFC 4648, padded) in JSON.
    Bytes,
    /// A UUID; canonical hyphenated lower-case text in JSON, 16 bytes in binary.
    Uuid,
    /// An instant; RFC 3339 UTC text in JSON, u64 nanoseconds since the Unix epoch in binary.
    Timestamp,
    /// A span of time; integer milliseconds in JSON, u64 nanoseconds in binary.
    Duration,
    /// Any JSON value (an application-defined payload such as an event's data).
    Json,
    /// A file descriptor passed beside the frame (SCM_RIGHTS); in JSON, its index among
    /// the descriptors received with the frame.
    Fd,
}

impl PrimitiveType {
    /// Every primitive with its catalogue spelling.
    pub const ALL: [(PrimitiveType, &'static str); 18] = [
        (Self::Bool, "bool"),
        (Self::I8, "i8"),
        (Self::I16, "i16"),
        (Self::I32, "i32"),
        (Self::I64, "i64"),
        (Self::U8, "u8"),
        (Self::U16, "u16"),
        (Self::U32, "u32"),
        (Self::U64, "u64"),
        (Self::F32, "f32"),
        (Self::F64, "f64"),
        (Self::String, "string"),
        (Self::Bytes, "bytes"),
        (Self::Uuid, "uuid"),
        (Self::Timestamp, "timestamp"),
        (Self::Duration, "duration"),
        (Self::Json, "json"),
        (Self::Fd, "fd"),
    ];

    /// The primitive spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }

    /// The catalogue spelling.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Inclusive range of an integer primitive.
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Self::I8 => (i8::MIN.into(), i8::MAX.into()),
            Self::I16 => (i16::MIN.into(), i16::MAX.into()),
            Self::I32 => (i32::MIN.into(), i32::MAX.into()),
            Self::I64 => (i64::MIN.into(), i64::MAX.into()),
            Self::U8 => (0, u8::MAX.into()),
            Self::U16 => (0, u16::MAX.into()),
            Self::U32 => (0, u32::MAX.into()),
            Self::U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    /// True for the unsigned integers.
    pub fn is_unsigned(self) -> bool {
        matches!(self, Self::U8 | Self::U16 | Self::U32 | Self::U64)
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }

    /// Size and alignment in C layout, for the primitives C layout admits.
    pub fn c_size(self) -> Option<u64> {
        Some(match self {
            Self::Bool | Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 | Self::Timestamp | Self::Duration => 8,
            Self::Uuid => 16,
            _ => return None,
        })
    }

    /// Alignment in C layout (a UUID is a byte array).
    pub fn c_align(self) -> Option<u64> {
        match self {
            Self::Uuid => Some(1),
            other => other.c_size(),
        }
    }
}

/// A reference to a type: a primitive or named type by name, or a composite.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TypeRef {
    /// A primitive (`u32`, `string`, ...) or the name of a type in `types`.
    Named(String),
    /// A composite type.
    Composite(Composite),
}

// Written by hand rather than `#[serde(untagged)]`, whose only error is "did not match any
// variant": a map is handed to `Composite` so its own precise error (unknown key, missing
// `len`) reaches the catalogue author.
impl<'de> Deserialize<'de> for TypeRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TypeRefVisitor;

        impl<'de> serde::de::Visitor<'de> for TypeRefVisitor {
            type Value = TypeRef;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a type name (\"u32\", \"MyStruct\") or {\"list\": T}, {\"map\": T}, {\"array\": {\"of\": T, \"len\": N}}",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TypeRef, E> {
                Ok(TypeRef::Named(v.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<TypeRef, A::Error> {
                Composite::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(TypeRef::Composite)
            }
        }

        deserializer.deserialize_any(TypeRefVisitor)
    }
}

/// A composite type: exactly one of `list`, `map`, `array`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Composite {
    /// A variable-length sequence of the element type.
    List(Box<TypeRef>),
    /// A JSON object with string keys and values of the given type.
    Map(Box<TypeRef>),
    /// A fixed-size array: `{"array": {"of": "u8", "len": 16}}`.
    Array(FixedArray),
}

/// A fixed-size array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixedArray {
    /// Element type.
    pub of: Box<TypeRef>,
    /// Number of elements (at least 1).
    pub len: IntLit,
}

/// Value constraints on a field or alias. JSON Schema keywords with the same meaning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constraints {
    /// Smallest allowed number (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Largest allowed number (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Shortest allowed string, in Unicode scalar values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<IntLit>,
    /// Longest allowed string, in Unicode scalar values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<IntLit>,
    /// ECMA-262 regular expression the whole string must match (write `^...$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Fewest list elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<IntLit>,
    /// Most list elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<IntLit>,
}

impl Constraints {
    /// True when no constraint is set.
    pub fn is_empty(&self) -> bool {
        self == &Constraints::default()
    }
}

/// A named type, selected by `kind`.
// Catalogues hold dozens of types, loaded once: boxing variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TypeDef {
    /// A record of named fields.
    Struct(StructDef),
    /// A string enumeration.
    Enum(EnumDef),
    /// An integer enumeration with an explicit width.
    IntEnum(IntEnumDef),
    /// A tagged union.
    Union(UnionDef),
    /// Another name for a type, optionally narrowed by constraints.
    Alias(AliasDef),
}

impl TypeDef {
    /// The type's name.
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Struct(d) => &d.name,
            TypeDef::Enum(d) => &d.name,
            TypeDef::IntEnum(d) => &d.name,
            TypeDef::Union(d) => &d.name,
            TypeDef::Alias(d) => &d.name,
        }
    }

    /// The type's documentation.
    pub fn doc(&self) -> &str {
        match self {
            TypeDef::Struct(d) => &d.doc,
            TypeDef::Enum(d) => &d.doc,
            TypeDef::IntEnum(d) => &d.doc,
            TypeDef::Union(d) => &d.doc,
            TypeDef::Alias(d) => &d.doc,
        }
    }

    /// Where the type is defined.
    pub fn src(&self) -> &Src {
        match self {
            TypeDef::Struct(d) => &d.src,
            TypeDef::Enum(d) => &d.src,
            TypeDef::IntEnum(d) => &d.src,
            TypeDef::Union(d) => &d.src,
            TypeDef::Alias(d) => &d.src,
        }
    }

    /// Sets where the type is defined (used by the loader).
    pub fn set_src(&mut self, src: Src) {
        match self {
            TypeDef::Struct(d) => d.src = src,
            TypeDef::Enum(d) => d.src = src,
            TypeDef::IntEnum(d) => d.src = src,
            TypeDef::Union(d) => d.src = src,
            TypeDef::Alias(d) => d.src = src,
        }
    }

    /// The `kind` keyword of this definition.
    pub fn kind(&self) -> &'static str {
        match self {
            TypeDef::Struct(_) => "struct",
            TypeDef::Enum(_) => "enum",
            TypeDef::IntEnum(_) => "intEnum",
            TypeDef::Union(_) => "union",
            TypeDef::Alias(_) => "alias",
        }
    }
}

/// Layout of a struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Layout {
    /// A JSON object (or an ordered record in binary tails); no C representation.
    #[default]
    Record,
    /// C layout: fields at natural alignment with every padding byte an explicit field.
    C,
}

/// A struct definition.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StructDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// `c` for structs that cross a binary boundary (binary payloads, ioctl arguments).
    #[serde(default)]
    pub layout: Layout,
    /// C layout only: the size the author expects; checked against the computed size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<IntLit>,
    /// The fields, in wire order.
    pub fields: Vec<Field>,
    /// Groups of optional fields of which every value holds exactly one
    /// (`[["result", "error"]]`): a receiver refuses a value with none of a group's
    /// fields, or with more than one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exactly_one_of: Vec<Vec<String>>,
    #[serde(skip)]
    pub src: Src,
}

/// A field of a struct.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Field {
    /// The key on the wire (JSON) or the member name (C), exactly as written.
    pub name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// What the field means, with its unit.
    pub doc: String,
    /// The key may be absent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// The value may be `null`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nullable: bool,
    /// Value constraints.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// C layout: this field is padding and must be zero.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub padding: bool,
    /// C layout: this `u64` holds a user-space pointer to `pointee.of` elements, counted
    /// by the integer field `pointee.countField`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointee: Option<Pointee>,
    /// Binary tail field (`bytes`, `string` or a list after the fixed part): the integer
    /// field of the fixed part that holds its element count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_field: Option<String>,
    /// An integer field computed from others: the sum of the integer field `field` over
    /// the items of the list field `list` of the same struct. A sender computes it; a
    /// receiver refuses a value whose field differs from the sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_of: Option<SumOf>,
}

/// What a computed field sums: `{"list": "items", "field": "input_size"}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SumOf {
    /// A list field of the same struct whose items are structs.
    pub list: String,
    /// The integer field of the items that is summed.
    pub field: String,
}

/// What a user pointer points to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pointee {
    /// Element type.
    pub of: TypeRef,
    /// The integer field holding the number of elements.
    pub count_field: String,
}

/// A string enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnumDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// The members.
    pub values: Vec<EnumValue>,
    #[serde(skip)]
    pub src: Src,
}

/// A member of a string enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnumValue {
    /// The member's name in generated code (e.g. `RENDERER`).
    pub name: String,
    /// The string on the wire (e.g. `renderer`); defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What the member means.
    pub doc: String,
}

impl EnumValue {
    /// The string on the wire.
    pub fn wire(&self) -> &str {
        self.value.as_deref().unwrap_or(&self.name)
    }
}

/// An integer enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntEnumDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// The integer type that carries the value.
    pub repr: PrimitiveType,
    /// The members.
    pub values: Vec<IntEnumValue>,
    /// The members are the catalogue's message codes, name for name and value for value
    /// (a `MessageType` enum for code that switches on the header's type field); the
    /// loader checks that the two agree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub message_codes: bool,
    #[serde(skip)]
    pub src: Src,
}

/// A member of an integer enumeration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntEnumValue {
    /// The member's name in generated code.
    pub name: String,
    /// The value on the wire.
    pub value: IntLit,
    /// What the member means.
    pub doc: String,
}

/// How a union's variant is marked on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnionRepr {
    /// `{"<tag>": "Variant", ...variant fields}`; every variant must be a record struct.
    Internal,
    /// `{"<tag>": "Variant", "<content>": {...}}`.
    Adjacent,
}

/// A tagged union.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnionDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// Representation on the wire.
    pub repr: UnionRepr,
    /// Key holding the variant's tag.
    pub tag: String,
    /// Adjacent representation only: key holding the variant's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The variants.
    pub variants: Vec<Variant>,
    #[serde(skip)]
    pub src: Src,
}

/// A union variant.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Variant {
    /// The variant's name in generated code.
    pub name: String,
    /// The tag on the wire; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_value: Option<String>,
    /// The variant's content type; absent for a variant that carries nothing.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<TypeRef>,
    /// What the variant means.
    pub doc: String,
}

impl Variant {
    /// The tag on the wire.
    pub fn wire(&self) -> &str {
        self.tag_value.as_deref().unwrap_or(&self.name)
    }
}

/// An alias.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasDef {
    /// The type's name, PascalCase or the name a seed gives it.
    pub name: String,
    /// What the type means.
    pub doc: String,
    /// The aliased type.
    #[serde(rename = "type")]
    pub ty: TypeRef,
    /// Constraints narrowing the aliased type.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    #[serde(skip)]
    pub src: Src,
}

//! Type definitions: structs, string enums, integer enums, unions and aliases, with the
//! serde attributes that give each exactly its JSON form from WIRE-MAPPING.md.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::ir::{
    Alias, Enum, Field, IntEnum, Module, Struct, TypeDef, TypeId, TypeKind, Union, UnionRepr,
    UnknownKeys,
};

use super::tys::{Types, int_ident};
use super::{docs, ident, unraw};

/// The definition of type `id`, with its inherent helpers.
pub(super) fn definition(module: &Module, types: &Types, id: TypeId) -> TokenStream {
    let def = module.ty(id);
    match &def.kind {
        TypeKind::Struct(s) => structure(module, types, id, def, s),
        TypeKind::Enum(e) => string_enum(def, e),
        TypeKind::IntEnum(e) => int_enum(def, e),
        TypeKind::Union(u) => union(module, types, id, def, u),
        TypeKind::Alias(a) => alias(types, def, a),
    }
}

/// `deny_unknown_fields` when the catalogue rejects undeclared keys.
pub(super) fn deny_unknown(module: &Module) -> Option<TokenStream> {
    (module.wire.unknown_keys == UnknownKeys::Reject).then(|| quote!(deny_unknown_fields))
}

/// A catalogue doc, or a fallback so every public item is documented.
fn doc_or(doc: &str, fallback: impl FnOnce() -> String) -> String {
    if doc.trim().is_empty() {
        fallback()
    } else {
        doc.to_owned()
    }
}

fn structure(module: &Module, types: &Types, id: TypeId, def: &TypeDef, s: &Struct) -> TokenStream {
    let name = ident(&def.idents.rust);
    let mut doc_parts = vec![doc_or(&def.doc, || format!("The `{}` struct.", def.name))];
    let repr_c = types.repr_c(s);
    if let Some(layout) = &s.c_layout {
        doc_parts.push(c_layout_doc(s, layout.size, layout.align, repr_c));
    }
    let doc = docs::outer(&doc_parts);
    let fields = s.fields.iter().map(|f| field(types, Some(id), f));
    let deny = deny_unknown(module).map(|d| quote!(#[serde(#d)]));
    // Tail-less C-layout structs hold only `Copy` values; copying them is what C does.
    let copy = (s.c_layout.is_some() && !s.has_tail()).then(|| quote!(Copy,));
    let repr = repr_c.then(|| quote!(#[repr(C)]));
    quote! {
        #doc
        #[derive(Debug, Clone, #copy PartialEq, serde::Serialize, serde::Deserialize)]
        #deny
        #repr
        pub struct #name {
            #(#fields)*
        }
    }
}

fn c_layout_doc(s: &Struct, size: u64, align: u64, repr_c: bool) -> String {
    let mut text = format!("C layout: {size} bytes, aligned to {align}");
    let tails: Vec<String> = s
        .fields
        .iter()
        .filter(|f| f.length_field.is_some())
        .map(|f| format!("`{}`", f.wire))
        .collect();
    if !tails.is_empty() {
        text.push_str(&format!(
            ", followed by the tail field(s) {}",
            tails.join(", ")
        ));
    }
    text.push_str(". Binary form via `encode`/`decode`.");
    if !repr_c && !s.has_tail() {
        // Say why the struct is not `#[repr(C)]`, since readers will expect it.
        text.push_str(
            " Not `#[repr(C)]`: its timestamps and durations are u64 nanoseconds in C but richer types here.",
        );
    }
    text
}

/// A struct field with its serde attributes (see WIRE-MAPPING.md for each case).
/// A struct field (or envelope member) with the serde attributes of its wire form.
pub(super) fn field(types: &Types, owner: Option<TypeId>, f: &Field) -> TokenStream {
    let name = ident(&f.idents.rust);
    let base = types.rust(&f.ty, owner);
    let adapter = types.adapter(&f.ty);
    let same = || quote!(serde_as::Same);
    let (ty, with, optional) = match (f.optional, f.nullable) {
        (false, false) => (base, adapter, false),
        // Absent => None; a present key must hold a value (`null` is not one).
        (true, false) => {
            let a = adapter.unwrap_or_else(same);
            (
                quote!(Option<#base>),
                Some(quote!(serde_as::Optional<#a>)),
                true,
            )
        }
        // Required key; `null` => None. The adapter also stops serde from defaulting a
        // missing `Option` field to `None`.
        (false, true) => {
            let a = adapter.unwrap_or_else(same);
            (
                quote!(Option<#base>),
                Some(quote!(serde_as::Nullable<#a>)),
                false,
            )
        }
        // Absent => None, `null` => Some(None).
        (true, true) => {
            let a = adapter.unwrap_or_else(same);
            (
                quote!(Option<Option<#base>>),
                Some(quote!(serde_as::Optional<serde_as::Nullable<#a>>)),
                true,
            )
        }
    };
    let mut serde = Vec::new();
    if unraw(&f.idents.rust) != f.wire {
        let wire = &f.wire;
        serde.push(quote!(rename = #wire));
    }
    if optional {
        serde.push(quote!(default, skip_serializing_if = "Option::is_none"));
    }
    if let Some(with) = with {
        let path = with_path(&with);
        serde.push(quote!(with = #path));
    }
    let serde = (!serde.is_empty()).then(|| quote!(#[serde(#(#serde),*)]));
    let doc = docs::outer(&[
        doc_or(&f.doc, || format!("The `{}` field.", f.wire)),
        field_notes(f),
        docs::constraints(&f.constraints),
    ]);
    quote! {
        #doc
        #serde
        pub #name: #ty,
    }
}

/// Wire facts a reader of the Rust field would not see from its type.
fn field_notes(f: &Field) -> String {
    let mut notes = Vec::new();
    if f.padding {
        notes.push("Padding: must be zero.".to_owned());
    }
    if let Some(count) = &f.length_field {
        notes.push(format!("Tail field; its length is in `{count}`."));
    }
    if let Some((_, count)) = &f.pointee {
        notes.push(format!(
            "User-space pointer; the element count is in `{count}`."
        ));
    }
    notes.join(" ")
}

/// The string serde's `with` takes: `serde_as::As::<Adapter>`.
pub(super) fn with_path(adapter: &TokenStream) -> String {
    // Token streams print with spaces (`serde_as :: I64String`); the attribute string is
    // clearer without them, and serde parses either.
    let text = quote!(serde_as::As::<#adapter>).to_string();
    text.replace(' ', "")
}

fn string_enum(def: &TypeDef, e: &Enum) -> TokenStream {
    let name = ident(&def.idents.rust);
    let doc = docs::outer(&[doc_or(&def.doc, || format!("The `{}` enum.", def.name))]);
    let variants = e.values.iter().map(|v| {
        let variant = ident(&v.idents.rust);
        let wire = &v.wire;
        let rename = (unraw(&v.idents.rust) != v.wire).then(|| quote!(#[serde(rename = #wire)]));
        let doc = docs::outer(&[doc_or(&v.doc, || format!("`{}`.", v.wire))]);
        quote! { #doc #rename #variant, }
    });
    let all = e.values.iter().map(|v| ident(&v.idents.rust));
    let arms = e.values.iter().map(|v| {
        let variant = ident(&v.idents.rust);
        let wire = &v.wire;
        quote!(Self::#variant => #wire,)
    });
    let values: Vec<_> = e
        .values
        .iter()
        .map(|v| (ident(&v.idents.rust), v.wire.as_str()))
        .collect();
    let display = display_and_from_str(&name, &def.name, &values);
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// Every value, in catalogue order.
            pub const ALL: &[Self] = &[#(Self::#all),*];

            /// The value's wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    #(#arms)*
                }
            }
        }

        #display
    }
}

/// `Display` (the wire string `as_str` gives) and `FromStr` (its inverse, refusing
/// anything else with `validate::UnknownValue`) for a string enum or the error-code enum.
pub(super) fn display_and_from_str(
    name: &proc_macro2::Ident,
    catalogue_name: &str,
    values: &[(proc_macro2::Ident, &str)],
) -> TokenStream {
    let arms = values
        .iter()
        .map(|(variant, wire)| quote!(#wire => Ok(Self::#variant),));
    quote! {
        impl std::fmt::Display for #name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for #name {
            type Err = validate::UnknownValue;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    #(#arms)*
                    _ => Err(validate::UnknownValue {
                        type_name: #catalogue_name,
                        value: value.to_owned(),
                    }),
                }
            }
        }
    }
}

fn int_enum(def: &TypeDef, e: &IntEnum) -> TokenStream {
    let name = ident(&def.idents.rust);
    let repr = int_ident(e.repr);
    let doc = docs::outer(&[doc_or(&def.doc, || format!("The `{}` enum.", def.name))]);
    let mut variants = Vec::new();
    let mut from_arms = Vec::new();
    for v in &e.values {
        let variant = ident(&v.idents.rust);
        let value = int_literal(v.value);
        let doc = docs::outer(&[doc_or(&v.doc, || format!("`{}`.", v.name))]);
        variants.push(quote! { #doc #variant = #value, });
        from_arms.push(quote!(#value => Some(Self::#variant),));
    }
    let all = e.values.iter().map(|v| ident(&v.idents.rust));
    let names = e.values.iter().map(|v| {
        let variant = ident(&v.idents.rust);
        let name = &v.name;
        quote!(Self::#variant => #name,)
    });
    let from_names = e.values.iter().map(|v| {
        let variant = ident(&v.idents.rust);
        let name = &v.name;
        quote!(#name => Ok(Self::#variant),)
    });
    let catalogue_name = &def.name;
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde_repr::Serialize_repr, serde_repr::Deserialize_repr)]
        #[repr(#repr)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// Every value, in catalogue order.
            pub const ALL: &[Self] = &[#(Self::#all),*];

            /// The value on the wire.
            pub fn value(self) -> #repr {
                self as #repr
            }

            /// The member with wire value `value`, if the catalogue declares one.
            pub fn from_value(value: #repr) -> Option<Self> {
                match value {
                    #(#from_arms)*
                    _ => None,
                }
            }

            /// The member's catalogue name.
            pub fn name(self) -> &'static str {
                match self {
                    #(#names)*
                }
            }
        }

        impl std::fmt::Display for #name {
            /// The member's catalogue name, as [`Self::name`] gives it.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for #name {
            type Err = validate::UnknownValue;

            /// The member with catalogue name `value` (the inverse of `Display`).
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    #(#from_names)*
                    _ => Err(validate::UnknownValue {
                        type_name: #catalogue_name,
                        value: value.to_owned(),
                    }),
                }
            }
        }
    }
}

/// An integer literal, negative values included.
pub(super) fn int_literal(value: i128) -> TokenStream {
    let magnitude = Literal::u128_unsuffixed(value.unsigned_abs());
    if value < 0 {
        quote!(-#magnitude)
    } else {
        quote!(#magnitude)
    }
}

fn union(module: &Module, types: &Types, id: TypeId, def: &TypeDef, u: &Union) -> TokenStream {
    let name = ident(&def.idents.rust);
    let tag = &u.tag;
    let repr_doc = match (u.repr, &u.content) {
        (UnionRepr::Adjacent, Some(content)) => {
            format!("On the wire: `{{\"{tag}\": <variant>, \"{content}\": <value>}}`.")
        }
        _ => format!("On the wire: the variant's fields plus `\"{tag}\": <variant>`."),
    };
    let doc = docs::outer(&[
        doc_or(&def.doc, || format!("The `{}` union.", def.name)),
        repr_doc,
    ]);
    let serde_tag = match (u.repr, &u.content) {
        (UnionRepr::Adjacent, Some(content)) => quote!(tag = #tag, content = #content),
        _ => quote!(tag = #tag),
    };
    let deny = deny_unknown(module).map(|d| quote!(, #d));
    let variants = u.variants.iter().map(|v| {
        let variant = ident(&v.idents.rust);
        let wire = &v.wire;
        let rename = (unraw(&v.idents.rust) != v.wire).then(|| quote!(#[serde(rename = #wire)]));
        let doc = docs::outer(&[doc_or(&v.doc, || format!("`{}`.", v.wire))]);
        let body = match &v.ty {
            Some(ty) => {
                let rust = types.rust(ty, Some(id));
                let with = types.adapter(ty).map(|a| {
                    let path = with_path(&a);
                    quote!(#[serde(with = #path)])
                });
                quote!((#with #rust))
            }
            // An internally tagged variant without content is an empty struct variant, so
            // `deny_unknown_fields` also rejects stray keys beside its tag (serde ignores
            // them for unit variants).
            None if u.repr == UnionRepr::Internal => quote!({}),
            None => quote!(),
        };
        quote! { #doc #rename #variant #body, }
    });
    quote! {
        #doc
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(#serde_tag #deny)]
        pub enum #name {
            #(#variants)*
        }
    }
}

fn alias(types: &Types, def: &TypeDef, a: &Alias) -> TokenStream {
    let name = ident(&def.idents.rust);
    let target = types.rust(&a.ty, None);
    let doc = docs::outer(&[
        doc_or(&def.doc, || format!("The `{}` alias.", def.name)),
        docs::constraints(&a.constraints),
    ]);
    quote! {
        #doc
        pub type #name = #target;
    }
}

//! Registries for tests and conformance checks: round trips keyed by catalogue type name.
//! They go into the module's `registries` submodule, compiled only with the crate's
//! `test-registries` feature, so a service depending on the generated crate does not
//! carry them.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{Module, Ty, TypeId, TypeKind};

use super::ident;
use super::tys::Types;

/// `json_roundtrip`: JSON -> the named type -> JSON, for every named type.
pub(super) fn json(module: &Module, types: &Types) -> TokenStream {
    let arms = module.types.iter().enumerate().map(|(index, def)| {
        let name = &def.name;
        let rust = ident(&def.idents.rust);
        // An alias is its target type to serde, so it round-trips through the target's
        // adapter; definitions have their own serde impls.
        let adapter = match &def.kind {
            TypeKind::Alias(_) => types.adapter_or_same(&Ty::Named(TypeId(index))),
            _ => quote!(serde_as::Same),
        };
        quote!(#name => serde_as::json_roundtrip::<#rust, #adapter>(value),)
    });
    let body = if module.types.is_empty() {
        quote! {
            let _ = (type_name, value);
            None
        }
    } else {
        quote! {
            let result = match type_name {
                #(#arms)*
                _ => return None,
            };
            Some(result)
        }
    };
    quote! {
        /// Deserializes `value` as the catalogue type named `type_name` and serializes it
        /// back; `None` when the module has no such type.
        pub fn json_roundtrip(
            type_name: &str,
            value: serde_json::Value,
        ) -> Option<Result<serde_json::Value, serde_json::Error>> {
            #body
        }
    }
}

/// `binary_roundtrip`: JSON -> the named type -> bytes -> the type -> JSON, for every type
/// with a binary form (C-layout structs and integer enums).
pub(super) fn binary(module: &Module) -> TokenStream {
    let arms: Vec<TokenStream> = module
        .types
        .iter()
        .filter(|def| match &def.kind {
            TypeKind::Struct(s) => s.c_layout.is_some(),
            TypeKind::IntEnum(_) => true,
            _ => false,
        })
        .map(|def| {
            let name = &def.name;
            let rust = ident(&def.idents.rust);
            quote!(#name => binary::json_roundtrip::<#rust>(value),)
        })
        .collect();
    if arms.is_empty() {
        // No type with a binary form (every JSON-only catalogue): no registry at all.
        return TokenStream::new();
    }
    let body = quote! {
        let result = match type_name {
            #(#arms)*
            _ => return None,
        };
        Some(result)
    };
    quote! {
        /// Deserializes `value` as the catalogue type named `type_name`, encodes it to its
        /// binary form, decodes that and serializes the result; `None` when the module has
        /// no such type with a binary form.
        pub fn binary_roundtrip(
            type_name: &str,
            value: serde_json::Value,
        ) -> Option<Result<serde_json::Value, String>> {
            #body
        }
    }
}

/// `C_LAYOUTS`: the size and member offsets of every `repr(C)` struct as the Rust
/// compiler lays it out (`size_of`, `offset_of!`), so a test can compare them with what a
/// C compiler reports for the generated header.
pub(super) fn c_layouts(module: &Module, types: &Types) -> TokenStream {
    let entries: Vec<TokenStream> = module
        .types
        .iter()
        .filter_map(|def| {
            let TypeKind::Struct(s) = &def.kind else {
                return None;
            };
            if !types.repr_c(s) {
                return None;
            }
            let name = &def.name;
            let rust = ident(&def.idents.rust);
            let members = s.fields.iter().map(|f| {
                let wire = &f.wire;
                let member = ident(&f.idents.rust);
                quote!((#wire, core::mem::offset_of!(#rust, #member)))
            });
            Some(quote! {
                binary::CLayout {
                    name: #name,
                    size: core::mem::size_of::<#rust>(),
                    members: &[#(#members),*],
                }
            })
        })
        .collect();
    if entries.is_empty() {
        return TokenStream::new();
    }
    quote! {
        /// Size and member offsets of every `repr(C)` struct, measured by the Rust
        /// compiler; compare with C's `sizeof`/`offsetof` on the header.
        pub const C_LAYOUTS: &[binary::CLayout] = &[#(#entries),*];
    }
}

//! Registries for tests and conformance checks: round trips keyed by catalogue type name.

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
    let body = if arms.is_empty() {
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

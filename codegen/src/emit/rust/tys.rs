//! Catalogue types as Rust types: the Rust spelling of a [`Ty`], its serde adapter,
//! where recursion needs a `Box`, and which C-layout structs Rust can lay out identically.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ir::{Int64Encoding, Module, PrimitiveType, Ty, TypeId, TypeKind};

use super::ident;

/// Type questions about one module.
pub(super) struct Types<'m> {
    module: &'m Module,
}

impl<'m> Types<'m> {
    pub(super) fn new(module: &'m Module) -> Self {
        Types { module }
    }

    /// The Rust type of `ty` used inside the definition of `owner` (which decides where a
    /// `Box` breaks a by-value cycle).
    pub(super) fn rust(&self, ty: &Ty, owner: Option<TypeId>) -> TokenStream {
        match ty {
            Ty::Prim(p) => prim(*p),
            Ty::Named(id) => {
                let name = ident(&self.module.ty(*id).idents.rust);
                if owner.is_some_and(|owner| self.reaches(*id, owner)) {
                    quote!(Box<#name>)
                } else {
                    quote!(#name)
                }
            }
            // Lists and maps are already indirections: no `Box` inside them.
            Ty::List(inner) => {
                let inner = self.rust(inner, None);
                quote!(Vec<#inner>)
            }
            Ty::Map(inner) => {
                let inner = self.rust(inner, None);
                quote!(std::collections::BTreeMap<String, #inner>)
            }
            Ty::Array(inner, len) => {
                let inner = self.rust(inner, owner);
                let len = usize_lit(*len);
                quote!([#inner; #len])
            }
        }
    }

    /// The serde adapter `ty` needs for its wire form, or `None` when the type's own
    /// serde impls already produce it.
    pub(super) fn adapter(&self, ty: &Ty) -> Option<TokenStream> {
        match ty {
            Ty::Prim(p) => self.prim_adapter(*p),
            Ty::Named(id) => match &self.module.ty(*id).kind {
                // An alias is the aliased type to serde: it needs that type's adapter.
                TypeKind::Alias(alias) => self.adapter(&alias.ty),
                _ => None,
            },
            Ty::List(inner) => self.adapter(inner).map(|a| quote!(serde_as::ListOf<#a>)),
            Ty::Map(inner) => self.adapter(inner).map(|a| quote!(serde_as::MapOf<#a>)),
            Ty::Array(inner, len) => match self.adapter(inner) {
                Some(a) => Some(quote!(serde_as::ArrayOf<#a>)),
                // serde implements arrays only up to 32 elements.
                None if *len > 32 => Some(quote!(serde_as::ArrayOf<serde_as::Same>)),
                None => None,
            },
        }
    }

    /// [`Types::adapter`], with `Same` for types that need none.
    pub(super) fn adapter_or_same(&self, ty: &Ty) -> TokenStream {
        self.adapter(ty).unwrap_or_else(|| quote!(serde_as::Same))
    }

    fn prim_adapter(&self, p: PrimitiveType) -> Option<TokenStream> {
        Some(match p {
            PrimitiveType::I64 | PrimitiveType::U64
                if self.module.wire.int64 == Int64Encoding::String =>
            {
                quote!(serde_as::I64String)
            }
            PrimitiveType::Bytes => quote!(serde_as::Base64),
            PrimitiveType::Uuid => quote!(serde_as::Hyphenated),
            PrimitiveType::Timestamp => quote!(serde_as::Rfc3339),
            PrimitiveType::Duration => quote!(serde_as::Millis),
            _ => return None,
        })
    }

    /// `ty` with aliases resolved.
    pub(super) fn resolve<'t>(&'t self, ty: &'t Ty) -> &'t Ty {
        let mut ty = ty;
        let mut seen = HashSet::new();
        while let Ty::Named(id) = ty {
            match &self.module.ty(*id).kind {
                TypeKind::Alias(alias) if seen.insert(*id) => ty = &alias.ty,
                _ => break,
            }
        }
        ty
    }

    /// True when a value of type `from` contains a value of type `to` by value (struct
    /// fields, options, arrays, union variants, aliases — everything but lists and maps),
    /// so that embedding `from` in `to` would give `to` an infinite size.
    fn reaches(&self, from: TypeId, to: TypeId) -> bool {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(id) = stack.pop() {
            if id == to {
                return true;
            }
            if seen.insert(id) {
                stack.extend(self.embedded(id));
            }
        }
        false
    }

    /// The named types `id` embeds by value.
    fn embedded(&self, id: TypeId) -> Vec<TypeId> {
        let mut out = Vec::new();
        match &self.module.ty(id).kind {
            TypeKind::Struct(s) => s.fields.iter().for_each(|f| by_value(&f.ty, &mut out)),
            TypeKind::Union(u) => u
                .variants
                .iter()
                .flat_map(|v| &v.ty)
                .for_each(|t| by_value(t, &mut out)),
            TypeKind::Alias(a) => by_value(&a.ty, &mut out),
            TypeKind::Enum(_) | TypeKind::IntEnum(_) => {}
        }
        out
    }

    /// True when Rust lays `ty` out exactly as the C layout does, so a `#[repr(C)]` struct
    /// of such fields has the catalogue's size and offsets. `timestamp` and `duration` are
    /// u64 nanoseconds in C but `OffsetDateTime`/`Duration` in Rust, so they are not.
    pub(super) fn c_compatible(&self, ty: &Ty) -> bool {
        match self.resolve(ty) {
            Ty::Prim(p) => matches!(
                p,
                PrimitiveType::Bool
                    | PrimitiveType::I8
                    | PrimitiveType::I16
                    | PrimitiveType::I32
                    | PrimitiveType::I64
                    | PrimitiveType::U8
                    | PrimitiveType::U16
                    | PrimitiveType::U32
                    | PrimitiveType::U64
                    | PrimitiveType::F32
                    | PrimitiveType::F64
                    | PrimitiveType::Uuid
            ),
            Ty::Named(id) => match &self.module.ty(*id).kind {
                TypeKind::IntEnum(_) => true,
                TypeKind::Struct(s) => self.repr_c(s),
                _ => false,
            },
            Ty::Array(inner, _) => self.c_compatible(inner),
            Ty::List(_) | Ty::Map(_) => false,
        }
    }

    /// True when the C-layout struct `s` can be `#[repr(C)]` with asserted offsets: it has
    /// no tail and every field is [`Types::c_compatible`].
    pub(super) fn repr_c(&self, s: &crate::ir::Struct) -> bool {
        s.c_layout.is_some() && !s.has_tail() && s.fields.iter().all(|f| self.c_compatible(&f.ty))
    }

    /// True when `ty` implements `ipcspec_runtime::binary::Binary`.
    pub(super) fn binary(&self, ty: &Ty) -> bool {
        match self.resolve(ty) {
            Ty::Prim(p) => p.c_size().is_some(),
            Ty::Named(id) => match &self.module.ty(*id).kind {
                TypeKind::IntEnum(_) => true,
                TypeKind::Struct(s) => s.c_layout.is_some(),
                _ => false,
            },
            Ty::Array(inner, _) => self.binary(inner),
            Ty::List(_) | Ty::Map(_) => false,
        }
    }

    /// The primitive `ty` resolves to, if any.
    pub(super) fn primitive(&self, ty: &Ty) -> Option<PrimitiveType> {
        match self.resolve(ty) {
            Ty::Prim(p) => Some(*p),
            _ => None,
        }
    }

    /// `ty` as the catalogue writes it (`list<i64>`), for tables and docs.
    pub(super) fn catalogue_text(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => p.name().to_owned(),
            Ty::Named(id) => self.module.ty(*id).name.clone(),
            Ty::List(inner) => format!("list<{}>", self.catalogue_text(inner)),
            Ty::Map(inner) => format!("map<{}>", self.catalogue_text(inner)),
            Ty::Array(inner, len) => format!("array<{}, {len}>", self.catalogue_text(inner)),
        }
    }
}

/// Named types `ty` holds by value.
fn by_value(ty: &Ty, out: &mut Vec<TypeId>) {
    match ty {
        Ty::Named(id) => out.push(*id),
        Ty::Array(inner, _) => by_value(inner, out),
        Ty::Prim(_) | Ty::List(_) | Ty::Map(_) => {}
    }
}

/// The Rust type of a primitive.
pub(super) fn prim(p: PrimitiveType) -> TokenStream {
    match p {
        PrimitiveType::Bool => quote!(bool),
        PrimitiveType::I8 => quote!(i8),
        PrimitiveType::I16 => quote!(i16),
        PrimitiveType::I32 => quote!(i32),
        PrimitiveType::I64 => quote!(i64),
        PrimitiveType::U8 => quote!(u8),
        PrimitiveType::U16 => quote!(u16),
        PrimitiveType::U32 | PrimitiveType::Fd => quote!(u32),
        PrimitiveType::U64 => quote!(u64),
        PrimitiveType::F32 => quote!(f32),
        PrimitiveType::F64 => quote!(f64),
        PrimitiveType::String => quote!(String),
        PrimitiveType::Bytes => quote!(Vec<u8>),
        PrimitiveType::Uuid => quote!(uuid::Uuid),
        PrimitiveType::Timestamp => quote!(time::OffsetDateTime),
        PrimitiveType::Duration => quote!(std::time::Duration),
        PrimitiveType::Json => quote!(serde_json::Value),
    }
}

/// The integer carrier of an int enum or count as a Rust primitive ident (`u32`).
pub(super) fn int_ident(p: PrimitiveType) -> proc_macro2::Ident {
    format_ident!("{}", p.name())
}

/// An unsuffixed `usize` literal.
pub(super) fn usize_lit(value: u64) -> proc_macro2::Literal {
    proc_macro2::Literal::u64_unsuffixed(value)
}

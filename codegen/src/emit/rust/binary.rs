//! The little-endian binary form: `Binary` impls for C-layout structs and integer enums,
//! and compile-time layout assertions for structs Rust can lay out like C.

use anyhow::bail;
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use crate::ir::{Field, IntEnum, Module, PrimitiveType, Struct, Ty, TypeDef, TypeId, TypeKind};

use super::tys::{Types, int_ident};
use super::{ident, unraw};

/// `Binary` and `encode`/`decode` for type `id`, when it has a binary form.
pub(super) fn implementation(
    module: &Module,
    types: &Types,
    id: TypeId,
) -> anyhow::Result<TokenStream> {
    let def = module.ty(id);
    match &def.kind {
        TypeKind::Struct(s) if s.c_layout.is_some() => structure(types, def, s),
        TypeKind::IntEnum(e) => Ok(int_enum(def, e)),
        _ => Ok(TokenStream::new()),
    }
}

fn structure(types: &Types, def: &TypeDef, s: &Struct) -> anyhow::Result<TokenStream> {
    let Some(layout) = &s.c_layout else {
        return Ok(TokenStream::new());
    };
    check_contiguous(def, s, layout)?;
    let name = ident(&def.idents.rust);
    let catalogue_name = &def.name;
    let size = Literal::u64_unsuffixed(layout.size);
    // Parameter names must not collide with the locals named after fields.
    let reader = fresh("reader", s);
    let writer = fresh("writer", s);
    let mut encode = Vec::new();
    let mut decode = Vec::new();
    for f in &s.fields {
        let (enc, dec) = field_codec(types, def, s, f, &reader, &writer)?;
        encode.push(enc);
        decode.push(dec);
    }
    let locals = s.fields.iter().map(|f| ident(&f.idents.rust));
    let asserts = types.repr_c(s).then(|| layout_asserts(&name, s, layout));
    Ok(quote! {
        impl binary::Binary for #name {
            const NAME: &'static str = #catalogue_name;
            const SIZE: usize = #size;

            fn encode_to(&self, #writer: &mut binary::Writer) -> Result<(), binary::EncodeError> {
                #(#encode)*
                Ok(())
            }

            fn decode_from(#reader: &mut binary::Reader<'_>) -> Result<Self, binary::DecodeError> {
                #(#decode)*
                Ok(Self { #(#locals),* })
            }
        }

        impl #name {
            /// The little-endian binary form: the fixed part, then any tail fields.
            pub fn encode(&self) -> Result<Vec<u8>, binary::EncodeError> {
                binary::Binary::to_bytes(self)
            }

            /// Decodes the binary form, which must span all of `bytes`.
            pub fn decode(bytes: &[u8]) -> Result<Self, binary::DecodeError> {
                <Self as binary::Binary>::from_bytes(bytes)
            }
        }

        #asserts
    })
}

/// The codec reads fixed fields back to back, which is only right when the layout has
/// no gap; the catalogue language guarantees that (padding is explicit), so a gap here
/// is a bug upstream, reported rather than encoded wrongly.
fn check_contiguous(
    def: &TypeDef,
    s: &Struct,
    layout: &ipcspec_schema::layout::CLayout,
) -> anyhow::Result<()> {
    let mut expected = 0;
    for field in &layout.fields {
        if field.offset != expected {
            bail!(
                "C layout of `{}` has a gap before `{}` (offset {}, expected {expected})",
                def.name,
                field.name,
                field.offset
            );
        }
        expected += field.size;
    }
    let fixed = s.fields.iter().filter(|f| f.length_field.is_none()).count();
    if fixed != layout.fields.len() || expected != layout.size {
        bail!("C layout of `{}` does not match its fields", def.name);
    }
    Ok(())
}

/// One field's encode statement and decode `let`.
fn field_codec(
    types: &Types,
    def: &TypeDef,
    s: &Struct,
    f: &Field,
    reader: &Ident,
    writer: &Ident,
) -> anyhow::Result<(TokenStream, TokenStream)> {
    let local = ident(&f.idents.rust);
    let wire = &f.wire;
    let Some(count_name) = &f.length_field else {
        if !types.binary(&f.ty) {
            bail!(
                "field `{}` of C-layout struct `{}` has no binary form",
                f.wire,
                def.name
            );
        }
        return Ok(if f.padding {
            (
                quote!(#writer.padding(#wire, &self.#local)?;),
                quote!(let #local = #reader.padding(#wire)?;),
            )
        } else {
            (
                quote!(#writer.write(#wire, &self.#local)?;),
                quote!(let #local = #reader.read(#wire)?;),
            )
        });
    };
    let Some(counter) = s.fields.iter().find(|c| &c.wire == count_name) else {
        bail!(
            "tail field `{}` of `{}` counts with unknown field `{count_name}`",
            f.wire,
            def.name
        );
    };
    let counter_ident = ident(&counter.idents.rust);
    let as_u64 = |value: TokenStream| {
        // `u64::from` on a u64 would be a useless conversion.
        if types.primitive(&counter.ty) == Some(PrimitiveType::U64) {
            value
        } else {
            quote!(u64::from(#value))
        }
    };
    let encode_count = as_u64(quote!(self.#counter_ident));
    let decode_count = as_u64(quote!(#counter_ident));
    let method = match types.resolve(&f.ty) {
        Ty::Prim(PrimitiveType::String) => quote!(string),
        Ty::Prim(PrimitiveType::Bytes) => quote!(bytes),
        Ty::List(element) if types.binary(element) => quote!(list),
        _ => bail!(
            "tail field `{}` of `{}` must be bytes, a string or a list of binary elements",
            f.wire,
            def.name
        ),
    };
    Ok((
        quote!(#writer.#method(#wire, &self.#local, #encode_count)?;),
        quote!(let #local = #reader.#method(#wire, #decode_count)?;),
    ))
}

/// `base`, with `_` appended until no field of `s` has that name.
fn fresh(base: &str, s: &Struct) -> Ident {
    let mut name = base.to_owned();
    while s.fields.iter().any(|f| unraw(&f.idents.rust) == name) {
        name.push('_');
    }
    ident(&name)
}

/// Compile-time proof that the `#[repr(C)]` struct has the catalogue's size, alignment
/// and offsets (which the C header asserts too).
fn layout_asserts(
    name: &Ident,
    s: &Struct,
    layout: &ipcspec_schema::layout::CLayout,
) -> TokenStream {
    let size = Literal::u64_unsuffixed(layout.size);
    let align = Literal::u64_unsuffixed(layout.align);
    let offsets = s.fields.iter().filter_map(|f| {
        let offset = Literal::u64_unsuffixed(f.c_offset?);
        let member = ident(&f.idents.rust);
        Some(quote!(assert!(core::mem::offset_of!(#name, #member) == #offset);))
    });
    // The sizes are bound to locals first: prettyplease prints macro arguments token by
    // token, which would space out a turbofish inside `assert!`.
    quote! {
        const _: () = {
            let size = core::mem::size_of::<#name>();
            let align = core::mem::align_of::<#name>();
            assert!(size == #size);
            assert!(align == #align);
            #(#offsets)*
        };
    }
}

/// An integer enum is its `repr`; decoding rejects values the catalogue does not declare.
fn int_enum(def: &TypeDef, e: &IntEnum) -> TokenStream {
    let name = ident(&def.idents.rust);
    let catalogue_name = &def.name;
    let repr = int_ident(e.repr);
    quote! {
        impl binary::Binary for #name {
            const NAME: &'static str = #catalogue_name;
            const SIZE: usize = core::mem::size_of::<#repr>();

            fn encode_to(&self, writer: &mut binary::Writer) -> Result<(), binary::EncodeError> {
                binary::Binary::encode_to(&self.value(), writer)
            }

            fn decode_from(reader: &mut binary::Reader<'_>) -> Result<Self, binary::DecodeError> {
                let at = reader.position();
                let value = <#repr as binary::Binary>::decode_from(reader)?;
                Self::from_value(value).ok_or_else(|| {
                    binary::DecodeError::new(
                        binary::DecodeErrorKind::UnknownEnumValue { ty: #catalogue_name, value: i128::from(value) },
                        at,
                    )
                })
            }
        }
    }
}

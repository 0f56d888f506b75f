//! Constants, ioctl request codes and the error-code enum.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::ir::names::rust_const;
use crate::ir::{ConstValue, Constant, IoctlDirection, Module, PrimitiveType};

use super::types::int_literal;
use super::tys::prim;
use super::{docs, ident};

/// `pub const` per catalogue constant, integers written as the catalogue wrote them
/// (hex stays hex).
pub(super) fn constants(module: &Module) -> TokenStream {
    module.constants.iter().map(constant).collect()
}

fn constant(k: &Constant) -> TokenStream {
    let name = ident(&rust_const(&k.name));
    let doc = docs::outer(&[k.doc.as_str()]);
    let (ty, value) = match &k.value {
        ConstValue::Int(value) => (prim(k.ty), integer(*value, k.text.as_deref())),
        ConstValue::Float(value) => {
            let lit = if k.ty == PrimitiveType::F32 {
                Literal::f32_unsuffixed(*value as f32)
            } else {
                Literal::f64_unsuffixed(*value)
            };
            (prim(k.ty), quote!(#lit))
        }
        ConstValue::Bool(value) => (quote!(bool), quote!(#value)),
        ConstValue::Str(value) => (quote!(&str), quote!(#value)),
    };
    quote! {
        #doc
        pub const #name: #ty = #value;
    }
}

/// An integer literal: hex (`0xCAFE_F00D`, digits grouped by four, the catalogue's digit
/// count kept) when the catalogue wrote hex, decimal otherwise.
fn integer(value: i128, text: Option<&str>) -> TokenStream {
    let hex_digits = text
        .map(|t| t.trim().trim_start_matches('-'))
        .and_then(|t| t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")))
        .map(|digits| digits.chars().filter(char::is_ascii_hexdigit).count());
    match hex_digits {
        Some(width) if value >= 0 => {
            let digits = format!("{:0width$X}", value, width = width);
            let grouped = group_by_four(&digits);
            let lit: Literal = format!("0x{grouped}")
                .parse()
                .unwrap_or_else(|_| Literal::i128_unsuffixed(value));
            quote!(#lit)
        }
        _ => int_literal(value),
    }
}

/// `CAFEF00D` -> `CAFE_F00D`, grouping from the right.
fn group_by_four(digits: &str) -> String {
    let chars: Vec<char> = digits.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && (chars.len() - i) % 4 == 0 {
            out.push('_');
        }
        out.push(*c);
    }
    out
}

/// `pub const NAME: u32` per ioctl, with its `_IOx` spelling and argument in the docs.
pub(super) fn ioctls(module: &Module) -> TokenStream {
    module
        .ioctls
        .iter()
        .map(|ioctl| {
            let name = ident(&rust_const(&ioctl.name));
            let macro_name = match ioctl.direction {
                IoctlDirection::None => "_IO",
                IoctlDirection::Read => "_IOR",
                IoctlDirection::Write => "_IOW",
                IoctlDirection::ReadWrite => "_IOWR",
            };
            let magic = match ioctl.magic_char {
                Some(c) => format!("'{c}'"),
                None => format!("{:#04x}", ioctl.magic),
            };
            let spelled = match ioctl.arg {
                Some(arg) => {
                    let arg_def = module.ty(arg);
                    let size = match &arg_def.kind {
                        crate::ir::TypeKind::Struct(s) => s.c_layout.as_ref().map(|l| l.size),
                        _ => None,
                    };
                    let size = size.map(|s| format!(" ({s} bytes)")).unwrap_or_default();
                    format!(
                        "`{macro_name}({magic}, {:#04x}, {})`: argument [`{}`]{size}.",
                        ioctl.number, arg_def.name, arg_def.idents.rust
                    )
                }
                None => format!(
                    "`{macro_name}({magic}, {:#04x})`: no argument.",
                    ioctl.number
                ),
            };
            let doc = docs::outer(&[ioctl.doc.clone(), spelled]);
            let value = integer(i128::from(ioctl.request), Some("0x00000000"));
            quote! {
                #doc
                pub const #name: u32 = #value;
            }
        })
        .collect()
}

/// The error-code enum with its wire names and numeric codes.
pub(super) fn error_codes(module: &Module) -> TokenStream {
    let errors = &module.errors;
    if errors.codes.is_empty() {
        return TokenStream::new();
    }
    let name = ident(&errors.enum_name);
    let variants = errors.codes.iter().map(|e| {
        let variant = ident(&e.rust_variant);
        let wire = &e.name;
        let code = e.code.map(|c| format!("Code {c}.")).unwrap_or_default();
        let doc = docs::outer(&[e.doc.clone(), code]);
        quote! { #doc #[serde(rename = #wire)] #variant, }
    });
    let all = errors.codes.iter().map(|e| ident(&e.rust_variant));
    let names = errors.codes.iter().map(|e| {
        let variant = ident(&e.rust_variant);
        let wire = &e.name;
        quote!(Self::#variant => #wire,)
    });
    let values: Vec<_> = errors
        .codes
        .iter()
        .map(|e| (ident(&e.rust_variant), e.name.as_str()))
        .collect();
    let display = super::types::display_and_from_str(&name, &errors.enum_name, &values);
    let code_fn = code_fn(module);
    quote! {
        /// The catalogue's error codes; a handler refuses a message with one of them
        /// (`ErrorCode::NotFound.error("no such user")`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// Every code, in catalogue order.
            pub const ALL: &[Self] = &[#(Self::#all),*];

            /// The code's symbolic name, as on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    #(#names)*
                }
            }

            #code_fn

            /// A handler's refusal with this code and `message`.
            pub fn error(self, message: impl Into<String>) -> ipcspec_runtime::HandlerError<Self> {
                ipcspec_runtime::HandlerError::new(self, message)
            }
        }

        #display
    }
}

/// `code()`: plain `i64` when every error has a code, `Option<i64>` otherwise.
fn code_fn(module: &Module) -> TokenStream {
    let codes = &module.errors.codes;
    let all_coded = codes.iter().all(|e| e.code.is_some());
    let arms = codes.iter().map(|e| {
        let variant = ident(&e.rust_variant);
        match (e.code, all_coded) {
            (Some(code), true) => {
                let code = int_literal(code);
                quote!(Self::#variant => #code,)
            }
            (Some(code), false) => {
                let code = int_literal(code);
                quote!(Self::#variant => Some(#code),)
            }
            (None, _) => quote!(Self::#variant => None,),
        }
    });
    let ret = if all_coded {
        quote!(i64)
    } else {
        quote!(Option<i64>)
    };
    quote! {
        /// The numeric code.
        pub fn code(self) -> #ret {
            match self {
                #(#arms)*
            }
        }
    }
}

/// `UNATTRIBUTABLE_MESSAGE` and `UNATTRIBUTABLE_CODE`: what a receiver sends for a frame
/// whose message id cannot be read (the wire profile's `unattributable`).
pub(super) fn unattributable(module: &Module) -> TokenStream {
    let Some(u) = &module.wire.unattributable else {
        return TokenStream::new();
    };
    let correlation = match u.correlation {
        crate::ir::UnattributedCorrelation::Absent => "without a correlation id",
        crate::ir::UnattributedCorrelation::Zero => {
            "with the zero correlation id (the nil UUID, or 0 in a binary header)"
        }
    };
    let message = &u.message;
    let enum_name = ident(&module.errors.enum_name);
    let variant = ident(&u.code_rust_variant);
    let message_doc = docs::outer(&[
        format!(
            "The message a receiver answers a frame whose message id cannot be read with, {correlation}; it carries [`UNATTRIBUTABLE_CODE`]."
        ),
        u.doc.clone().unwrap_or_default(),
    ]);
    let code_doc = docs::outer(&[format!(
        "The error code of the answer to a frame whose message id cannot be read ([`UNATTRIBUTABLE_MESSAGE`], `{}`).",
        u.code
    )]);
    quote! {
        #message_doc
        pub const UNATTRIBUTABLE_MESSAGE: &str = #message;
        #code_doc
        pub const UNATTRIBUTABLE_CODE: #enum_name = #enum_name::#variant;
    }
}

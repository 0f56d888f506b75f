//! Messages: the `MESSAGES` wire table (and a constant per message), one enum per
//! sending role, and per receiving role a handler trait and the dispatcher that decodes
//! and validates payloads and calls it.

use anyhow::{Context, bail};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use crate::ir::{Encoding, Message, Module, RoleItems, UnknownKeys};

use super::tys::Types;
use super::{docs, ident};

fn is_binary(module: &Module) -> bool {
    module.wire.encoding == Encoding::BinaryLe
}

/// The message's code as the u32 a binary header carries.
fn code(m: &Message) -> anyhow::Result<Option<u32>> {
    m.code
        .map(|code| {
            u32::try_from(code).with_context(|| {
                format!("message `{}` has code {code}, which is not a u32", m.name)
            })
        })
        .transpose()
}

fn code_literal(code: u32) -> Literal {
    // Codes read best in hex, as protocols write them (`0x0101`).
    format!("{code:#06x}")
        .parse()
        .unwrap_or_else(|_| Literal::u32_unsuffixed(code))
}

/// The name of the message's constant in `messages` (`AGENT_STARTED`, `SEND_EVENT`).
fn const_ident(m: &Message) -> Ident {
    ident(&crate::ir::names::rust_const(&m.name))
}

/// `Some("x")` / `None` for an optional string.
fn option_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}

/// `pub const MESSAGES`: every message with its wire facts, in catalogue order.
pub(super) fn table(module: &Module, types: &Types) -> anyhow::Result<TokenStream> {
    let mut rows = Vec::new();
    let mut entries = Vec::new();
    let mut constants = std::collections::BTreeSet::new();
    for m in &module.messages {
        let name = &m.name;
        let code = match code(m)? {
            Some(code) => {
                let code = code_literal(code);
                quote!(Some(#code))
            }
            None => quote!(None),
        };
        let (from, to, channels) = (&m.from, &m.to, &m.channels);
        let payload_text = m.payload.as_ref().map(|ty| types.catalogue_text(ty));
        let payload = option_str(payload_text.as_deref());
        let reply = option_str(m.reply.as_deref());
        let priority = option_str(m.priority.as_deref());
        let (is_reply, acknowledged) = (m.is_reply, m.acknowledged);
        let constant = const_ident(m);
        if !constants.insert(constant.to_string()) {
            bail!("two messages are named `{constant}` as Rust constants; rename one of them");
        }
        let doc = docs::outer(&[format!("The wire facts of `{name}`.")]);
        entries.push(quote!(messages::#constant));
        rows.push(quote! {
            #doc
            pub const #constant: ipcspec_runtime::MessageInfo = ipcspec_runtime::MessageInfo {
                name: #name,
                code: #code,
                from: &[#(#from),*],
                to: &[#(#to),*],
                channels: &[#(#channels),*],
                payload: #payload,
                reply: #reply,
                is_reply: #is_reply,
                acknowledged: #acknowledged,
                priority: #priority,
            };
        });
    }
    Ok(quote! {
        /// One constant per message of the catalogue, named after its wire name, with its
        /// wire facts (`messages::AGENT_STARTED.reply`).
        pub mod messages {
            #(#rows)*
        }

        /// Every message of the catalogue with its wire facts, in catalogue order.
        pub const MESSAGES: &[ipcspec_runtime::MessageInfo] = &[#(#entries),*];
    })
}

/// A message's doc: its wire name, prose and reply.
fn message_doc(m: &Message) -> TokenStream {
    let reply = m
        .reply
        .as_ref()
        .map(|r| format!("Answered with `{r}`."))
        .unwrap_or_default();
    docs::outer(&[format!("`{}`: {}", m.name, m.doc.trim()), reply])
}

/// One enum per role that sends messages: a variant per message carrying its payload.
pub(super) fn enums(module: &Module, types: &Types) -> anyhow::Result<TokenStream> {
    let mut out = TokenStream::new();
    for items in &module.role_items {
        let Some(enum_name) = &items.message_enum else {
            continue;
        };
        let sent: Vec<&Message> = module.sent_by(&items.role).collect();
        out.extend(message_enum(
            module,
            types,
            &items.role,
            &ident(enum_name),
            &sent,
        )?);
    }
    Ok(out)
}

fn message_enum(
    module: &Module,
    types: &Types,
    role: &str,
    name: &Ident,
    sent: &[&Message],
) -> anyhow::Result<TokenStream> {
    let variants = sent.iter().map(|m| {
        let variant = ident(&m.rust_variant);
        let doc = message_doc(m);
        match &m.payload {
            Some(ty) => {
                let payload = types.rust(ty, None);
                quote! { #doc #variant(#payload), }
            }
            None => quote! { #doc #variant, },
        }
    });
    let pattern = |m: &Message| {
        let variant = ident(&m.rust_variant);
        if m.payload.is_some() {
            quote!(Self::#variant(_))
        } else {
            quote!(Self::#variant)
        }
    };
    let type_arms = sent.iter().map(|m| {
        let pattern = pattern(m);
        let wire = &m.name;
        quote!(#pattern => #wire,)
    });
    let info_arms = sent.iter().map(|m| {
        let pattern = pattern(m);
        let constant = const_ident(m);
        quote!(#pattern => &messages::#constant,)
    });
    let code_fn = if sent.iter().any(|m| m.code.is_some()) {
        let mut arms = Vec::new();
        for m in sent {
            let pattern = pattern(m);
            let code = match code(m)? {
                Some(code) => {
                    let code = code_literal(code);
                    quote!(Some(#code))
                }
                None => quote!(None),
            };
            arms.push(quote!(#pattern => #code,));
        }
        quote! {
            /// The message's numeric code.
            pub fn code(&self) -> Option<u32> {
                match self {
                    #(#arms)*
                }
            }
        }
    } else {
        TokenStream::new()
    };
    let payload_fn = if is_binary(module) {
        encode_payload(types, sent)?
    } else {
        payload_json(types, sent)
    };
    let doc = docs::outer(&[format!("Messages the `{role}` role sends.")]);
    Ok(quote! {
        #doc
        #[derive(Debug, Clone, PartialEq)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// The message's wire name.
            pub fn message_type(&self) -> &'static str {
                match self {
                    #(#type_arms)*
                }
            }

            #code_fn

            /// The message's wire facts (its constant in [`messages`]).
            pub fn info(&self) -> &'static ipcspec_runtime::MessageInfo {
                match self {
                    #(#info_arms)*
                }
            }

            #payload_fn
        }
    })
}

fn payload_json(types: &Types, sent: &[&Message]) -> TokenStream {
    let arms = sent.iter().map(|m| {
        let variant = ident(&m.rust_variant);
        match &m.payload {
            Some(ty) => match types.adapter(ty) {
                Some(adapter) => {
                    let rust = types.rust(ty, None);
                    quote!(Self::#variant(payload) => serde_as::to_json_value::<#rust, #adapter>(payload),)
                }
                None => quote!(Self::#variant(payload) => serde_json::to_value(payload),),
            },
            None => quote!(Self::#variant => Ok(serde_json::Value::Object(serde_json::Map::new())),),
        }
    });
    quote! {
        /// The payload's JSON form; `{}` for a message without payload.
        pub fn payload_json(&self) -> Result<serde_json::Value, serde_json::Error> {
            match self {
                #(#arms)*
            }
        }
    }
}

fn encode_payload(types: &Types, sent: &[&Message]) -> anyhow::Result<TokenStream> {
    let mut arms = Vec::new();
    for m in sent {
        let variant = ident(&m.rust_variant);
        arms.push(match &m.payload {
            Some(ty) if types.binary(ty) => {
                quote!(Self::#variant(payload) => binary::Binary::to_bytes(payload),)
            }
            Some(_) => bail!("the payload of message `{}` has no binary form", m.name),
            None => quote!(Self::#variant => Ok(Vec::new()),),
        });
    }
    Ok(quote! {
        /// The payload's binary form (what follows the header); empty for a message
        /// without payload.
        pub fn encode_payload(&self) -> Result<Vec<u8>, binary::EncodeError> {
            match self {
                #(#arms)*
            }
        }
    })
}

/// Per receiving role: the handler trait and its dispatcher.
pub(super) fn handlers(module: &Module, types: &Types) -> anyhow::Result<TokenStream> {
    let mut out = TokenStream::new();
    if module
        .role_items
        .iter()
        .any(|items| items.handler_trait.is_some() && items.dispatch_fn.is_some())
    {
        let code = error_code_type(module);
        out.extend(quote! {
            /// What a handler method returns: the reply `R` with what follows it on the
            /// connection (follow-ups `F`, closing), or a refusal with one of the
            /// catalogue's error codes and detail `D`.
            pub type HandlerResult<R, F = (), D = ()> =
                Result<ipcspec_runtime::Handled<R, F>, ipcspec_runtime::HandlerError<#code, D>>;
        });
    }
    for items in &module.role_items {
        let (Some(trait_name), Some(dispatch_fn)) = (&items.handler_trait, &items.dispatch_fn)
        else {
            continue;
        };
        let received: Vec<&Message> = module.received_by(&items.role).collect();
        let trait_name = ident(trait_name);
        out.extend(handler_trait(module, types, items, &trait_name, &received)?);
        out.extend(dispatcher(
            module,
            types,
            items,
            &trait_name,
            &ident(dispatch_fn),
            &received,
        )?);
    }
    Ok(out)
}

/// The type of the catalogue's error codes: the generated enum, or `Infallible` for a
/// catalogue without codes (its handlers cannot refuse).
fn error_code_type(module: &Module) -> TokenStream {
    if module.errors.codes.is_empty() {
        quote!(std::convert::Infallible)
    } else {
        let name = ident(&module.errors.enum_name);
        quote!(#name)
    }
}

/// The reply a handler method returns: the reply message's payload, or `()`.
fn reply_type(module: &Module, types: &Types, m: &Message) -> anyhow::Result<TokenStream> {
    let Some(reply) = &m.reply else {
        return Ok(quote!(()));
    };
    let reply = module
        .message(reply)
        .with_context(|| format!("`{}` is answered by unknown message `{reply}`", m.name))?;
    Ok(match &reply.payload {
        Some(ty) => types.rust(ty, None),
        None => quote!(()),
    })
}

fn handler_trait(
    module: &Module,
    types: &Types,
    items: &RoleItems,
    name: &Ident,
    received: &[&Message],
) -> anyhow::Result<TokenStream> {
    let mut methods = Vec::new();
    for m in received {
        let method = ident(&m.rust_method);
        let doc = message_doc(m);
        let reply = reply_type(module, types, m)?;
        let payload = m.payload.as_ref().map(|ty| {
            let ty = types.rust(ty, None);
            quote!(, payload: #ty)
        });
        methods.push(quote! {
            #doc
            fn #method(&self, ctx: &ipcspec_runtime::MessageContext #payload)
                -> impl std::future::Future<Output = HandlerResult<#reply, Self::FollowUp, Self::Detail>> + Send;
        });
    }
    let role_doc = module
        .roles
        .iter()
        .find(|r| r.name == items.role)
        .map(|r| r.doc.clone())
        .unwrap_or_default();
    let dispatch = items.dispatch_fn.clone().unwrap_or_default();
    let doc = docs::outer(&[
        format!(
            "Handles the messages the `{}` role receives; [`{dispatch}`] decodes and validates them and calls these methods.",
            items.role
        ),
        role_doc,
    ]);
    Ok(quote! {
        #doc
        pub trait #name: Send + Sync {
            /// What a method asks to send on the connection after its reply
            /// (`Handled::then`), in the form the service sends it; `()` for none.
            type FollowUp: Send;

            /// The structured detail of a refusal (`HandlerError::detail`); `()` for none.
            type Detail: Send;

            #(#methods)*
        }
    })
}

fn dispatcher(
    module: &Module,
    types: &Types,
    items: &RoleItems,
    trait_name: &Ident,
    name: &Ident,
    received: &[&Message],
) -> anyhow::Result<TokenStream> {
    let reply_enum = match &items.message_enum {
        Some(name) => {
            let name = ident(name);
            quote!(#name)
        }
        // A role that sends nothing answers nothing.
        None => quote!(std::convert::Infallible),
    };
    let mut arms = Vec::new();
    for m in received {
        arms.push(dispatch_arm(module, types, items, m)?);
    }
    let doc = docs::outer(&[format!(
        "Decodes a message the `{}` role received, checks it against the catalogue's constraints and only then calls the matching method of `handler`. Returns the reply to send back (for messages that have one) with what the handler asked to follow it.",
        items.role
    )]);
    let code = error_code_type(module);
    let output = quote! {
        Result<
            ipcspec_runtime::Handled<Option<#reply_enum>, H::FollowUp>,
            ipcspec_runtime::DispatchError<#code, H::Detail>,
        >
    };
    Ok(if is_binary(module) {
        quote! {
            #doc
            pub async fn #name<H: #trait_name>(
                handler: &H,
                ctx: &ipcspec_runtime::MessageContext,
                code: u32,
                payload: &[u8],
            ) -> #output {
                match code {
                    #(#arms)*
                    other => Err(dispatch::unhandled_code(MESSAGES, other).into()),
                }
            }
        }
    } else {
        quote! {
            #doc
            pub async fn #name<H: #trait_name>(
                handler: &H,
                ctx: &ipcspec_runtime::MessageContext,
                message_type: &str,
                payload: &serde_json::value::RawValue,
            ) -> #output {
                match message_type {
                    #(#arms)*
                    other => Err(dispatch::unhandled(MESSAGES, other).into()),
                }
            }
        }
    })
}

/// One dispatcher arm: decode, call, wrap the reply.
fn dispatch_arm(
    module: &Module,
    types: &Types,
    items: &RoleItems,
    m: &Message,
) -> anyhow::Result<TokenStream> {
    let wire = &m.name;
    let method = ident(&m.rust_method);
    let key = if is_binary(module) {
        let Some(code) = code(m)? else {
            bail!("binary message `{}` has no code to dispatch on", m.name);
        };
        let code = code_literal(code);
        quote!(#code)
    } else {
        quote!(#wire)
    };
    let (decode, call) = match &m.payload {
        Some(ty) => {
            let rust = types.rust(ty, None);
            let decode = if is_binary(module) {
                if !types.binary(ty) {
                    bail!("the payload of message `{}` has no binary form", m.name);
                }
                quote!(let payload: #rust = dispatch::decode_binary(#wire, payload)?;)
            } else if let Some(adapter) = types.adapter(ty) {
                quote!(let payload = dispatch::decode_json_as::<#rust, #adapter>(#wire, payload)?;)
            } else {
                quote!(let payload: #rust = dispatch::decode_json(#wire, payload)?;)
            };
            // No handler sees a payload that breaks the catalogue.
            let decode = quote! {
                #decode
                dispatch::validated(#wire, &payload)?;
            };
            (decode, quote!(handler.#method(ctx, payload)))
        }
        None => {
            let decode = if is_binary(module) {
                quote!(dispatch::decode_empty_binary(#wire, payload)?;)
            } else {
                let reject = module.wire.unknown_keys == UnknownKeys::Reject;
                quote!(dispatch::decode_empty_json(#wire, payload, #reject)?;)
            };
            (decode, quote!(handler.#method(ctx)))
        }
    };
    let failed = quote!(.await.map_err(dispatch::refused(#wire))?);
    let body = match &m.reply {
        None => quote! {
            let handled = #call #failed;
            Ok(handled.map(|()| None))
        },
        Some(reply_name) => {
            let reply = module.message(reply_name).with_context(|| {
                format!("`{}` is answered by unknown message `{reply_name}`", m.name)
            })?;
            if items.message_enum.is_none() || !reply.from.contains(&items.role) {
                bail!(
                    "`{}` is answered by `{reply_name}`, which role `{}` does not send",
                    m.name,
                    items.role
                );
            }
            let enum_name = ident(items.message_enum.as_deref().unwrap_or_default());
            let variant = ident(&reply.rust_variant);
            if reply.payload.is_some() {
                quote! {
                    let handled = #call #failed;
                    Ok(handled.map(|reply| Some(#enum_name::#variant(reply))))
                }
            } else {
                quote! {
                    let handled = #call #failed;
                    Ok(handled.map(|()| Some(#enum_name::#variant)))
                }
            }
        }
    };
    Ok(quote! {
        #key => {
            #decode
            #body
        }
    })
}

//! The envelope of JSON catalogues: one struct carrying the catalogue's envelope keys
//! around a payload.
//!
//! It is generic over the payload so one type serves both directions: received frames are
//! read as `Envelope` (the payload kept as raw JSON until the message type picks its
//! Rust type, which is what the dispatchers take), and frames to send are written from
//! `Envelope<P>` with a typed payload. Binary catalogues have no such struct: their
//! envelope is the header struct the catalogue declares.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ir::{Constraints, Encoding, Field, Idents, Module, PrimitiveType, Ty};

use super::types::{deny_unknown, field};
use super::tys::Types;
use super::{docs, ident};

/// The generated envelope's name: `Envelope`, unless the catalogue declares a type of
/// that name (declared names win; derived ones give way).
pub(super) fn name(module: &Module) -> String {
    ["Envelope", "WireEnvelope", "MessageEnvelope"]
        .into_iter()
        .find(|n| !module.types.iter().any(|t| t.idents.rust == *n))
        .unwrap_or("IpcspecEnvelope")
        .to_owned()
}

fn member(rust: &str, wire: &str, ty: Ty, optional: bool, doc: String) -> Field {
    Field {
        wire: wire.to_owned(),
        idents: Idents {
            rust: rust.to_owned(),
            c: wire.to_owned(),
            ts: wire.to_owned(),
        },
        ty,
        doc,
        optional,
        nullable: false,
        constraints: Constraints::default(),
        padding: false,
        pointee: None,
        length_field: None,
        c_offset: None,
    }
}

/// The envelope struct, for JSON catalogues.
pub(super) fn definition(module: &Module, types: &Types) -> TokenStream {
    if module.wire.encoding != Encoding::Json {
        return TokenStream::new();
    }
    let env = &module.wire.envelope;
    let Some(payload_key) = env.payload.as_deref() else {
        return TokenStream::new();
    };
    let name = ident(&name(module));
    let type_key = &env.type_key;
    // Wire order: id, type, timestamp, payload, correlation id (the seeds' order).
    let id = env.id.as_ref().map(|(key, ty)| {
        member(
            "id",
            key,
            ty.clone(),
            env.id_optional,
            format!("`{key}`: the message id, unique per sender."),
        )
    });
    let timestamp = env.timestamp.as_ref().map(|key| {
        member(
            "timestamp",
            key,
            Ty::Prim(PrimitiveType::Timestamp),
            env.timestamp_optional,
            format!("`{key}`: when the sender created the message."),
        )
    });
    // Present on replies, absent otherwise: optional at the type level; the runtime
    // checks it against the message's `is_reply`.
    let correlation = env.correlation_id.as_ref().map(|key| {
        let ty = env
            .id
            .as_ref()
            .map_or(Ty::Prim(PrimitiveType::String), |(_, ty)| ty.clone());
        member(
            "correlation_id",
            key,
            ty,
            true,
            format!("`{key}`: on replies, the id of the message answered."),
        )
    });
    let emit = |f: &Option<Field>| f.as_ref().map(|f| field(types, None, f));
    let (id, timestamp, correlation) = (emit(&id), emit(&timestamp), emit(&correlation));
    let deny = deny_unknown(module);
    let serde = deny.map(|d| quote!(#[serde(#d)]));
    let doc = docs::outer(&[
        format!(
            "The envelope of every `{}` message: `{type_key}` names the message, `{payload_key}` carries its payload.",
            module.name
        ),
        "Received frames decode as `Envelope` with the payload kept raw until the message type selects its Rust type; frames to send encode from `Envelope<P>` with a typed payload.".to_owned(),
        env.doc.clone().unwrap_or_default(),
    ]);
    quote! {
        #doc
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #serde
        pub struct #name<P = Box<serde_json::value::RawValue>> {
            #id
            #[doc = " The message's wire name."]
            #[serde(rename = #type_key)]
            pub message_type: String,
            #timestamp
            #[doc = " The payload (`{}` for a message without payload)."]
            #[serde(rename = #payload_key)]
            pub payload: P,
            #correlation
        }
    }
}

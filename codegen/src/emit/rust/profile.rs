//! The wire profile constant: `pub const WIRE: ipcspec_runtime::profile::WireProfile`,
//! and for binary framing `pub const HEADER_LAYOUT: ipcspec_runtime::codec::HeaderLayout`.
//!
//! The runtime defines the profile types and knows no catalogue; this module fills them
//! from the IR (framing, limits, timings, role messages, and the header layout from the
//! header struct's C layout and the envelope), so servers, clients and codecs are built
//! from the catalogue (`ServerConfig::from_profile(&migration::WIRE)`) and no value is
//! copied by hand.

use anyhow::{Context, bail};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::ir::{
    ByteOrder, ChecksumAlgorithm, ChecksumCoverage, Framing, LengthCounts, Module, TypeKind,
};

use super::docs;

/// The names of the generated items, for the collision check.
pub(super) const ITEMS: &[&str] = &["WIRE", "HEADER_LAYOUT"];

/// `HEADER_LAYOUT` (binary framing) and `WIRE`.
pub(super) fn items(module: &Module) -> anyhow::Result<TokenStream> {
    let mut out = TokenStream::new();
    let framing = match &module.wire.framing {
        Framing::LengthPrefixed {
            width_bytes,
            byte_order,
        } => {
            let width = match width_bytes {
                2 => quote!(U16),
                4 => quote!(U32),
                8 => quote!(U64),
                other => bail!("a length prefix of {other} bytes is not supported"),
            };
            let byte_order = byte_order_tokens(*byte_order);
            quote! {
                ipcspec_runtime::codec::Framing::LengthPrefixed(
                    ipcspec_runtime::codec::LengthPrefix {
                        width: ipcspec_runtime::codec::PrefixWidth::#width,
                        byte_order: #byte_order,
                    },
                )
            }
        }
        Framing::NewlineDelimited => quote!(ipcspec_runtime::codec::Framing::Newline),
        Framing::BinaryHeader { .. } => {
            out.extend(header_layout(module).context("the header layout")?);
            quote!(ipcspec_runtime::codec::Framing::BinaryHeader(
                &HEADER_LAYOUT
            ))
        }
    };
    let wire = &module.wire;
    let name = &module.name;
    let max_message_bytes = usize_lit(wire.max_message_bytes);
    let max_line_bytes = option(wire.max_line_bytes.map(usize_lit));
    let max_nesting_depth = option(wire.max_nesting_depth.map(usize_lit));
    let max_connections = option(wire.max_connections.map(usize_lit));
    let t = &wire.timing;
    let heartbeat_interval = option(t.heartbeat_interval_ms.map(millis));
    let stale_after = option(t.stale_after_ms.map(millis));
    let connect_timeout = option(t.connect_timeout_ms.map(millis));
    let request_timeout = option(t.request_timeout_ms.map(millis));
    let frame_read_timeout = option(t.frame_read_timeout_ms.map(millis));
    let reconnect = match &t.reconnect {
        None => quote!(None),
        Some(r) => {
            let max_attempts = u32::try_from(r.max_attempts)
                .map(Literal::u32_unsuffixed)
                .context("`maxAttempts` above u32::MAX")?;
            let initial_delay = millis(r.initial_delay_ms);
            let max_delay = millis(r.max_delay_ms);
            let multiplier = Literal::f64_unsuffixed(r.multiplier);
            let jitter = Literal::f64_unsuffixed(r.jitter);
            let max_queued_messages = option(r.max_queued_messages.map(usize_lit));
            quote! {
                Some(ipcspec_runtime::profile::Reconnect {
                    max_attempts: #max_attempts,
                    initial_delay: #initial_delay,
                    max_delay: #max_delay,
                    multiplier: #multiplier,
                    jitter: #jitter,
                    max_queued_messages: #max_queued_messages,
                })
            }
        }
    };
    let ack = option(wire.ack_message.as_deref().map(|m| quote!(#m)));
    let error = option(wire.error_message.as_deref().map(|m| quote!(#m)));
    let heartbeat = option(wire.heartbeat_message.as_deref().map(|m| quote!(#m)));
    let doc = docs::outer(&[
        "The catalogue's wire profile (`wire` in the catalogue): framing, limits, timings and \
         the messages with a role in the protocol. Build servers, clients and codecs from it \
         (`ServerConfig::from_profile(&WIRE)`, `ClientConfig::from_profile(&WIRE)`, \
         `WIRE.codec()`).",
    ]);
    out.extend(quote! {
        #doc
        pub const WIRE: ipcspec_runtime::profile::WireProfile = ipcspec_runtime::profile::WireProfile {
            catalogue: #name,
            framing: #framing,
            limits: ipcspec_runtime::profile::Limits {
                max_message_bytes: #max_message_bytes,
                max_line_bytes: #max_line_bytes,
                max_nesting_depth: #max_nesting_depth,
                max_connections: #max_connections,
            },
            timing: ipcspec_runtime::profile::Timing {
                heartbeat_interval: #heartbeat_interval,
                stale_after: #stale_after,
                connect_timeout: #connect_timeout,
                request_timeout: #request_timeout,
                frame_read_timeout: #frame_read_timeout,
                reconnect: #reconnect,
            },
            messages: ipcspec_runtime::profile::RoleMessages {
                ack: #ack,
                error: #error,
                heartbeat: #heartbeat,
            },
        };
    });
    Ok(out)
}

/// `HEADER_LAYOUT`: the header struct's size and the offset and size of each envelope
/// member, from its C layout.
fn header_layout(module: &Module) -> anyhow::Result<TokenStream> {
    let Framing::BinaryHeader {
        header,
        byte_order,
        length_counts,
    } = &module.wire.framing
    else {
        bail!("not a binary framing");
    };
    let def = module.ty(*header);
    let TypeKind::Struct(s) = &def.kind else {
        bail!("the header `{}` is not a struct", def.name);
    };
    let layout = s
        .c_layout
        .as_ref()
        .with_context(|| format!("the header `{}` has no C layout", def.name))?;
    let field = |name: &str| -> anyhow::Result<TokenStream> {
        let f = layout
            .fields
            .iter()
            .find(|f| f.name == name)
            .with_context(|| format!("the header `{}` has no field `{name}`", def.name))?;
        if !matches!(f.size, 1 | 2 | 4 | 8) {
            bail!(
                "header field `{name}` is {} bytes; envelope members are unsigned integers of 1, 2, 4 or 8 bytes",
                f.size
            );
        }
        let offset = usize_lit(f.offset);
        let size = usize_lit(f.size);
        Ok(quote! {
            ipcspec_runtime::codec::HeaderField { name: #name, offset: #offset, size: #size }
        })
    };
    let optional_field = |name: Option<&str>| -> anyhow::Result<TokenStream> {
        Ok(match name {
            Some(name) => {
                let f = field(name)?;
                quote!(Some(#f))
            }
            None => quote!(None),
        })
    };
    let fixed = |member: Option<&(String, i128)>| -> anyhow::Result<TokenStream> {
        Ok(match member {
            Some((name, value)) => {
                let f = field(name)?;
                let value: Literal = u64::try_from(*value)
                    .ok()
                    .and_then(|value| format!("{value:#x}").parse().ok())
                    .with_context(|| format!("the value of `{name}` is not a u64"))?;
                quote!(Some(ipcspec_runtime::codec::FixedField { field: #f, value: #value }))
            }
            None => quote!(None),
        })
    };
    let env = &module.wire.envelope;
    let name = &def.name;
    let size = usize_lit(layout.size);
    let byte_order = byte_order_tokens(*byte_order);
    let message_type = field(&env.type_key)?;
    let length = field(
        env.length
            .as_deref()
            .context("a binary envelope names its `length` field")?,
    )?;
    let length_counts = match length_counts {
        LengthCounts::HeaderAndPayload => quote!(HeaderAndPayload),
        LengthCounts::Payload => quote!(Payload),
    };
    let magic = fixed(env.magic.as_ref())?;
    let version = fixed(env.version.as_ref())?;
    let correlation_id = optional_field(env.correlation_id.as_deref())?;
    let timestamp = optional_field(env.timestamp.as_deref())?;
    let flags = optional_field(env.flags.as_deref())?;
    let checksum = match &env.checksum {
        None => quote!(None),
        Some((name, algorithm)) => {
            let f = field(name)?;
            let algorithm = match algorithm {
                ChecksumAlgorithm::Crc32c => quote!(Crc32c),
            };
            let covers = match env.checksum_covers {
                Some(ChecksumCoverage::MessageWithChecksumZeroed) => {
                    quote!(MessageWithChecksumZeroed)
                }
                None => bail!("the checksum `{name}` says nothing of what it covers"),
            };
            quote! {
                Some(ipcspec_runtime::codec::HeaderChecksum {
                    field: #f,
                    algorithm: ipcspec_runtime::codec::ChecksumAlgorithm::#algorithm,
                    covers: ipcspec_runtime::codec::ChecksumCoverage::#covers,
                })
            }
        }
    };
    let doc = docs::outer(&[&format!(
        "Where the envelope members sit in `{name}`, the header every message starts with \
         (`wire.framing` and `wire.envelope` in the catalogue, offsets from its C layout)."
    )]);
    Ok(quote! {
        #doc
        pub const HEADER_LAYOUT: ipcspec_runtime::codec::HeaderLayout = ipcspec_runtime::codec::HeaderLayout {
            name: #name,
            size: #size,
            byte_order: #byte_order,
            message_type: #message_type,
            length: #length,
            length_counts: ipcspec_runtime::codec::LengthCounts::#length_counts,
            magic: #magic,
            version: #version,
            correlation_id: #correlation_id,
            timestamp: #timestamp,
            flags: #flags,
            checksum: #checksum,
        };
    })
}

fn byte_order_tokens(order: ByteOrder) -> TokenStream {
    match order {
        ByteOrder::Little => quote!(ipcspec_runtime::codec::ByteOrder::Little),
        ByteOrder::Big => quote!(ipcspec_runtime::codec::ByteOrder::Big),
    }
}

fn usize_lit(value: u64) -> TokenStream {
    let lit = Literal::u64_unsuffixed(value);
    quote!(#lit)
}

fn millis(ms: u64) -> TokenStream {
    let lit = Literal::u64_unsuffixed(ms);
    quote!(std::time::Duration::from_millis(#lit))
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}

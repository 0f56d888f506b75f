//! The wire profile the server and client tests run with: a test catalogue's, as the
//! generator would emit it (length-prefixed, u32 little-endian, 1 MiB frames).

use std::time::Duration;

use ipcspec_runtime::codec::{ByteOrder, Framing, LengthPrefix, PrefixWidth};
use ipcspec_runtime::profile::{Limits, RoleMessages, Timing, WireProfile};

/// The length prefix of [`WIRE`].
pub const PREFIX: LengthPrefix = LengthPrefix {
    width: PrefixWidth::U32,
    byte_order: ByteOrder::Little,
};

pub const WIRE: WireProfile = WireProfile {
    catalogue: "runtime-tests",
    framing: Framing::LengthPrefixed(PREFIX),
    limits: Limits {
        max_message_bytes: 1024 * 1024,
        max_line_bytes: None,
        max_nesting_depth: None,
        max_connections: Some(512),
    },
    timing: Timing {
        heartbeat_interval: None,
        stale_after: Some(Duration::from_secs(90)),
        connect_timeout: Some(Duration::from_secs(5)),
        request_timeout: None,
        frame_read_timeout: Some(Duration::from_secs(10)),
        reconnect: None,
    },
    messages: RoleMessages {
        ack: None,
        error: None,
        heartbeat: None,
    },
};

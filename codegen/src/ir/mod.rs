//! The intermediate representation every emitter reads.
//!
//! Lowering a validated catalogue settles, once and for every target language: the
//! identifier of every item in Rust, C and TypeScript (casing, keyword escaping), name
//! collisions (reported as diagnostics), type references (resolved to indices), the order
//! in which types must be declared (C needs definitions before use), C layouts (offsets
//! and sizes from `ipcspec_schema::layout`), and every integer as a plain number. Emitters
//! know nothing of JSON catalogues or `IntLit`s; they walk these types.

mod lower;
pub mod names;

pub use lower::lower;

use ipcspec_schema::layout::CLayout;
pub use ipcspec_schema::model::{
    ByteOrder, Casing, ChecksumAlgorithm, ChecksumCoverage, Encoding, Int64Encoding,
    IoctlDirection, LengthCounts, Platform, PrimitiveType, UnattributedCorrelation, UnionRepr,
    UnknownKeys,
};

/// One catalogue, ready to emit.
#[derive(Debug, Clone)]
pub struct Module {
    /// The catalogue name, kebab-case (`direct-ipc`); output files are named after it.
    pub name: String,
    /// File name of the catalogue it came from (`direct-ipc.json`), for headers.
    pub source: String,
    /// Identifiers of the module itself.
    pub idents: ModuleIdents,
    /// Human title.
    pub title: String,
    /// Protocol version.
    pub version: String,
    /// Prose description.
    pub description: String,
    /// Parties.
    pub roles: Vec<Role>,
    /// Channels (empty for single-channel catalogues).
    pub channels: Vec<Channel>,
    /// The wire profile.
    pub wire: Wire,
    /// Named types in declaration order: every type a C-layout struct embeds by value
    /// comes before it.
    pub types: Vec<TypeDef>,
    /// Messages in catalogue order.
    pub messages: Vec<Message>,
    /// ioctl commands.
    pub ioctls: Vec<Ioctl>,
    /// Constants.
    pub constants: Vec<Constant>,
    /// Error codes, with the name of the generated enum.
    pub errors: ErrorCodes,
    /// State machines.
    pub machines: Vec<Machine>,
    /// Per role: the generated names of its outbound message enum and its handler trait.
    pub role_items: Vec<RoleItems>,
}

impl Module {
    /// The type at `index`.
    pub fn ty(&self, index: TypeId) -> &TypeDef {
        &self.types[index.0]
    }

    /// The message named `name`.
    pub fn message(&self, name: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.name == name)
    }

    /// Messages a role sends.
    pub fn sent_by<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Message> + 'a {
        self.messages
            .iter()
            .filter(move |m| m.from.iter().any(|r| r == role))
    }

    /// Messages a role receives.
    pub fn received_by<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Message> + 'a {
        self.messages
            .iter()
            .filter(move |m| m.to.iter().any(|r| r == role))
    }

    /// The value of `msg`'s priority (its own, else the profile's default), when the
    /// profile has priorities.
    pub fn priority_value(&self, msg: &Message) -> Option<i128> {
        let (id, default) = self.wire.priority.as_ref()?;
        let TypeKind::IntEnum(e) = &self.ty(*id).kind else {
            return None;
        };
        let name = msg.priority.as_deref().unwrap_or(default);
        e.values.iter().find(|v| v.name == name).map(|v| v.value)
    }

    /// The exact flags of `msg`'s binary header, when the envelope sets them
    /// (`flagBits`): the reply bits on a reply, then the priority shifted into place.
    pub fn header_flags(&self, msg: &Message) -> Option<i128> {
        let bits = self.wire.envelope.flag_bits.as_ref()?;
        let reply = if msg.is_reply { bits.reply } else { 0 };
        let priority = match bits.priority_shift {
            Some(shift) => self.priority_value(msg).unwrap_or(0) << shift,
            None => 0,
        };
        Some(reply | priority)
    }
}

/// Identifiers of a module.
#[derive(Debug, Clone)]
pub struct ModuleIdents {
    /// Rust module name (`direct_ipc`).
    pub rust: String,
    /// C macro prefix (`DIRECT_IPC`).
    pub c_prefix: String,
    /// C include guard (`IPCSPEC_DIRECT_IPC_H`).
    pub c_guard: String,
}

/// Identifiers of one item in each target language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idents {
    /// Rust spelling.
    pub rust: String,
    /// C spelling.
    pub c: String,
    /// TypeScript spelling.
    pub ts: String,
}

/// A role.
#[derive(Debug, Clone)]
pub struct Role {
    /// Wire name (`embedding-service`).
    pub name: String,
    /// Rust UpperCamelCase (`EmbeddingService`).
    pub rust: String,
    /// Prose.
    pub doc: String,
}

/// Generated items per role.
#[derive(Debug, Clone)]
pub struct RoleItems {
    /// The role's wire name.
    pub role: String,
    /// Enum of the messages the role sends (`AgentMessage`), when it sends any.
    pub message_enum: Option<String>,
    /// Handler trait for the messages it receives (`ServiceHandler`), when it receives any.
    pub handler_trait: Option<String>,
    /// Free function dispatching a received message to the handler (`dispatch_to_service`).
    pub dispatch_fn: Option<String>,
}

/// A channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Name.
    pub name: String,
    /// The roles at each of the two ends.
    pub ends: [Vec<String>; 2],
    /// Prose.
    pub doc: String,
}

/// The wire profile with every number resolved.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Transports.
    pub transports: Vec<Transport>,
    /// Framing.
    pub framing: Framing,
    /// Payload encoding.
    pub encoding: Encoding,
    /// Envelope members.
    pub envelope: Envelope,
    /// Key casing.
    pub key_casing: Casing,
    /// 64-bit integers in JSON.
    pub int64: Int64Encoding,
    /// Undeclared keys.
    pub unknown_keys: UnknownKeys,
    /// Largest message in bytes.
    pub max_message_bytes: u64,
    /// Largest line (newline framing).
    pub max_line_bytes: Option<u64>,
    /// Deepest JSON nesting.
    pub max_nesting_depth: Option<u64>,
    /// Most connections.
    pub max_connections: Option<u64>,
    /// Timing.
    pub timing: Timing,
    /// Acknowledgment message.
    pub ack_message: Option<String>,
    /// Error reply message.
    pub error_message: Option<String>,
    /// Heartbeat message.
    pub heartbeat_message: Option<String>,
    /// What a receiver sends for a frame whose id cannot be read.
    pub unattributable: Option<Unattributable>,
    /// Priority enum type and default value name.
    pub priority: Option<(TypeId, String)>,
    /// Docs of the profile, its limits and timing (whichever are given).
    pub docs: Vec<String>,
}

/// The answer to a frame nobody can attribute.
#[derive(Debug, Clone)]
pub struct Unattributable {
    /// The message sent (the acknowledgment or error message).
    pub message: String,
    /// The error code's wire name.
    pub code: String,
    /// The error code's Rust variant.
    pub code_rust_variant: String,
    /// What its correlation id holds.
    pub correlation: UnattributedCorrelation,
    /// Prose.
    pub doc: Option<String>,
}

/// A transport.
#[derive(Debug, Clone)]
pub struct Transport {
    /// `unix`, `socketpair`, `namedPipe`, `netlink`.
    pub kind: &'static str,
    /// Path, pipe name or netlink protocol, as text.
    pub address: Option<String>,
    /// Platform.
    pub platform: Platform,
    /// Descriptors travel with frames.
    pub fd_passing: bool,
    /// Channel carried.
    pub channel: Option<String>,
    /// Prose.
    pub doc: Option<String>,
}

/// Framing.
#[derive(Debug, Clone)]
pub enum Framing {
    /// Length prefix of `width` bytes.
    LengthPrefixed {
        width_bytes: u8,
        byte_order: ByteOrder,
    },
    /// One message per line.
    NewlineDelimited,
    /// A fixed binary header.
    BinaryHeader {
        header: TypeId,
        byte_order: ByteOrder,
        length_counts: LengthCounts,
    },
}

/// Envelope members: JSON keys, or header field names.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Message type key/field.
    pub type_key: String,
    /// Payload key (JSON only).
    pub payload: Option<String>,
    /// Message id key/field and its type.
    pub id: Option<(String, Ty)>,
    /// Timestamp key/field.
    pub timestamp: Option<String>,
    /// Correlation id key/field.
    pub correlation_id: Option<String>,
    /// Length field (binary).
    pub length: Option<String>,
    /// Magic field and value (binary).
    pub magic: Option<(String, i128)>,
    /// Version field and value (binary).
    pub version: Option<(String, i128)>,
    /// Flags field (binary).
    pub flags: Option<String>,
    /// What the envelope sets in the flags per message (binary); with it, a message's
    /// flags are exactly [`Module::header_flags`].
    pub flag_bits: Option<FlagBits>,
    /// Checksum field and algorithm (binary).
    pub checksum: Option<(String, ChecksumAlgorithm)>,
    /// What the checksum covers (binary).
    pub checksum_covers: Option<ChecksumCoverage>,
    /// `id` may be absent.
    pub id_optional: bool,
    /// `timestamp` may be absent.
    pub timestamp_optional: bool,
    /// A reply may lack the correlation id.
    pub correlation_optional: bool,
    /// Prose.
    pub doc: Option<String>,
}

/// The flag bits the envelope sets per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagBits {
    /// Bits set on every message marked `is_reply` (0 when the catalogue names none).
    pub reply: i128,
    /// Shift of the message's priority value, when priorities travel in the flags.
    pub priority_shift: Option<u32>,
    /// The error code a receiver answers other flags with.
    pub error: String,
}

/// Timing in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// Heartbeat interval.
    pub heartbeat_interval_ms: Option<u64>,
    /// Silence after which a peer is dead.
    pub stale_after_ms: Option<u64>,
    /// Connect timeout.
    pub connect_timeout_ms: Option<u64>,
    /// Request timeout.
    pub request_timeout_ms: Option<u64>,
    /// Frame read timeout.
    pub frame_read_timeout_ms: Option<u64>,
    /// Reconnection.
    pub reconnect: Option<Reconnect>,
}

/// Reconnection policy.
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// Attempts.
    pub max_attempts: u64,
    /// First delay.
    pub initial_delay_ms: u64,
    /// Largest delay.
    pub max_delay_ms: u64,
    /// Growth factor.
    pub multiplier: f64,
    /// Jitter fraction.
    pub jitter: f64,
    /// Queue bound while disconnected.
    pub max_queued_messages: Option<u64>,
}

/// Index of a type in [`Module::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub usize);

/// A resolved type reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// A primitive.
    Prim(PrimitiveType),
    /// A named type.
    Named(TypeId),
    /// A list.
    List(Box<Ty>),
    /// A map with string keys.
    Map(Box<Ty>),
    /// A fixed-size array.
    Array(Box<Ty>, u64),
}

/// A named type.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// The catalogue name.
    pub name: String,
    /// Identifiers per language.
    pub idents: Idents,
    /// Prose.
    pub doc: String,
    /// Anchor in the generated docs.
    pub anchor: String,
    /// The definition.
    pub kind: TypeKind,
}

/// A type definition.
#[derive(Debug, Clone)]
pub enum TypeKind {
    /// A struct.
    Struct(Struct),
    /// A string enum.
    Enum(Enum),
    /// An integer enum.
    IntEnum(IntEnum),
    /// A tagged union.
    Union(Union),
    /// An alias.
    Alias(Alias),
}

/// A struct.
#[derive(Debug, Clone)]
pub struct Struct {
    /// C layout of the fixed part, for `layout: c`.
    pub c_layout: Option<CLayout>,
    /// Fields in wire order (fixed part, then tail fields).
    pub fields: Vec<Field>,
    /// Groups of optional fields (wire names) of which every value holds exactly one.
    pub exactly_one_of: Vec<Vec<String>>,
    /// Fields computed as the sum of an integer field over a list's items.
    pub sums: Vec<Sum>,
}

/// A field computed as a sum: `field` = the sum of `item_field` over the items of `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    /// The computed integer field (wire name).
    pub field: String,
    /// The list field of the same struct (wire name).
    pub list: String,
    /// The integer field of the list's items that is summed (wire name).
    pub item_field: String,
}

impl Struct {
    /// True when the struct has variable-length tail fields.
    pub fn has_tail(&self) -> bool {
        self.fields.iter().any(|f| f.length_field.is_some())
    }
}

/// A struct field.
#[derive(Debug, Clone)]
pub struct Field {
    /// The key on the wire / C member name, exactly as in the catalogue.
    pub wire: String,
    /// Rust member, C member (escaped), TypeScript key (quoted when needed).
    pub idents: Idents,
    /// Type.
    pub ty: Ty,
    /// Prose.
    pub doc: String,
    /// The key may be absent.
    pub optional: bool,
    /// The value may be null.
    pub nullable: bool,
    /// Constraints.
    pub constraints: Constraints,
    /// Padding (must be zero).
    pub padding: bool,
    /// User pointer: element type and the field counting elements.
    pub pointee: Option<(Ty, String)>,
    /// Tail field: the field holding its element count.
    pub length_field: Option<String>,
    /// Offset in the C layout (fixed fields of C-layout structs).
    pub c_offset: Option<u64>,
}

/// Constraints with plain numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    /// Inclusive minimum.
    pub minimum: Option<f64>,
    /// Inclusive maximum.
    pub maximum: Option<f64>,
    /// Shortest string (Unicode scalar values).
    pub min_length: Option<u64>,
    /// Longest string.
    pub max_length: Option<u64>,
    /// Pattern.
    pub pattern: Option<String>,
    /// Fewest elements.
    pub min_items: Option<u64>,
    /// Most elements.
    pub max_items: Option<u64>,
}

impl Constraints {
    /// True when nothing is constrained.
    pub fn is_empty(&self) -> bool {
        self == &Constraints::default()
    }
}

/// A string enum.
#[derive(Debug, Clone)]
pub struct Enum {
    /// Members.
    pub values: Vec<EnumValue>,
}

/// A string enum member.
#[derive(Debug, Clone)]
pub struct EnumValue {
    /// Catalogue name.
    pub name: String,
    /// Wire string.
    pub wire: String,
    /// Rust variant, C enumerator macro, TS member.
    pub idents: Idents,
    /// Prose.
    pub doc: String,
}

/// An integer enum.
#[derive(Debug, Clone)]
pub struct IntEnum {
    /// Carrier type.
    pub repr: PrimitiveType,
    /// Members.
    pub values: Vec<IntEnumValue>,
}

/// An integer enum member.
#[derive(Debug, Clone)]
pub struct IntEnumValue {
    /// Catalogue name.
    pub name: String,
    /// Value.
    pub value: i128,
    /// Rust variant, C enumerator, TS member.
    pub idents: Idents,
    /// Prose.
    pub doc: String,
}

/// A tagged union.
#[derive(Debug, Clone)]
pub struct Union {
    /// Representation.
    pub repr: UnionRepr,
    /// Tag key.
    pub tag: String,
    /// Content key (adjacent).
    pub content: Option<String>,
    /// Variants.
    pub variants: Vec<Variant>,
}

/// A union variant.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Catalogue name.
    pub name: String,
    /// Tag on the wire.
    pub wire: String,
    /// Rust variant, C -, TS -.
    pub idents: Idents,
    /// Content type.
    pub ty: Option<Ty>,
    /// Prose.
    pub doc: String,
}

/// An alias.
#[derive(Debug, Clone)]
pub struct Alias {
    /// Aliased type.
    pub ty: Ty,
    /// Constraints.
    pub constraints: Constraints,
}

/// A message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Wire name.
    pub name: String,
    /// Rust enum variant (`BackupRequest`).
    pub rust_variant: String,
    /// Handler method name.
    pub rust_method: String,
    /// C macro for the name or code (`MIGRATION_MSG_BACKUP_REQUEST`).
    pub c_macro: String,
    /// Numeric code.
    pub code: Option<i128>,
    /// Senders.
    pub from: Vec<String>,
    /// Receivers.
    pub to: Vec<String>,
    /// Channels.
    pub channels: Vec<String>,
    /// Payload type.
    pub payload: Option<Ty>,
    /// Reply message name.
    pub reply: Option<String>,
    /// Carries a correlation id.
    pub is_reply: bool,
    /// Acknowledged.
    pub acknowledged: bool,
    /// Priority value name.
    pub priority: Option<String>,
    /// Prose.
    pub doc: String,
    /// Anchor in the generated docs.
    pub anchor: String,
}

/// An ioctl command.
#[derive(Debug, Clone)]
pub struct Ioctl {
    /// Macro name.
    pub name: String,
    /// Magic byte.
    pub magic: u8,
    /// Whether the magic was written as a character (`'V'`).
    pub magic_char: Option<char>,
    /// Number.
    pub number: u8,
    /// Direction.
    pub direction: IoctlDirection,
    /// Argument struct.
    pub arg: Option<TypeId>,
    /// The request code Linux computes (`_IOC(dir, magic, number, size)`).
    pub request: u32,
    /// Prose.
    pub doc: String,
}

/// A constant.
#[derive(Debug, Clone)]
pub struct Constant {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: PrimitiveType,
    /// Value.
    pub value: ConstValue,
    /// How an integer was written (`0x56455849`), for docs and C.
    pub text: Option<String>,
    /// Prose.
    pub doc: String,
}

/// A constant's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstValue {
    /// Integer.
    Int(i128),
    /// Float.
    Float(f64),
    /// Bool.
    Bool(bool),
    /// String.
    Str(String),
}

/// Error codes and the name of their generated enum.
#[derive(Debug, Clone)]
pub struct ErrorCodes {
    /// Generated enum name (`ErrorCode`, or a fallback when a type has that name).
    pub enum_name: String,
    /// The codes.
    pub codes: Vec<ErrorCode>,
}

/// An error code.
#[derive(Debug, Clone)]
pub struct ErrorCode {
    /// Symbolic name (wire form).
    pub name: String,
    /// Rust variant.
    pub rust_variant: String,
    /// C macro.
    pub c_macro: String,
    /// Numeric code.
    pub code: Option<i128>,
    /// Prose.
    pub doc: String,
}

/// A state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Name.
    pub name: String,
    /// Identifiers of the generated state enum.
    pub idents: Idents,
    /// Roles holding it.
    pub roles: Vec<String>,
    /// Prose.
    pub doc: String,
    /// Initial state name.
    pub initial: String,
    /// States.
    pub states: Vec<State>,
    /// Transitions.
    pub transitions: Vec<Transition>,
    /// The distinct triggers of `transitions`, in first-seen order.
    pub triggers: Vec<MachineTrigger>,
    /// Rust name of the enum of `triggers` (`UserMigrationTrigger`).
    pub trigger_enum: String,
    /// The string enum carrying the state in messages (`stateType`), when declared.
    pub state_type: Option<StateType>,
    /// Anchor in the generated docs.
    pub anchor: String,
}

/// A trigger of a machine, with its variant in the machine's trigger enum.
#[derive(Debug, Clone)]
pub struct MachineTrigger {
    /// The trigger.
    pub on: Trigger,
    /// Rust variant (`DeadlinePassed`, `SendBackupRequest`, `ReceiveBackupStarted`).
    pub rust: String,
}

/// The string enum a machine's state travels as.
#[derive(Debug, Clone)]
pub struct StateType {
    /// The enum.
    pub ty: TypeId,
    /// Per state of the machine, in `states` order, the Rust variant of the enum member
    /// with the state's value.
    pub variants: Vec<String>,
}

/// A state.
#[derive(Debug, Clone)]
pub struct State {
    /// Name.
    pub name: String,
    /// Value string.
    pub value: String,
    /// Identifiers.
    pub idents: Idents,
    /// Prose.
    pub doc: String,
    /// Messages it may send.
    pub sends: Vec<String>,
    /// Messages it accepts.
    pub receives: Vec<String>,
    /// Terminal.
    pub terminal: bool,
}

/// A transition.
#[derive(Debug, Clone)]
pub struct Transition {
    /// Source state.
    pub from: String,
    /// Target state.
    pub to: String,
    /// Trigger.
    pub on: Trigger,
    /// Prose.
    pub doc: Option<String>,
}

/// A trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Sending a message.
    Send(String),
    /// Receiving a message.
    Receive(String),
    /// A local event.
    Event(String),
}

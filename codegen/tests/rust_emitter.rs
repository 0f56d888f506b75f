//! The Rust emitter end to end.
//!
//! The crate generated from `specs/` is a dev-dependency (`ipcspec-generated`): its
//! dispatchers decode real messages into typed handler calls, every type round-trips the
//! examples `emit::examples` derives from the IR (an independent reading of
//! WIRE-MAPPING.md) in JSON and, for C layouts, in binary, and malformed input is
//! rejected with a precise error. The fixture catalogues, which use every language
//! feature, are generated into a temporary crate that cargo compiles, lints and tests.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

#[path = "rust_emitter/json_eq.rs"]
mod json_eq;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Command;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ipcspec_codegen::emit::examples;
use ipcspec_codegen::ir::{Module, TypeId, TypeKind};
use ipcspec_generated::{migration, vexfs};
use ipcspec_runtime::binary::DecodeErrorKind;
use ipcspec_runtime::{DispatchError, Handled, MessageContext, Trigger, Unhandled};
use serde_json::value::RawValue;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The IR of a catalogue file (relative to the repository root).
fn lower(path: &str) -> Module {
    let report = ipcspec_codegen::check(&[root().join(path)]);
    let catalogue = report.loaded[0]
        .valid()
        .unwrap_or_else(|| panic!("{path} is invalid"));
    ipcspec_codegen::ir::lower(catalogue).unwrap()
}

/// Runs a future that never waits (test handlers answer at once) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}

fn raw(value: &Value) -> Box<RawValue> {
    RawValue::from_string(value.to_string()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Migration (JSON): dispatch into typed handlers.

/// Records each call as `method: detail`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn record<E>(&self, call: String) -> Result<Handled<(), ()>, E> {
        self.calls.lock().unwrap().push(call);
        Ok(Handled::done())
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl migration::AgentHandler for Recorder {
    type FollowUp = ();
    type Detail = ();

    async fn backup_request(
        &self,
        ctx: &MessageContext,
        p: migration::BackupRequestPayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!(
            "backup_request: {} {} {:?} {:?} {} {:?} {:?}",
            ctx.message_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            p.backup_id,
            p.deadline.unix_timestamp(),
            p.reason,
            p.delays_remaining,
            p.max_delay,
            p.message
        ))
    }
    async fn status_update(
        &self,
        _: &MessageContext,
        p: migration::StatusUpdatePayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!("status_update: {:?} {:?}", p.phase, p.user_state))
    }
    async fn escalation_notice(
        &self,
        _: &MessageContext,
        p: migration::EscalationNoticePayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!("escalation_notice: {:?}", p.level))
    }
    async fn configuration_update(
        &self,
        _: &MessageContext,
        p: migration::ConfigurationUpdatePayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!("configuration_update: {}", p.config_version))
    }
    async fn shutdown_request(
        &self,
        _: &MessageContext,
        p: migration::ShutdownRequestPayload,
    ) -> migration::HandlerResult<()> {
        if p.grace_period > Duration::from_secs(60) {
            return Err(migration::ErrorCode::InvalidMessage.error("too long"));
        }
        self.record(format!("shutdown_request: {:?}", p.grace_period))
    }
    async fn heartbeat(&self, _: &MessageContext) -> migration::HandlerResult<()> {
        self.record("heartbeat".into())
    }
    async fn acknowledgment(
        &self,
        ctx: &MessageContext,
        p: migration::AcknowledgmentPayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!(
            "acknowledgment: {} {:?}",
            p.success, ctx.correlation_id
        ))
    }
}

impl migration::ServiceHandler for Recorder {
    type FollowUp = ();
    type Detail = ();

    async fn agent_started(
        &self,
        _: &MessageContext,
        p: migration::AgentStartedPayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!("agent_started: {}", p.user_id))
    }
    async fn backup_started(
        &self,
        _: &MessageContext,
        _: migration::BackupStartedPayload,
    ) -> migration::HandlerResult<()> {
        self.record("backup_started".into())
    }
    async fn backup_progress(
        &self,
        _: &MessageContext,
        p: migration::BackupProgressPayload,
    ) -> migration::HandlerResult<()> {
        self.record(format!("backup_progress: {}", p.bytes_transferred))
    }
    async fn backup_completed(
        &self,
        _: &MessageContext,
        _: migration::BackupCompletedPayload,
    ) -> migration::HandlerResult<()> {
        self.record("backup_completed".into())
    }
    async fn delay_request(
        &self,
        _: &MessageContext,
        _: migration::DelayRequestPayload,
    ) -> migration::HandlerResult<()> {
        self.record("delay_request".into())
    }
    async fn user_action(
        &self,
        _: &MessageContext,
        _: migration::UserActionPayload,
    ) -> migration::HandlerResult<()> {
        self.record("user_action".into())
    }
    async fn error_report(
        &self,
        _: &MessageContext,
        _: migration::ErrorReportPayload,
    ) -> migration::HandlerResult<()> {
        self.record("error_report".into())
    }
    async fn heartbeat(&self, _: &MessageContext) -> migration::HandlerResult<()> {
        self.record("heartbeat".into())
    }
    async fn acknowledgment(
        &self,
        _: &MessageContext,
        _: migration::AcknowledgmentPayload,
    ) -> migration::HandlerResult<()> {
        self.record("acknowledgment".into())
    }
}

/// Splits a JSON frame as the runtime will: the envelope's type and raw payload.
fn frame(text: &str) -> (String, Box<RawValue>) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        message_type: String,
        payload: Box<RawValue>,
    }
    let envelope: Envelope = serde_json::from_str(text).unwrap();
    (envelope.message_type, envelope.payload)
}

#[test]
fn migration_frames_dispatch_to_typed_agent_handlers() {
    let agent = Recorder::default();
    let ctx = MessageContext {
        message_id: Some(ipcspec_runtime::dispatch::MessageId::Text(
            "unique-message-id".into(),
        )),
        ..MessageContext::default()
    };
    let frames = [
        r#"{"id":"unique-message-id","type":"BACKUP_REQUEST","timestamp":"2025-03-01T09:00:00Z","payload":{"backupId":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","deadline":"2025-03-14T17:00:00Z","reason":"MIGRATION_SCHEDULED","delaysRemaining":2,"maxDelay":259200000}}"#,
        r#"{"id":"m2","type":"STATUS_UPDATE","timestamp":"2025-03-01T09:00:01Z","payload":{"phase":"COLLECTING_BACKUPS","userState":"BACKUP_REQUESTED"}}"#,
        r#"{"id":"m3","type":"HEARTBEAT","timestamp":"2025-03-01T09:00:02Z","payload":{}}"#,
        r#"{"id":"m4","type":"SHUTDOWN_REQUEST","timestamp":"2025-03-01T09:00:03Z","payload":{"reason":"MIGRATION_COMPLETED","gracePeriod":30000}}"#,
    ];
    for text in frames {
        let (message_type, payload) = frame(text);
        let reply = block_on(migration::dispatch_to_agent(
            &agent,
            &ctx,
            &message_type,
            &payload,
        ))
        .unwrap();
        // Migration's messages are acknowledged by the runtime, never answered by handlers.
        assert!(reply.reply.is_none(), "{message_type}");
    }
    assert_eq!(
        agent.calls(),
        [
            "backup_request: unique-message-id 3f2504e0-4f89-41d3-9a0c-0305e82c3301 1741971600 MigrationScheduled 2 Some(259200s) None",
            "status_update: CollectingBackups BackupRequested",
            "heartbeat",
            "shutdown_request: 30s",
        ]
    );
}

#[test]
fn every_migration_message_example_dispatches_to_its_receivers() {
    let module = lower("specs/migration.json");
    let handler = Recorder::default();
    let ctx = MessageContext::default();
    for message in &module.messages {
        let payload = raw(&examples::payload(&module, message).unwrap());
        for role in &message.to {
            let result = match role.as_str() {
                "agent" => block_on(migration::dispatch_to_agent(
                    &handler,
                    &ctx,
                    &message.name,
                    &payload,
                ))
                .map(drop),
                "service" => block_on(migration::dispatch_to_service(
                    &handler,
                    &ctx,
                    &message.name,
                    &payload,
                ))
                .map(drop),
                other => panic!("unexpected role {other}"),
            };
            result.unwrap_or_else(|e| panic!("{} to {role}: {e}", message.name));
        }
    }
    let dispatched: usize = module.messages.iter().map(|m| m.to.len()).sum();
    assert_eq!(handler.calls().len(), dispatched);
}

#[test]
fn dispatch_errors_name_the_message_and_the_problem() {
    let agent = Recorder::default();
    let ctx = MessageContext::default();
    let dispatch = |message_type: &str, payload: Value| {
        block_on(migration::dispatch_to_agent(
            &agent,
            &ctx,
            message_type,
            &raw(&payload),
        ))
        .unwrap_err()
    };

    assert!(
        matches!(dispatch("NO_SUCH", json!({})), DispatchError::Unhandled(Unhandled::UnknownType { message_type }) if message_type == "NO_SUCH")
    );
    // The agent sends AGENT_STARTED; it never receives it.
    assert!(matches!(
        dispatch("AGENT_STARTED", json!({})),
        DispatchError::Unhandled(Unhandled::NotReceived {
            message_type: "AGENT_STARTED"
        })
    ));

    let error = dispatch(
        "STATUS_UPDATE",
        json!({"phase": "COLLECTING_BACKUPS", "userState": "BACKUP_REQUESTED", "extra": 1}),
    );
    assert!(matches!(
        error,
        DispatchError::Unhandled(Unhandled::MalformedJson {
            message_type: "STATUS_UPDATE",
            ..
        })
    ));
    assert!(
        error.to_string().contains("unknown field `extra`"),
        "{error}"
    );

    let error = dispatch("HEARTBEAT", json!({"x": 1}));
    assert!(
        matches!(
            error,
            DispatchError::Unhandled(Unhandled::MalformedJson {
                message_type: "HEARTBEAT",
                ..
            })
        ),
        "{error}"
    );

    let error = dispatch("BACKUP_REQUEST", json!({"backupId": "not-a-uuid"}));
    assert!(
        error
            .to_string()
            .starts_with("malformed `BACKUP_REQUEST` payload at `backupId`: invalid value"),
        "{error}"
    );

    let error = dispatch(
        "SHUTDOWN_REQUEST",
        json!({"reason": "MIGRATION_COMPLETED", "gracePeriod": 120_000}),
    );
    let DispatchError::Refused {
        message_type: "SHUTDOWN_REQUEST",
        error,
    } = error
    else {
        panic!("{error}");
    };
    assert_eq!(error.message, "too long");
    assert_eq!(error.code, migration::ErrorCode::InvalidMessage);

    // A payload that decodes but breaks a constraint never reaches the handler.
    let calls = agent.calls().len();
    let error = dispatch(
        "STATUS_UPDATE",
        json!({"phase": "COLLECTING_BACKUPS", "userState": "BACKUP_REQUESTED", "message": "x".repeat(2001)}),
    );
    let DispatchError::Unhandled(Unhandled::Invalid {
        message_type: "STATUS_UPDATE",
        errors,
    }) = &error
    else {
        panic!("{error}");
    };
    assert_eq!(errors.errors()[0].path, "message", "{error}");
    assert_eq!(agent.calls().len(), calls, "the handler was called");
}

/// Says in its return value what follows the reply and that the connection closes.
struct Closer;

impl migration::AgentHandler for Closer {
    type FollowUp = &'static str;
    type Detail = u32;

    async fn backup_request(
        &self,
        _: &MessageContext,
        _: migration::BackupRequestPayload,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Ok(Handled::done().then(["first", "second"]).and_close())
    }
    async fn status_update(
        &self,
        _: &MessageContext,
        _: migration::StatusUpdatePayload,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Err(migration::ErrorCode::InvalidState
            .error("not now")
            .with_detail(7)
            .and_close())
    }
    async fn escalation_notice(
        &self,
        _: &MessageContext,
        _: migration::EscalationNoticePayload,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Ok(Handled::done())
    }
    async fn configuration_update(
        &self,
        _: &MessageContext,
        _: migration::ConfigurationUpdatePayload,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Ok(Handled::done())
    }
    async fn shutdown_request(
        &self,
        _: &MessageContext,
        _: migration::ShutdownRequestPayload,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Ok(Handled::done())
    }
    async fn heartbeat(
        &self,
        _: &MessageContext,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Ok(Handled::done())
    }
    async fn acknowledgment(
        &self,
        _: &MessageContext,
        _: migration::AcknowledgmentPayload,
    ) -> migration::HandlerResult<(), &'static str, u32> {
        Ok(Handled::done())
    }
}

#[test]
fn follow_ups_closing_and_refusal_detail_come_back_from_the_dispatcher() {
    let ctx = MessageContext::default();
    let request = json!({"backupId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "deadline": "2025-03-14T17:00:00Z", "reason": "MIGRATION_SCHEDULED", "delaysRemaining": 2});
    let handled = block_on(migration::dispatch_to_agent(
        &Closer,
        &ctx,
        "BACKUP_REQUEST",
        &raw(&request),
    ))
    .unwrap();
    assert_eq!(
        (handled.reply, handled.then, handled.close),
        (None, vec!["first", "second"], true)
    );
    let status = json!({"phase": "COLLECTING_BACKUPS", "userState": "BACKUP_REQUESTED"});
    let error = block_on(migration::dispatch_to_agent(
        &Closer,
        &ctx,
        "STATUS_UPDATE",
        &raw(&status),
    ))
    .unwrap_err();
    let DispatchError::Refused { error, .. } = error else {
        panic!("{error}");
    };
    assert_eq!(
        (error.code, error.detail, error.close),
        (migration::ErrorCode::InvalidState, 7, true)
    );
}

#[test]
fn message_enums_know_their_wire_facts() {
    let message = migration::AgentMessage::Heartbeat;
    assert_eq!(message.message_type(), "HEARTBEAT");
    assert_eq!(message.payload_json().unwrap(), json!({}));
    assert!(message.info().to.contains(&"service"));
    let ack = migration::AgentMessage::Acknowledgment(migration::AcknowledgmentPayload {
        success: false,
        error_code: Some("UNKNOWN_MESSAGE_TYPE".into()),
        error_message: None,
    });
    assert_eq!(
        ack.payload_json().unwrap(),
        json!({"success": false, "errorCode": "UNKNOWN_MESSAGE_TYPE"})
    );
    assert!(ack.info().is_reply);
    let backup = migration::MESSAGES
        .iter()
        .find(|m| m.name == "BACKUP_REQUEST")
        .unwrap();
    assert_eq!(
        (backup.from, backup.to, backup.acknowledged),
        (&["service"][..], &["agent"][..], true)
    );
    assert_eq!(backup.payload, Some("BackupRequestPayload"));
}

// ---------------------------------------------------------------------------------------
// Every type of every catalogue against the examples derived from the IR.

type JsonRoundtrip = fn(&str, Value) -> Option<Result<Value, serde_json::Error>>;
type BinaryRoundtrip = fn(&str, Value) -> Option<Result<Value, String>>;

fn registry(module: &Module) -> (JsonRoundtrip, BinaryRoundtrip) {
    use ipcspec_generated::{direct_ipc, xstatenet};
    match module.idents.rust.as_str() {
        // JSON-only catalogues have no type with a binary form, hence no binary registry.
        "direct_ipc" => (direct_ipc::registries::json_roundtrip, |_, _| None),
        "migration" => (migration::registries::json_roundtrip, |_, _| None),
        "vexfs" => (
            vexfs::registries::json_roundtrip,
            vexfs::registries::binary_roundtrip,
        ),
        "xstatenet" => (xstatenet::registries::json_roundtrip, |_, _| None),
        other => panic!("no generated module {other}"),
    }
}

const SPECS: [&str; 4] = [
    "specs/direct-ipc.json",
    "specs/migration.json",
    "specs/vexfs.json",
    "specs/xstatenet.json",
];

fn has_binary_form(kind: &TypeKind) -> bool {
    match kind {
        TypeKind::Struct(s) => s.c_layout.is_some(),
        TypeKind::IntEnum(_) => true,
        _ => false,
    }
}

#[test]
fn every_spec_type_round_trips_its_examples() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in SPECS {
        let module = lower(path);
        let (json_roundtrip, binary_roundtrip) = registry(&module);
        for (index, def) in module.types.iter().enumerate() {
            for example in examples::type_examples(&module, TypeId(index)).unwrap() {
                checked += 1;
                let name = &def.name;
                match json_roundtrip(name, example.clone()) {
                    Some(Ok(back)) if json_eq::same(&example, &back) => {}
                    Some(Ok(back)) => {
                        failures.push(format!("{path} {name}: {example} came back as {back}"))
                    }
                    Some(Err(e)) => {
                        failures.push(format!("{path} {name}: {example} rejected: {e}"))
                    }
                    None => failures.push(format!("{path} {name}: not in json_roundtrip")),
                }
                let binary = binary_roundtrip(name, example.clone());
                match (has_binary_form(&def.kind), binary) {
                    (true, Some(Ok(back))) if json_eq::same(&example, &back) => {}
                    (true, Some(Ok(back))) => {
                        failures.push(format!("{path} {name}: binary gave {back}"))
                    }
                    (true, Some(Err(e))) => failures.push(format!("{path} {name}: binary: {e}")),
                    (false, None) => {}
                    (expected, got) => failures.push(format!(
                        "{path} {name}: binary form {expected}, registry {got:?}"
                    )),
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} examples");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// VexFS (binary): C structs, tails, hostile input, dispatch by code.

fn embedding_request() -> vexfs::EmbeddingRequest {
    vexfs::EmbeddingRequest {
        request_id: 42,
        dimensions: 2,
        data_type: vexfs::DataType::Float32,
        data_size: 8,
        model_len: 4,
        timeout_ms: 1000,
        flags: 0,
        priority: vexfs::Priority::High,
        reserved: [0; 7],
        model: "mini".into(),
        data: [1.0_f32.to_le_bytes(), 2.0_f32.to_le_bytes()].concat(),
    }
}

#[test]
fn vexfs_structs_are_their_c_layout_little_endian() {
    let request = embedding_request();
    let bytes = request.encode().unwrap();
    assert_eq!(bytes.len(), 40 + 4 + 8);
    assert_eq!(&bytes[..8], &42_u64.to_le_bytes());
    assert_eq!(&bytes[12..16], &0_u32.to_le_bytes(), "data_type Float32");
    assert_eq!(bytes[32], 192, "priority High");
    assert_eq!(&bytes[40..44], b"mini");
    assert_eq!(vexfs::EmbeddingRequest::decode(&bytes).unwrap(), request);

    let capabilities = vexfs::ServiceCapabilities {
        supported_data_types: 1,
        max_batch_size: 2,
        max_concurrent_requests: 3,
        max_input_bytes: 4,
        typical_latency_us: 5,
        max_throughput_per_sec: 6,
    };
    assert_eq!(
        capabilities.encode().unwrap(),
        (1..=6_u32).flat_map(u32::to_le_bytes).collect::<Vec<_>>()
    );
}

#[test]
fn vexfs_rejects_unknown_enum_values_and_truncated_input() {
    let bytes = embedding_request().encode().unwrap();

    let mut unknown_type = bytes.clone();
    unknown_type[12] = 9;
    let error = vexfs::EmbeddingRequest::decode(&unknown_type).unwrap_err();
    assert_eq!(
        error.kind(),
        &DecodeErrorKind::UnknownEnumValue {
            ty: "DataType",
            value: 9
        }
    );
    assert_eq!(
        (error.path().as_str(), error.offset()),
        ("EmbeddingRequest.data_type", 12)
    );
    assert!(
        vexfs::registries::json_roundtrip("DataType", json!(9))
            .unwrap()
            .is_err()
    );

    for len in 0..bytes.len() {
        let error = vexfs::EmbeddingRequest::decode(&bytes[..len]).unwrap_err();
        assert!(
            matches!(error.kind(), DecodeErrorKind::Truncated { .. }),
            "{len}: {error}"
        );
    }

    // A count the buffer cannot back is refused before anything is allocated for it.
    let mut hostile = bytes;
    hostile[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    let error = vexfs::EmbeddingRequest::decode(&hostile).unwrap_err();
    assert_eq!(error.path(), "EmbeddingRequest.model");
    assert!(
        matches!(error.kind(), DecodeErrorKind::Truncated { .. }),
        "{error}"
    );
}

/// The embedding service's side of VexFS: answers requests, refuses the rest.
struct EmbeddingService;

impl vexfs::EmbeddingServiceHandler for EmbeddingService {
    type FollowUp = ();
    type Detail = ();

    async fn service_register_response(
        &self,
        _: &MessageContext,
        _: vexfs::ServiceRegisterResult,
    ) -> vexfs::HandlerResult<()> {
        Ok(Handled::done())
    }
    async fn service_discovery(
        &self,
        _: &MessageContext,
        _: vexfs::DiscoveryAnnouncement,
    ) -> vexfs::HandlerResult<()> {
        Ok(Handled::done())
    }
    async fn embedding_request(
        &self,
        _: &MessageContext,
        request: vexfs::EmbeddingRequest,
    ) -> vexfs::HandlerResult<vexfs::EmbeddingResponse> {
        let embedding: Vec<u8> = request.data.iter().map(|b| b.wrapping_add(1)).collect();
        Ok(Handled::reply(vexfs::EmbeddingResponse {
            request_id: request.request_id,
            dimensions: request.dimensions,
            data_type: request.data_type,
            data_size: u32::try_from(embedding.len()).unwrap(),
            processing_time_us: 7,
            embedding,
        }))
    }
    async fn batch_embedding_request(
        &self,
        _: &MessageContext,
        _: vexfs::BatchEmbeddingRequest,
    ) -> vexfs::HandlerResult<vexfs::BatchEmbeddingResponse> {
        Err(vexfs::ErrorCode::BatchTooLarge.error("no batches here"))
    }
    async fn health_check(
        &self,
        _: &MessageContext,
    ) -> vexfs::HandlerResult<vexfs::HealthCheckResult> {
        Ok(Handled::reply(vexfs::HealthCheckResult {
            health: vexfs::HealthStatus::Healthy,
            active_requests: 0,
            queued_requests: 0,
            loaded_models: 1,
            uptime: Duration::from_secs(60),
        }))
    }
    async fn status_query(
        &self,
        _: &MessageContext,
    ) -> vexfs::HandlerResult<vexfs::ServiceStatusReport> {
        Err(vexfs::ErrorCode::InternalError.error("not implemented"))
    }
    async fn error(&self, _: &MessageContext, _: vexfs::ErrorInfo) -> vexfs::HandlerResult<()> {
        Ok(Handled::done())
    }
    async fn ack(&self, _: &MessageContext, _: vexfs::AckInfo) -> vexfs::HandlerResult<()> {
        Ok(Handled::done())
    }
}

#[test]
fn vexfs_dispatches_by_code_and_returns_the_reply() {
    let ctx = MessageContext::default();
    let request = embedding_request().encode().unwrap();
    let reply = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x0101,
        &request,
    ))
    .unwrap()
    .reply
    .unwrap();
    assert_eq!(
        (reply.message_type(), reply.code()),
        ("EMBEDDING_RESPONSE", Some(0x0102))
    );
    let vexfs::EmbeddingServiceMessage::EmbeddingResponse(response) = &reply else {
        panic!("{reply:?}");
    };
    assert_eq!((response.request_id, response.data_size), (42, 8));
    let payload = reply.encode_payload().unwrap();
    assert_eq!(
        vexfs::EmbeddingResponse::decode(&payload).unwrap(),
        *response
    );

    // HEALTH_CHECK has no payload: any byte is too many.
    let health = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x0201,
        &[],
    ))
    .unwrap()
    .reply;
    assert!(matches!(
        health,
        Some(vexfs::EmbeddingServiceMessage::HealthCheckResponse(_))
    ));
    let error = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x0201,
        &[0],
    ))
    .unwrap_err();
    assert!(
        matches!(
            error,
            DispatchError::Unhandled(Unhandled::MalformedBinary {
                message_type: "HEALTH_CHECK",
                ..
            })
        ),
        "{error}"
    );

    let error = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x0101,
        &request[..10],
    ))
    .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "malformed `EMBEDDING_REQUEST` payload: EmbeddingRequest.dimensions: at byte 8"
        ),
        "{error}"
    );
    let error = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x0103,
        &[],
    ))
    .unwrap_err();
    assert!(
        matches!(
            error,
            DispatchError::Unhandled(Unhandled::MalformedBinary { .. })
        ),
        "{error}"
    );
    let error = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x0001,
        &[],
    ))
    .unwrap_err();
    assert!(
        matches!(
            error,
            DispatchError::Unhandled(Unhandled::NotReceived {
                message_type: "SERVICE_REGISTER"
            })
        ),
        "{error}"
    );
    let error = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &ctx,
        0x9999,
        &[],
    ))
    .unwrap_err();
    assert!(
        matches!(
            error,
            DispatchError::Unhandled(Unhandled::UnknownCode { code: 0x9999 })
        ),
        "{error}"
    );
}

#[test]
fn vexfs_handler_errors_carry_catalogue_codes() {
    let batch = vexfs::BatchEmbeddingRequest {
        request_id: 1,
        item_count: 1,
        dimensions: 2,
        data_type: vexfs::DataType::Int8,
        timeout_ms: 10,
        flags: 0,
        model_len: 0,
        data_size: 0,
        priority: vexfs::Priority::Low,
        reserved: [0; 3],
        items: vec![vexfs::BatchItem {
            request_id: 2,
            input_size: 0,
            reserved: 0,
        }],
        model: String::new(),
        data: Vec::new(),
    };
    let bytes = batch.encode().unwrap();
    let error = block_on(vexfs::dispatch_to_embedding_service(
        &EmbeddingService,
        &MessageContext::default(),
        0x0103,
        &bytes,
    ))
    .unwrap_err();
    let DispatchError::Refused {
        message_type: "BATCH_EMBEDDING_REQUEST",
        error,
    } = error
    else {
        panic!("{error}");
    };
    assert_eq!(error.code, vexfs::ErrorCode::BatchTooLarge);
    assert_eq!(error.code.code(), 39);
    assert_eq!(
        "BATCH_TOO_LARGE".parse(),
        Ok(vexfs::ErrorCode::BatchTooLarge)
    );
    assert_eq!(error.code.to_string(), "BATCH_TOO_LARGE");
}

#[test]
fn vexfs_constants_ioctls_and_state_machines() {
    assert_eq!(vexfs::IPC_MAGIC, 0x5645_5849);
    // _IOW('V', 0x20, struct of 56 bytes): direction 1 << 30 | size << 16 | 'V' << 8 | nr.
    assert_eq!(
        vexfs::VEXFS_IOCTL_IPC_REGISTER_SERVICE,
        (1 << 30) | (56 << 16) | (u32::from(b'V') << 8) | 0x20
    );
    assert_eq!(
        vexfs::VEXFS_IOCTL_IPC_GET_STATS,
        (2 << 30) | (104 << 16) | (u32::from(b'V') << 8) | 0x25
    );

    use vexfs::ServiceConnection as State;
    use vexfs::ServiceConnectionTrigger as On;
    let state = State::INITIAL;
    assert_eq!(
        (state, state.as_str()),
        (State::Unregistered, "UNREGISTERED")
    );
    let registering = state.next(On::SendServiceRegister).unwrap();
    assert_eq!(registering, State::Registering);
    // The response leads on according to its status: both targets, catalogue order, and
    // only `next_to` takes it, naming the target.
    assert_eq!(
        registering.targets(On::ReceiveServiceRegisterResponse),
        [State::Registered, State::Unregistered]
    );
    let choice = registering
        .next(On::ReceiveServiceRegisterResponse)
        .unwrap_err();
    assert_eq!(choice.targets(), ["REGISTERED", "UNREGISTERED"]);
    assert_eq!(
        registering.next_to(On::ReceiveServiceRegisterResponse, State::Registered),
        Ok(State::Registered)
    );
    let wrong = registering
        .next_to(On::ReceiveServiceRegisterResponse, State::Closed)
        .unwrap_err();
    assert_eq!(wrong.requested, Some("CLOSED"));
    // An undeclared transition is refused, saying what the state accepts.
    let refused = registering.next(On::SendServiceUnregister).unwrap_err();
    assert_eq!(
        (refused.state, refused.trigger),
        ("REGISTERING", Trigger::Send("SERVICE_UNREGISTER"))
    );
    assert_eq!(
        refused.to_string(),
        "ServiceConnection in state REGISTERING does not accept send SERVICE_UNREGISTER; \
         it accepts receive SERVICE_REGISTER_RESPONSE, receive ERROR, event timeout, event closed"
    );
    assert_eq!(
        registering
            .accepts()
            .iter()
            .map(|t| t.trigger())
            .collect::<Vec<_>>(),
        refused.accepted()
    );
    assert_eq!(
        On::from_trigger(Trigger::Receive("ACK")),
        Some(On::ReceiveAck)
    );
    assert_eq!(On::from_trigger(Trigger::Event("no such event")), None);
    assert!(State::ALL.iter().any(|s| s.is_terminal()));
    assert_eq!(State::TABLE.transitions.len(), 13);
}

#[test]
fn a_machine_converts_to_and_from_its_state_type() {
    use migration::{UserMigration, UserMigrationState};
    for &state in UserMigration::ALL {
        let value = UserMigrationState::from(state);
        assert_eq!(value.as_str(), state.as_str());
        assert_eq!(UserMigration::from(value), state);
    }
}

// ---------------------------------------------------------------------------------------
// Determinism, and the fixtures compiled in a crate of their own.

#[test]
fn generation_is_deterministic() {
    let modules: Vec<Module> = SPECS.iter().map(|p| lower(p)).collect();
    let first = ipcspec_codegen::emit::rust::emit(&modules).unwrap();
    let second = ipcspec_codegen::emit::rust::emit(&modules).unwrap();
    assert_eq!(first, second);
    let paths: Vec<&str> = first.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Cargo.toml",
            "src/lib.rs",
            "src/direct_ipc.rs",
            "src/migration.rs",
            "src/vexfs.rs",
            "src/xstatenet.rs"
        ]
    );
}

/// A case for the fixture crate's `cases.json`.
fn case(name: &str, module: &str, codec: &str, ty: &str, input: Value, expect: Value) -> Value {
    json!({"name": name, "module": module, "codec": codec, "type": ty, "input": input, "expect": expect})
}

fn same() -> Value {
    json!("same")
}

fn ok(value: Value) -> Value {
    json!({"ok": value})
}

fn error(part: &str) -> Value {
    json!({"error": part})
}

/// `base` with `key` set to `value` (or removed, for `null` when `remove` is set).
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut out = base.clone();
    out[key] = value;
    out
}

fn without(base: &Value, key: &str) -> Value {
    let mut out = base.clone();
    out.as_object_mut().unwrap().remove(key);
    out
}

/// Inputs the wire must accept (and give back as written) or reject, feature by feature.
fn feature_cases() -> Vec<Value> {
    let e = "everything";
    let scalars = json!({
        "flag": true, "tiny": -128, "small": -32768, "medium": -1000,
        "large": "-9223372036854775808", "byte": 255, "word": 65535, "dword": 4294967295_u32,
        "qword": "18446744073709551615", "single": 1.5, "double": 0.25, "text": "héllo",
        "blob": "aGk=", "ident": "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "when": "2024-05-01T12:00:00.123456789+02:00", "wait": 1500,
        "anything": {"x": [1, null, "y"]}, "handle": 3
    });
    let containers = json!({
        "name": "a", "color": "red", "level": 128, "tags": ["x"], "counts": {"a": 1},
        "rgb": [1, 2, 3], "nested": [{"k": ["1", "-2"]}, {}], "parent": null
    });
    let rect = json!({"x": -1, "y": 2, "w": 3, "h": 4, "level": 255, "pad0": [0, 0, 0]});
    let buffer =
        json!({"dataPtr": "4096", "dataLen": 16, "flags": 1, "stamp": "2024-05-01T12:00:00.5Z"});
    let query = json!({
        "id": 1, "kind": 2, "reserved0": 0, "name_len": 2, "pairs_count": 1, "blob_len": 3,
        "tag": "67e55044-10b1-426f-9247-bb680e5fe0c8", "when": "2024-05-01T12:00:00Z",
        "name": "hi", "pairs": [{"key": 1, "value": 0.5}], "blob": "AQID"
    });
    let header = json!({"magic": 1_112_997_889, "version": 1, "kind": 1, "length": 48, "corr": 7, "sent": 9, "flags": 0, "crc": 0});
    vec![
        case(
            "scalars: every primitive",
            e,
            "json",
            "Scalars",
            scalars.clone(),
            same(),
        ),
        case(
            "i64 as a number",
            e,
            "json",
            "Scalars",
            with(&scalars, "large", json!(5)),
            error("decimal string"),
        ),
        case(
            "i64 with a leading zero",
            e,
            "json",
            "Scalars",
            with(&scalars, "large", json!("01")),
            error("decimal string"),
        ),
        case(
            "negative u64",
            e,
            "json",
            "Scalars",
            with(&scalars, "qword", json!("-1")),
            error("unsigned"),
        ),
        case(
            "i8 out of range",
            e,
            "json",
            "Scalars",
            with(&scalars, "tiny", json!(128)),
            error("i8"),
        ),
        case(
            "unpadded base64",
            e,
            "json",
            "Scalars",
            with(&scalars, "blob", json!("aGk")),
            error("base64"),
        ),
        case(
            "upper-case uuid",
            e,
            "json",
            "Scalars",
            with(
                &scalars,
                "ident",
                json!("67E55044-10B1-426F-9247-BB680E5FE0C8"),
            ),
            ok(scalars.clone()),
        ),
        case(
            "simple-form uuid",
            e,
            "json",
            "Scalars",
            with(&scalars, "ident", json!("67e5504410b1426f9247bb680e5fe0c8")),
            error("hyphenated UUID"),
        ),
        case(
            "ten fraction digits",
            e,
            "json",
            "Scalars",
            with(&scalars, "when", json!("2024-05-01T12:00:00.1234567891Z")),
            error("RFC 3339"),
        ),
        case(
            "negative duration",
            e,
            "json",
            "Scalars",
            with(&scalars, "wait", json!(-1)),
            error("invalid value"),
        ),
        case(
            "undeclared key",
            e,
            "json",
            "Scalars",
            with(&scalars, "extra", json!(1)),
            error("unknown field `extra`"),
        ),
        case(
            "containers: optional keys absent",
            e,
            "json",
            "Containers",
            containers.clone(),
            same(),
        ),
        case(
            "optional+nullable null",
            e,
            "json",
            "Containers",
            with(&containers, "hint", json!(null)),
            same(),
        ),
        case(
            "optional+nullable value",
            e,
            "json",
            "Containers",
            with(&containers, "hint", json!("7")),
            same(),
        ),
        case(
            "optional+nullable u64 as number",
            e,
            "json",
            "Containers",
            with(&containers, "hint", json!(7)),
            error("decimal string"),
        ),
        case(
            "optional key null",
            e,
            "json",
            "Containers",
            with(&containers, "note", json!(null)),
            error("invalid type: null"),
        ),
        case(
            "nullable key absent",
            e,
            "json",
            "Containers",
            without(&containers, "parent"),
            error("missing field `parent`"),
        ),
        case(
            "keyword key",
            e,
            "json",
            "Containers",
            with(&containers, "type", json!("t")),
            same(),
        ),
        case(
            "enum value = name",
            e,
            "json",
            "Containers",
            with(&containers, "color", json!("Blue")),
            same(),
        ),
        case(
            "enum by name, not value",
            e,
            "json",
            "Containers",
            with(&containers, "color", json!("RED")),
            error("unknown variant"),
        ),
        case(
            "int enum non-member",
            e,
            "json",
            "Containers",
            with(&containers, "level", json!(7)),
            error("7"),
        ),
        case(
            "short array",
            e,
            "json",
            "Containers",
            with(&containers, "rgb", json!([1, 2])),
            error("invalid length 2"),
        ),
        case(
            "i64 number deep inside",
            e,
            "json",
            "Containers",
            with(&containers, "nested", json!([{"k": [1]}])),
            error("decimal string"),
        ),
        case(
            "internal variant",
            e,
            "json",
            "Shape",
            json!({"kind": "circle", "radius": 1.5}),
            same(),
        ),
        case(
            "internal variant without content",
            e,
            "json",
            "Shape",
            json!({"kind": "point"}),
            same(),
        ),
        case(
            "stray key beside a bare tag",
            e,
            "json",
            "Shape",
            json!({"kind": "point", "x": 1}),
            error("unknown field `x`"),
        ),
        case(
            "missing tag",
            e,
            "json",
            "Shape",
            json!({"radius": 1.0}),
            error("missing field `kind`"),
        ),
        case(
            "unknown tag",
            e,
            "json",
            "Shape",
            json!({"kind": "hexagon"}),
            error("unknown variant"),
        ),
        case(
            "adjacent i64 variant",
            e,
            "json",
            "Value",
            json!({"t": "Int", "c": "-5"}),
            same(),
        ),
        case(
            "adjacent i64 as number",
            e,
            "json",
            "Value",
            json!({"t": "Int", "c": -5}),
            error("decimal string"),
        ),
        case(
            "adjacent recursion",
            e,
            "json",
            "Value",
            json!({"t": "Many", "c": [{"t": "Text", "c": "x"}, {"t": "Nothing"}]}),
            same(),
        ),
        case(
            "adjacent unknown key",
            e,
            "json",
            "Value",
            json!({"t": "Nothing", "x": 1}),
            error("x"),
        ),
        case(
            "recursive struct",
            e,
            "json",
            "Tree",
            json!({"label": "root", "children": [{"label": "leaf", "children": [], "shape": {"kind": "point"}}]}),
            same(),
        ),
        case(
            "alias of uuid",
            e,
            "json",
            "MessageId",
            json!("67E55044-10B1-426F-9247-BB680E5FE0C8"),
            ok(json!("67e55044-10b1-426f-9247-bb680e5fe0c8")),
        ),
        case(
            "C struct in binary",
            e,
            "binary",
            "Rect",
            rect.clone(),
            same(),
        ),
        case(
            "non-zero padding in binary",
            e,
            "binary",
            "Rect",
            with(&rect, "pad0", json!([0, 1, 0])),
            error("padding is not zero"),
        ),
        case(
            "timestamp as ns in binary",
            e,
            "binary",
            "Buffer",
            buffer.clone(),
            same(),
        ),
        case(
            "timestamp before 1970 in binary",
            e,
            "binary",
            "Buffer",
            with(&buffer, "stamp", json!("1969-12-31T23:59:59Z")),
            error("out of range"),
        ),
        case(
            "int enum in binary",
            e,
            "binary",
            "Level",
            json!(128),
            same(),
        ),
        case(
            "header in binary",
            "binwire",
            "binary",
            "Header",
            header,
            same(),
        ),
        case(
            "tails in binary",
            "binwire",
            "binary",
            "Query",
            query.clone(),
            same(),
        ),
        case(
            "tail count disagreeing",
            "binwire",
            "binary",
            "Query",
            with(&query, "name_len", json!(3)),
            error("Query.name: the count field says 3 but there are 2"),
        ),
        case(
            "int enum non-member in a C struct",
            "binwire",
            "json",
            "Query",
            with(&query, "kind", json!(3)),
            error("3"),
        ),
    ]
}

/// Every example of every fixture type, in JSON and (for C layouts) binary.
fn example_cases(module: &Module) -> Vec<Value> {
    let mut out = Vec::new();
    for (index, def) in module.types.iter().enumerate() {
        for (n, example) in examples::type_examples(module, TypeId(index))
            .unwrap()
            .into_iter()
            .enumerate()
        {
            let name = format!("{} {} example {n}", module.name, def.name);
            let rust_module = &module.idents.rust;
            out.push(case(
                &name,
                rust_module,
                "json",
                &def.name,
                example.clone(),
                same(),
            ));
            if has_binary_form(&def.kind) {
                out.push(case(
                    &format!("{name} (binary)"),
                    rust_module,
                    "binary",
                    &def.name,
                    example,
                    same(),
                ));
            }
        }
    }
    out
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// Generates the fixtures (every language feature) with `ipcspec generate --rust` into a
/// crate of their own next to the build, then compiles, lints and tests that crate with
/// the cases above. It depends on the runtime by absolute path and reuses the
/// workspace's lock file, so it builds offline with the same versions.
#[test]
fn fixture_catalogues_compile_lint_and_round_trip_in_their_own_crate() {
    let fixtures = [
        "codegen/tests/fixtures/everything.json",
        "codegen/tests/fixtures/binwire.json",
        "codegen/tests/fixtures/altheader.json",
    ];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rust-emitter-fixtures");
    let crate_dir = dir.join("crate");
    // Start from a clean source tree; the separate target directory keeps builds incremental.
    let _ = std::fs::remove_dir_all(&crate_dir);
    let mut generate = Command::new(env!("CARGO_BIN_EXE_ipcspec"));
    generate
        .arg("generate")
        .arg("--rust")
        .arg(&crate_dir)
        .args(fixtures.map(|f| root().join(f)));
    run(generate.env("NO_COLOR", "1"));

    let manifest_path = crate_dir.join("Cargo.toml");
    let runtime = root().join("runtime").canonicalize().unwrap();
    let manifest = std::fs::read_to_string(&manifest_path).unwrap().replace(
        "path = \"../../runtime\"",
        &format!("path = {:?}", runtime.display().to_string()),
    );
    // `[workspace]`: the crate sits under the repository's target/, and is its own root.
    // The header-layout cases drive the runtime's codecs, which take `bytes` buffers.
    let dev_dependencies = "\n[dev-dependencies]\nbytes = \"1\"\ntokio-util = { version = \"0.7\", features = [\"codec\"] }\n";
    std::fs::write(
        &manifest_path,
        manifest + dev_dependencies + "\n[workspace]\n",
    )
    .unwrap();
    std::fs::copy(root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();

    let modules: Vec<Module> = fixtures.iter().map(|f| lower(f)).collect();
    let mut cases = feature_cases();
    cases.extend(modules.iter().flat_map(example_cases));
    std::fs::write(
        crate_dir.join("cases.json"),
        serde_json::to_string_pretty(&cases).unwrap(),
    )
    .unwrap();
    let tests = crate_dir.join("tests");
    std::fs::create_dir_all(tests.join("common")).unwrap();
    std::fs::write(
        tests.join("cases.rs"),
        include_str!("rust_emitter/fixture_cases.rs"),
    )
    .unwrap();
    std::fs::write(
        tests.join("header_layout.rs"),
        include_str!("rust_emitter/header_layout_cases.rs"),
    )
    .unwrap();
    std::fs::write(
        tests.join("common/json_eq.rs"),
        include_str!("rust_emitter/json_eq.rs"),
    )
    .unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo = |args: &[&str]| {
        let mut command = Command::new(&cargo);
        command
            .arg(args[0])
            .arg("--offline")
            .args(&args[1..])
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env_remove("RUSTFLAGS");
        command
    };
    let output = run(&mut cargo(&[
        "test",
        "--features",
        "test-registries",
        "--",
        "--show-output",
    ]));
    assert!(
        output.contains(&format!("{} case(s) checked", cases.len())),
        "{output}"
    );
    // Lint-clean for every feature, as the workspace's clippy demands of generated/rust.
    run(&mut cargo(&[
        "clippy",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]));
}

//! Every name a seed document gives (message types, payload fields, structs, enums and
//! their values, constants, ioctls, states) appears in its catalogue under that exact
//! name. The tables are copied from the seeds in `../shared/seeds/`.

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeSet;
use std::path::Path;

/// Every `name` and string `value` anywhere in the catalogue.
fn declared_names(catalogue: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../specs")
        .join(catalogue);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    let mut stack = vec![&value];
    while let Some(node) = stack.pop() {
        match node {
            serde_json::Value::Object(members) => {
                for (key, member) in members {
                    if let (true, Some(s)) = (key == "name" || key == "value", member.as_str()) {
                        names.insert(s.to_owned());
                    }
                    stack.push(member);
                }
            }
            serde_json::Value::Array(elements) => stack.extend(elements),
            _ => {}
        }
    }
    names
}

fn assert_declares(catalogue: &str, seed_names: &[&str]) {
    let declared = declared_names(catalogue);
    let missing: Vec<&&str> = seed_names
        .iter()
        .filter(|n| !declared.contains(**n))
        .collect();
    assert!(
        missing.is_empty(),
        "specs/{catalogue} lacks the seed's names {missing:?}"
    );
}

#[test]
fn migration_uses_the_seed_names() {
    assert_declares(
        "migration.json",
        &[
            "BACKUP_REQUEST",
            "STATUS_UPDATE",
            "ESCALATION_NOTICE",
            "CONFIGURATION_UPDATE",
            "SHUTDOWN_REQUEST",
            "AGENT_STARTED",
            "BACKUP_STARTED",
            "BACKUP_PROGRESS",
            "BACKUP_COMPLETED",
            "DELAY_REQUEST",
            "USER_ACTION",
            "ERROR_REPORT",
            "HEARTBEAT",
            "ACKNOWLEDGMENT",
            "userId",
            "version",
            "sessionId",
            "percentComplete",
            "bytesTransferred",
            "totalBytes",
            "action",
            "success",
            "errorCode",
            "errorMessage",
        ],
    );
}

#[test]
fn vexfs_uses_the_seed_names() {
    assert_declares(
        "vexfs.json",
        &[
            "MessageHeader",
            "magic",
            "version",
            "message_type",
            "length",
            "correlation_id",
            "timestamp",
            "flags",
            "checksum",
            "IPC_MAGIC",
            "IPC_PROTOCOL_VERSION",
            "VEXFS_IOCTL_IPC_REGISTER_SERVICE",
            "VEXFS_IOCTL_IPC_UNREGISTER_SERVICE",
            "VEXFS_IOCTL_IPC_SEND_EMBEDDING_REQUEST",
            "VEXFS_IOCTL_IPC_GET_SERVICE_STATUS",
            "VEXFS_IOCTL_IPC_LIST_SERVICES",
            "VEXFS_IOCTL_IPC_GET_STATS",
            "IpcServiceRegisterRequest",
            "service_id_ptr",
            "service_id_len",
            "service_name_ptr",
            "service_name_len",
            "dimensions_ptr",
            "dimensions_count",
            "max_batch_size",
            "endpoint_ptr",
            "endpoint_len",
            "IpcEmbeddingRequest",
            "request_id",
            "dimensions",
            "data_ptr",
            "data_size",
            "data_type",
            "priority",
            "timeout_ms",
            "ServiceInfo",
            "ServiceCapabilities",
            "ServiceEndpoint",
            "IpcConfig",
            "max_concurrent_requests",
            "request_timeout_ms",
            "max_queue_size",
            "discovery_interval_sec",
            "health_check_interval_sec",
            "max_retry_attempts",
            "retry_backoff_base_ms",
            "enable_authentication",
            "enable_encryption",
            "TransportConfig",
            "transport_type",
            "buffer_size",
            "connection_timeout_ms",
            "max_retries",
            "enable_compression",
            "IpcError",
            "Critical",
            "High",
            "Normal",
            "Low",
            "Float32",
            "Float16",
            "Int8",
            "Int16",
            "Binary",
            "RoundRobin",
            "LeastConnections",
            "LeastResponseTime",
            "LoadBased",
            "PriorityBased",
            "CapabilityAware",
            "Closed",
            "Open",
            "HalfOpen",
        ],
    );
}

#[test]
fn direct_ipc_uses_the_seed_names() {
    assert_declares(
        "direct-ipc.json",
        &[
            "ProcessType",
            "RENDERER",
            "renderer",
            "UTILITY",
            "utility",
            "DirectIpcTarget",
            "identifier",
            "webContentsId",
            "processType",
            "url",
            "pid",
            "UtilityProcessRegistration",
            "registeredAt",
            "QueuedMessage",
            "target",
            "message",
            "args",
            "throttled",
            "RegistrationState",
            "UNINITIALIZED",
            "SUBSCRIBING",
            "REGISTERED",
            "FAILED",
            "uninitialized",
            "subscribing",
            "registered",
            "failed",
            "ChannelPair",
            "processA",
            "processB",
            "createdAt",
            "messageCount",
            "PendingInvoke",
            "requestId",
            "sentAt",
            "channel",
            "SUBSCRIBE",
            "MAP_UPDATE",
            "GET_PORT",
            "INVOKE",
            "INVOKE_RESPONSE",
            "UTILITY_PROCESS_TERMINATED",
            "IDENTIFIER_CONFLICT",
        ],
    );
}

#[test]
fn xstatenet_uses_the_seed_names() {
    assert_declares(
        "xstatenet.json",
        &[
            "Register",
            "SendEvent",
            "MachineId",
            "ProcessName",
            "ProcessId",
            "RegisteredAt",
            "SourceMachineId",
            "TargetMachineId",
            "EventName",
            "Payload",
            "Timestamp",
            "HealthStatus",
            "IsHealthy",
            "ConnectionCount",
            "RegisteredMachines",
            "LastActivityAt",
            "ErrorMessage",
            "PerformanceMetrics",
            "StartedAt",
            "Uptime",
            "PeakConnections",
            "PeakConnectionsAt",
            "PipeName",
            "MaxConnections",
            "HealthCheckIntervalSeconds",
            "LogLevel",
        ],
    );
}

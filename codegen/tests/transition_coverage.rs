//! Every transition the DirectIpc and VexFS catalogues declare, listed as not applicable:
//! neither system has a reference service yet (the issues after this one build them),
//! so no test can take them. The list is compared with the generated machines' tables
//! (`MACHINES`) both ways, so a transition added to, changed in or removed from either
//! catalogue fails here until the list follows, and the service that comes replaces the
//! list with scenarios that take each transition (as `services/migration/tests/transitions.rs`
//! does for the agent).

#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use std::collections::BTreeSet;

use ipcspec_generated::{direct_ipc, vexfs};
use ipcspec_runtime::machine::MachineTable;

/// Why none of the listed transitions is taken by a test.
const NO_REFERENCE_SERVICE: &str = "no reference service implements this catalogue yet";

/// `specs/direct-ipc.json`: see [`NO_REFERENCE_SERVICE`].
const DIRECT_IPC_NOT_APPLICABLE: &[&str] = &[
    "RegistrationState: UNINITIALIZED --send SUBSCRIBE--> SUBSCRIBING",
    "RegistrationState: SUBSCRIBING --receive MAP_UPDATE--> REGISTERED",
    "RegistrationState: SUBSCRIBING --receive ERROR--> FAILED",
    "RegistrationState: SUBSCRIBING --event timeout--> FAILED",
    "RegistrationState: SUBSCRIBING --event error--> FAILED",
    "RegistrationState: REGISTERED --event exit--> DESTROYED",
    "RegistrationState: REGISTERED --send UNSUBSCRIBE--> DESTROYED",
    "RegistrationState: SUBSCRIBING --event exit--> DESTROYED",
    "RegistrationState: FAILED --event exit--> DESTROYED",
    "PendingInvokeState: CREATED --send INVOKE--> SENT",
    "PendingInvokeState: CREATED --receive ERROR--> REJECTED",
    "PendingInvokeState: CREATED --event timeout--> REJECTED",
    "PendingInvokeState: SENT --receive INVOKE_RESPONSE--> RESOLVED",
    "PendingInvokeState: SENT --receive INVOKE_RESPONSE--> REJECTED",
    "PendingInvokeState: SENT --event timeout--> REJECTED",
    "PendingInvokeState: SENT --receive MAP_UPDATE--> REJECTED",
    "PendingInvokeState: SENT --event closed--> REJECTED",
    "PendingInvokeState: SENT --event exit--> REJECTED",
    "UtilityProcessRegistrationState: CREATED --receive SUBSCRIBE--> ACTIVE",
    "UtilityProcessRegistrationState: CREATED --event exit--> REMOVED",
    "UtilityProcessRegistrationState: ACTIVE --event exit--> TERMINATING",
    "UtilityProcessRegistrationState: ACTIVE --receive UNSUBSCRIBE--> TERMINATING",
    "UtilityProcessRegistrationState: TERMINATING --send MAP_UPDATE--> REMOVED",
    "MessageChannelConnection: REQUESTED --event channel_created--> CREATED",
    "MessageChannelConnection: REQUESTED --send ERROR--> CLOSED",
    "MessageChannelConnection: CREATED --send PORT--> TRANSFERRED",
    "MessageChannelConnection: CREATED --event error--> CLOSED",
    "MessageChannelConnection: TRANSFERRED --event ends_released--> ACTIVE",
    "MessageChannelConnection: ACTIVE --event exit--> CLOSED",
    "DirectIpcTargetState: NOT_REGISTERED --receive SUBSCRIBE--> REGISTERED",
    "DirectIpcTargetState: REGISTERED --event exit--> TERMINATED",
    "DirectIpcTargetState: REGISTERED --receive UNSUBSCRIBE--> TERMINATED",
    "QueuedMessageState: CREATED --send MESSAGE--> SENT",
    "QueuedMessageState: CREATED --event not_registered--> QUEUED",
    "QueuedMessageState: QUEUED --receive MAP_UPDATE--> FLUSHED",
    "QueuedMessageState: QUEUED --event registration_failed--> DISCARDED",
    "QueuedMessageState: FLUSHED --send MESSAGE--> SENT",
    "QueuedMessageState: FLUSHED --receive ERROR--> DISCARDED",
];

/// `specs/vexfs.json`: see [`NO_REFERENCE_SERVICE`].
const VEXFS_NOT_APPLICABLE: &[&str] = &[
    "ServiceConnection: UNREGISTERED --send SERVICE_REGISTER--> REGISTERING",
    "ServiceConnection: REGISTERING --receive SERVICE_REGISTER_RESPONSE--> REGISTERED",
    "ServiceConnection: REGISTERING --receive SERVICE_REGISTER_RESPONSE--> UNREGISTERED",
    "ServiceConnection: REGISTERING --receive ERROR--> UNREGISTERED",
    "ServiceConnection: REGISTERING --event timeout--> UNREGISTERED",
    "ServiceConnection: REGISTERED --send SERVICE_UNREGISTER--> UNREGISTERING",
    "ServiceConnection: REGISTERED --receive ERROR--> UNREGISTERED",
    "ServiceConnection: UNREGISTERING --receive ACK--> UNREGISTERED",
    "ServiceConnection: UNREGISTERING --event timeout--> UNREGISTERED",
    "ServiceConnection: UNREGISTERED --event closed--> CLOSED",
    "ServiceConnection: REGISTERING --event closed--> CLOSED",
    "ServiceConnection: REGISTERED --event closed--> CLOSED",
    "ServiceConnection: UNREGISTERING --event closed--> CLOSED",
    "CircuitBreaker: Closed --event failure_threshold_reached--> Open",
    "CircuitBreaker: Open --event open_interval_elapsed--> HalfOpen",
    "CircuitBreaker: HalfOpen --receive HEALTH_CHECK_RESPONSE--> Closed",
    "CircuitBreaker: HalfOpen --receive EMBEDDING_RESPONSE--> Closed",
    "CircuitBreaker: HalfOpen --receive BATCH_EMBEDDING_RESPONSE--> Closed",
    "CircuitBreaker: HalfOpen --receive ERROR--> Open",
    "CircuitBreaker: HalfOpen --event timeout--> Open",
    "EmbeddingRequestState: SUBMITTED --event cache_hit--> COMPLETED",
    "EmbeddingRequestState: SUBMITTED --event queued--> QUEUED",
    "EmbeddingRequestState: SUBMITTED --event rejected--> FAILED",
    "EmbeddingRequestState: QUEUED --send EMBEDDING_REQUEST--> DISPATCHED",
    "EmbeddingRequestState: QUEUED --send BATCH_EMBEDDING_REQUEST--> DISPATCHED",
    "EmbeddingRequestState: QUEUED --event timeout--> TIMED_OUT",
    "EmbeddingRequestState: DISPATCHED --receive EMBEDDING_RESPONSE--> COMPLETED",
    "EmbeddingRequestState: DISPATCHED --receive BATCH_EMBEDDING_RESPONSE--> COMPLETED",
    "EmbeddingRequestState: DISPATCHED --receive ERROR--> QUEUED",
    "EmbeddingRequestState: DISPATCHED --receive ERROR--> FAILED",
    "EmbeddingRequestState: DISPATCHED --event timeout--> TIMED_OUT",
];

fn check(catalogue: &str, machines: &[MachineTable], listed: &[&str]) {
    assert!(
        !machines.is_empty(),
        "{catalogue} has no machine: nothing is checked"
    );
    let declared: BTreeSet<String> = machines.iter().flat_map(MachineTable::log_lines).collect();
    let listed: BTreeSet<String> = listed.iter().map(|t| (*t).to_owned()).collect();
    let unlisted: Vec<&String> = declared.difference(&listed).collect();
    let stale: Vec<&String> = listed.difference(&declared).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "{catalogue}: declared but not listed ({NO_REFERENCE_SERVICE}?): {unlisted:#?}\n\
         listed but not declared: {stale:#?}"
    );
}

#[test]
fn direct_ipc_transitions_are_listed_as_not_applicable() {
    check(
        "direct-ipc",
        direct_ipc::MACHINES,
        DIRECT_IPC_NOT_APPLICABLE,
    );
}

#[test]
fn vexfs_transitions_are_listed_as_not_applicable() {
    check("vexfs", vexfs::MACHINES, VEXFS_NOT_APPLICABLE);
}

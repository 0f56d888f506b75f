// Valid uses of the generated TypeScript: codegen/tests/ts_compile.rs type-checks this file
// with `tsc --strict` against generated/ts (imported as `@generated/*`) and the fixture
// outputs (`@fixtures/*`). It is only type-checked, never run.

import * as directIpc from "@generated/direct-ipc";
import * as everything from "@fixtures/everything";
import * as migration from "@generated/migration";
import * as vexfs from "@generated/vexfs";
import * as xstatenet from "@generated/xstatenet";

const now = "2025-06-01T12:00:00Z";

// ---- migration: JSON envelope with id, timestamp and correlation id --------------------

const backupRequest: migration.MessageOf<"BACKUP_REQUEST"> = {
  type: "BACKUP_REQUEST",
  id: "msg-1",
  timestamp: now,
  payload: {
    backupId: "0b7e5f4c-3d2a-4f1e-9c8b-7a6d5e4f3a2b",
    deadline: "2025-06-08T00:00:00Z",
    reason: migration.BackupRequestReason.MIGRATION_SCHEDULED,
    delaysRemaining: 2,
    maxDelay: 86_400_000,
  },
};

const acknowledgment: migration.AgentMessage = {
  type: "ACKNOWLEDGMENT",
  id: "msg-2",
  timestamp: now,
  correlationId: backupRequest.id,
  payload: { success: true },
};

const heartbeat: migration.ServiceMessage = {
  type: "HEARTBEAT",
  id: "msg-3",
  timestamp: now,
  payload: {},
};

const configuration: migration.PayloadOf["CONFIGURATION_UPDATE"] = {
  configVersion: 7,
  settings: { logLevel: migration.AgentLogLevel.DEBUG, excludePatterns: ["*.tmp"] },
};

const agentHandlers: migration.AgentHandlers = {
  BACKUP_REQUEST: (payload, message) => {
    const reason: migration.BackupRequestReason = payload.reason;
    const id: migration.MessageId = message.id;
    void reason;
    void id;
  },
  STATUS_UPDATE: (payload) => {
    const phase: migration.MigrationPhase = payload.phase;
    void phase;
  },
  ESCALATION_NOTICE: () => undefined,
  CONFIGURATION_UPDATE: async (payload) => {
    await Promise.resolve(payload.configVersion);
  },
  SHUTDOWN_REQUEST: () => {},
  HEARTBEAT: () => {},
  ACKNOWLEDGMENT: (payload, message) => {
    const answered: migration.MessageId = message.correlationId;
    void answered;
    void payload.success;
  },
};
void agentHandlers.BACKUP_REQUEST(backupRequest.payload, backupRequest);

const everyMessage: migration.Message[] = [backupRequest, acknowledgment, heartbeat];
const names: readonly migration.MessageType[] = migration.MESSAGE_TYPES;
void everyMessage;
void names;
void configuration;

// ---- direct-ipc: unions, uuid ids, replies returned by handlers -------------------------

const getPort: directIpc.RendererMessage = {
  type: "GET_PORT",
  id: "5f0c7a2e-1b3d-4e5f-8a9b-0c1d2e3f4a5b",
  timestamp: now,
  payload: { target: { by: "identifier", identifier: "renderer-1" } },
};

const subscribe: directIpc.Message = {
  type: "SUBSCRIBE",
  id: "6a1d8b3f-2c4e-4f60-9bac-1d2e3f4a5b6c",
  timestamp: now,
  payload: { processType: directIpc.ProcessType.RENDERER, webContentsId: 3 },
};

const mainHandlers: directIpc.MainHandlers = {
  SUBSCRIBE: () => {},
  UNSUBSCRIBE: (payload) => {
    const empty: directIpc.NoPayload = payload;
    void empty;
  },
  GET_PORT: (payload) => {
    const selector: directIpc.PeerSelector = payload.target;
    if (selector.by === "webContentsId") {
      const id: number = selector.webContentsId;
      void id;
    }
    return { port: 0, peer: { processType: directIpc.ProcessType.UTILITY, identifier: "u" } };
  },
};
void mainHandlers;
void getPort;
void subscribe;

const invoke: directIpc.MessageOf<"INVOKE"> = {
  type: "INVOKE",
  id: "7b2e9c40-3d5f-4a71-8cbd-2e3f4a5b6c7d",
  timestamp: now,
  payload: {
    requestId: "8c3fad51-4e60-4b82-9dce-3f4a5b6c7d8e",
    channel: "compute",
    args: [1, "two", { three: [true, null] }],
  },
};
void invoke;

// ---- xstatenet: PascalCase keys, optional Id and CorrelationId --------------------------

const register: xstatenet.ClientMessage = {
  Type: "Register",
  Payload: {
    MachineId: "machine-1",
    ProcessName: "worker",
    ProcessId: 4242,
    RegisteredAt: now,
  },
};

const registered: xstatenet.BusMessage = {
  Type: "Registered",
  Id: "r-1",
  CorrelationId: "c-1",
  Payload: { MachineId: "machine-1", RegisteredAt: now },
};

const error: xstatenet.MessageOf<"Error"> = {
  Type: "Error",
  Payload: { ErrorCode: "UNKNOWN_TARGET", Message: "no such machine" },
};

const event: xstatenet.MachineEvent = {
  SourceMachineId: "a",
  TargetMachineId: "b",
  EventName: "GO",
  Payload: null,
  Timestamp: now,
};

const busHandlers: xstatenet.BusHandlers = {
  Register: (payload) => {
    void payload.ProcessId;
    return { MachineId: payload.MachineId, RegisteredAt: now };
  },
  Unregister: () => {},
  SendEvent: () => {},
  GetHealth: async () => ({
    IsHealthy: true,
    ConnectionCount: 1,
    RegisteredMachines: 1,
    LastActivityAt: now,
    ErrorMessage: null,
  }),
  GetMetrics: () => undefined,
};
void busHandlers;
void register;
void registered;
void error;
void event;

// ---- vexfs: the decoded form of binary messages -----------------------------------------

const embeddingRequest: vexfs.KernelMessage = {
  type: "EMBEDDING_REQUEST",
  correlation_id: 17,
  timestamp: 1_700_000_000,
  flags: 0,
  payload: {
    request_id: 17,
    dimensions: 768,
    data_type: vexfs.DataType.Float32,
    data_size: 3,
    model_len: 0,
    timeout_ms: 30_000,
    flags: 0,
    priority: vexfs.Priority.Normal,
    reserved: [0, 0, 0, 0, 0, 0, 0],
    model: "",
    data: "AAEC",
  },
};

const healthCheck: vexfs.Message = {
  type: "HEALTH_CHECK",
  correlation_id: 18,
  timestamp: 1_700_000_001,
  flags: 0,
  payload: {},
};

const code: number = vexfs.MESSAGE_CODES[embeddingRequest.type];
const codeOfType: vexfs.MessageType = vexfs.MessageType.EMBEDDING_REQUEST;
const header: vexfs.MessageHeader = {
  magic: vexfs.IPC_MAGIC,
  version: vexfs.IPC_PROTOCOL_VERSION,
  message_type: codeOfType,
  length: vexfs.IPC_HEADER_SIZE,
  correlation_id: 1,
  timestamp: 2,
  flags: 0,
  checksum: 0,
};

const serviceHandlers: vexfs.EmbeddingServiceHandlers = {
  SERVICE_REGISTER_RESPONSE: () => {},
  SERVICE_DISCOVERY: () => {},
  EMBEDDING_REQUEST: (payload, message) => {
    void message.correlation_id;
    return {
      request_id: payload.request_id,
      dimensions: payload.dimensions,
      data_type: payload.data_type,
      data_size: 0,
      processing_time_us: 5,
      embedding: "",
    };
  },
  BATCH_EMBEDDING_REQUEST: () => {},
  HEALTH_CHECK: () => ({
    health: vexfs.HealthStatus.Healthy,
    active_requests: 0,
    queued_requests: 0,
    loaded_models: 1,
    uptime: 60_000,
  }),
  STATUS_QUERY: () => {},
  ERROR: (payload) => {
    const reason: vexfs.IpcError = payload.error_code;
    void reason;
  },
  ACK: () => {},
};
void serviceHandlers;
void healthCheck;
void code;
void header;

// ---- everything fixture: int64 as strings, unions, recursion, nullable ------------------

const scalars: everything.Scalars = {
  flag: true,
  tiny: -1,
  small: 2,
  medium: 3,
  large: "-9223372036854775808",
  byte: 255,
  word: 65535,
  dword: 4294967295,
  qword: "18446744073709551615",
  single: 1.5,
  double: 0.5,
  text: "hi",
  blob: "aGk=",
  ident: "9d4e0f62-5f71-4c93-8def-4a5b6c7d8e9f",
  when: now,
  wait: 250,
  anything: { nested: [1, "x", null, { deep: false }] },
  handle: 0,
};

const tree: everything.Tree = {
  label: "root",
  children: [{ label: "leaf", children: [], shape: { kind: "point" } }],
  shape: { kind: "circle", radius: 2 },
};

const value: everything.Value = {
  t: "Many",
  c: [{ t: "Int", c: "42" }, { t: "Text", c: "x" }, { t: "Nothing" }],
};

const containers: everything.Containers = {
  name: "box",
  color: everything.Color.Blue,
  level: everything.Level.Critical,
  tags: [],
  counts: { a: 1 },
  rgb: [1, 2, 3],
  nested: [{ k: ["1", "2"] }],
  parent: null,
  hint: null,
};

const ping: everything.Message = {
  type: "PING",
  id: "0e5f1a73-6a82-4da4-9ef0-5b6c7d8e9fa0",
  payload: { seq: "1" },
};

const serverHandlers: everything.ServerHandlers = {
  PING: () => {},
  ACK: () => {},
  PUT_SCALARS: () => {},
  PUT_CONTAINERS: () => {},
  GET_TREE: (name) => ({ label: name, children: [] }),
  DRAW: (shape) => {
    if (shape.kind === "square") {
      void shape.side;
    }
  },
  EVAL: (v) => v,
  RESIZE: (rect) => {
    void rect.level;
  },
  BYE: () => {},
};
void scalars;
void tree;
void value;
void containers;
void ping;
void serverHandlers;
void everything.BIG.length;

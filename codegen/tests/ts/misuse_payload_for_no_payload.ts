// Must not compile: HEARTBEAT has no payload, so its payload must be `{}` (expected TS2322).
import * as migration from "@generated/migration";

export const heartbeat: migration.MessageOf<"HEARTBEAT"> = {
  type: "HEARTBEAT",
  id: "msg-1",
  timestamp: "2025-06-01T12:00:00Z",
  payload: { userId: "alice" },
};

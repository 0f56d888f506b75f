// Must not compile: a STATUS_UPDATE payload under the BACKUP_REQUEST type (expected TS2322).
import * as migration from "@generated/migration";

const status: migration.StatusUpdatePayload = {
  phase: migration.MigrationPhase.MIGRATING,
  userState: migration.UserMigrationState.BACKUP_IN_PROGRESS,
};

export const message: migration.Message = {
  type: "BACKUP_REQUEST",
  id: "msg-1",
  timestamp: "2025-06-01T12:00:00Z",
  payload: status,
};

// Must not compile: the required field `delaysRemaining` is missing (expected TS2741).
import * as migration from "@generated/migration";

export const payload: migration.BackupRequestPayload = {
  backupId: "0b7e5f4c-3d2a-4f1e-9c8b-7a6d5e4f3a2b",
  deadline: "2025-06-08T00:00:00Z",
  reason: migration.BackupRequestReason.MIGRATION_SCHEDULED,
};

// Must not compile: "main" is not a ProcessType (expected TS2322).
import * as directIpc from "@generated/direct-ipc";

export const target: directIpc.DirectIpcTarget = { processType: "main" };

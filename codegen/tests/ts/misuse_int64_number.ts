// Must not compile: with int64Encoding "string" an i64 is a decimal string, not a number
// (expected TS2322).
import * as everything from "@fixtures/everything";

export const ping: everything.Ping = { seq: 1 };

// Must not compile: a `json` field is JsonValue, not `any`, so it cannot be used as a number
// without a check (expected TS2322).
import * as everything from "@fixtures/everything";

export function size(scalars: everything.Scalars): number {
  const n: number = scalars.anything;
  return n;
}

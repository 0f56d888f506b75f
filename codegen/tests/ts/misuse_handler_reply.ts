// Must not compile: the GetHealth handler must return the HealthStatus reply's payload, not
// a number (expected TS2322).
import * as xstatenet from "@generated/xstatenet";

export const handlers: Pick<xstatenet.BusHandlers, "GetHealth"> = {
  GetHealth: () => 42,
};

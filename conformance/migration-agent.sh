#!/bin/sh
# Starts the reference migration-agent for the conformance runner's client cases
# (`--client-command`): it connects to the address in IPCSPEC_ADDRESS, sends the agent
# messages the case gives on stdin, prints what the service sends, and stays connected.
# Timings match capabilities/migration-service.json. MIGRATION_AGENT names the binary
# (default: migration-agent on PATH).
set -eu
exec "${MIGRATION_AGENT:-migration-agent}" --socket "${IPCSPEC_ADDRESS#unix:}" \
    --session conformance --heartbeat-seconds 1 --ack-timeout-seconds 2 --stale-seconds 3 \
    run --stay

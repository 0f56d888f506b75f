#!/bin/sh
# Starts the reference migration-service for the conformance runner (`--spawn`): on the
# address the runner gives in IPCSPEC_ADDRESS, with a fresh database, and with the short
# timeouts and small connection limit declared in capabilities/migration-service.json.
# MIGRATION_SERVICE names the binary (default: migration-service on PATH).
set -eu
socket="${IPCSPEC_ADDRESS#unix:}"
state="$(mktemp -d)"
exec "${MIGRATION_SERVICE:-migration-service}" \
    --socket "$socket" --db "$state/state.db" \
    --frame-read-timeout-seconds 1 --heartbeat-seconds 1 --stale-seconds 3 \
    --max-connections 8

#!/usr/bin/env bash
# Ensures `nats-server` is installed and prints its path on stdout.
#
# Uses the one on PATH when there is one; otherwise installs the distribution package
# with `apt-get update && apt-get install -y nats-server` (as root, or through sudo when
# that works without a password). Exits non-zero with a message on stderr when it cannot.
set -euo pipefail

if path="$(command -v nats-server)"; then
    echo "$path"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-nats-server: nats-server is not on PATH and apt-get is not available;" \
        "install nats-server (https://docs.nats.io/running-a-nats-service/introduction/installation)" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "ensure-nats-server: nats-server is not on PATH and installing it needs root" \
        "(run: sudo apt-get install -y nats-server)" >&2
    exit 1
fi

echo "ensure-nats-server: installing nats-server with apt-get" >&2
if ! "${sudo[@]}" apt-get update >&2; then
    echo "ensure-nats-server: apt-get update failed" >&2
    exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y nats-server >&2; then
    echo "ensure-nats-server: apt-get install -y nats-server failed" >&2
    exit 1
fi

if path="$(command -v nats-server)"; then
    echo "$path"
else
    echo "ensure-nats-server: nats-server was installed but is not on PATH" >&2
    exit 1
fi

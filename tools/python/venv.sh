#!/bin/sh
# Makes tools/python/.venv with requirements.txt installed (again when the file changes)
# and prints its python. Safe to run concurrently (flock). Used by the tests that need
# Python's jsonschema: the vector cross-check and the conformance suite's second
# implementation.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)"
venv="$dir/.venv"
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is not installed; the conformance tests need it: install Python 3 with venv support (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
    exit 1
fi
mkdir -p "$venv"
exec 9>"$venv/.lock"
flock 9
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2 || {
        echo "python3 -m venv $venv failed (Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    }
fi
if ! cmp -s "$dir/requirements.txt" "$venv/requirements.installed" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt" >&2
    cp "$dir/requirements.txt" "$venv/requirements.installed"
fi
echo "$venv/bin/python"

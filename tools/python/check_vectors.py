#!/usr/bin/env python3
"""Validate the decoded form of every conformance vector with Python's `jsonschema`.

For each `conformance/vectors/<catalogue>.json`, every vector that has a `body` (valid
vectors, and invalid ones of class `unknownType`, `schema` or `limit`) is validated
against the catalogue's generated JSON Schema (draft 2020-12, formats checked). The
verdicts are printed on stdout as one JSON object:

    {"jsonschema": "<version>", "verdicts": {"<vector id>": true|false, ...},
     "mismatches": ["<vector id>: ...", ...]}

A mismatch is a vector whose verdict contradicts its expectation: a valid vector the
schema rejects, or an `unknownType`/`schema` vector it accepts (JSON Schema cannot express
`limit`s, so those are reported but never mismatches). The exit status is 1 when there is
a mismatch, 0 otherwise. `codegen/tests/vectors.rs` runs this script and requires the
same verdicts as the Rust `jsonschema` crate, vector by vector.

Usage: check_vectors.py [VECTORS_DIR]   (default: conformance/vectors of this repository)
"""

import importlib.metadata
import json
import pathlib
import sys

from jsonschema import Draft202012Validator

REFUSED_BY_SCHEMA = {"unknownType", "schema"}


def expectation(vector):
    """True when the schema must accept the body, False when it must reject it, None
    when the schema cannot decide (limits)."""
    if vector["valid"]:
        return True
    if vector.get("error") in REFUSED_BY_SCHEMA:
        return False
    return None


def main(argv):
    if len(argv) > 1:
        vectors_dir = pathlib.Path(argv[1])
    else:
        vectors_dir = pathlib.Path(__file__).resolve().parents[2] / "conformance" / "vectors"
    checker = Draft202012Validator.FORMAT_CHECKER
    missing = {"date-time", "uuid"} - set(checker.checkers)
    if missing:
        print(
            f"format checkers missing: {sorted(missing)}; install tools/python/requirements.txt",
            file=sys.stderr,
        )
        return 2
    verdicts = {}
    mismatches = []
    files = sorted(vectors_dir.glob("*.json"))
    if not files:
        print(f"no vectors files in {vectors_dir}", file=sys.stderr)
        return 2
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        schema_path = (path.parent / doc["jsonSchema"]).resolve()
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema, format_checker=checker)
        for vector in doc["vectors"]:
            if "body" not in vector:
                continue
            ok = validator.is_valid(vector["body"])
            verdicts[vector["id"]] = ok
            expected = expectation(vector)
            if expected is not None and ok != expected:
                what = "accepted" if ok else "rejected"
                mismatches.append(f"{vector['id']}: {what}")
    json.dump(
        {
            "jsonschema": importlib.metadata.version("jsonschema"),
            "verdicts": verdicts,
            "mismatches": mismatches,
        },
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    sys.stdout.write("\n")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

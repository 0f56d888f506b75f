#!/usr/bin/env python3
"""A second, independent Migration service for the conformance suite, in Python.

Without --defect it implements what the suite checks of the service role of
specs/migration.json: u32 little-endian length-prefixed JSON frames up to 1 MiB, the
envelope and every payload validated against the generated JSON Schema
(generated/jsonschema/migration.schema.json, with the `jsonschema` package),
AGENT_STARTED bound to the peer's login name (SO_PEERCRED), acknowledgments with the
catalogue's error codes, duplicate suppression by message id, heartbeats, the frame-read
and stale timeouts, and the connection limit. It keeps nothing on disk: it exists to show
that the suite checks behaviour on the wire, whatever the language, and, with a defect,
that the suite catches exactly what it should.

Defects (one at a time, --defect NAME):
  ignore-size-limit      reads a frame of any declared length instead of closing
  wrong-correlation      acknowledges messages with a wrong correlationId
  crash-on-invalid-utf8  exits when a body is not UTF-8
  no-heartbeats          never sends HEARTBEAT
  accept-impersonation   accepts any userId

Listens on the Unix socket in IPCSPEC_ADDRESS (unix:PATH).
"""

import argparse
import asyncio
import datetime
import json
import os
import pwd
import socket
import struct
import sys
import uuid

import jsonschema

MAX = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "..", "..", "generated", "jsonschema", "migration.schema.json")
RECEIVED = {
    "AGENT_STARTED", "BACKUP_STARTED", "BACKUP_PROGRESS", "BACKUP_COMPLETED",
    "DELAY_REQUEST", "USER_ACTION", "ERROR_REPORT", "HEARTBEAT", "ACKNOWLEDGMENT",
}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(message_type, payload, correlation=None):
    envelope = {"id": str(uuid.uuid4()), "type": message_type, "timestamp": now(), "payload": payload}
    if correlation is not None:
        envelope["correlationId"] = correlation
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return struct.pack("<I", len(body)) + body


class DuplicateKey(ValueError):
    pass


def no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def readable_id(text):
    """The envelope id of a body that is not a valid message, if one can be read."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return value["id"]
    return None


class Service:
    def __init__(self, args):
        self.args = args
        with open(SCHEMA, encoding="utf-8") as f:
            self.validator = jsonschema.Draft202012Validator(json.load(f))
        self.connections = 0
        self.handled = set()

    async def serve(self, reader, writer):
        if self.connections >= self.args.max_connections:
            refusal = {"success": False, "errorCode": "TOO_MANY_CONNECTIONS",
                       "errorMessage": "the service already serves %d connections" % self.args.max_connections}
            writer.write(encode("ACKNOWLEDGMENT", refusal))
            await writer.drain()
            writer.close()
            return
        self.connections += 1
        conn = Connection(self, reader, writer)
        try:
            await conn.run()
        finally:
            self.connections -= 1
            conn.heartbeats.cancel()
            writer.close()


class Connection:
    def __init__(self, service, reader, writer):
        self.service = service
        self.args = service.args
        self.reader = reader
        self.writer = writer
        self.user = None
        self.session = None
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        try:
            self.login = pwd.getpwuid(uid).pw_name
        except KeyError:
            self.login = None
        self.heartbeats = asyncio.ensure_future(self.heartbeat())

    async def heartbeat(self):
        if self.args.defect == "no-heartbeats":
            return
        while True:
            await asyncio.sleep(self.args.heartbeat_seconds)
            self.writer.write(encode("HEARTBEAT", {}))

    def send(self, frame):
        self.writer.write(frame)

    def ack(self, message_id, code=None, detail=None):
        if self.args.defect == "wrong-correlation":
            message_id = "not-" + message_id
        payload = {"success": code is None}
        if code is not None:
            payload["errorCode"] = code
            payload["errorMessage"] = (detail or code)[:1000]
        self.send(encode("ACKNOWLEDGMENT", payload, message_id))

    async def read_frame(self):
        """A body, or None when the connection must close."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(4), self.args.stale_seconds)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return None
        (length,) = struct.unpack("<I", head)
        if (length == 0 or length > MAX) and self.args.defect != "ignore-size-limit":
            return None
        try:
            return await asyncio.wait_for(self.reader.readexactly(length), self.args.frame_read_timeout_seconds)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return None

    async def run(self):
        while True:
            body = await self.read_frame()
            if body is None:
                return
            if not self.handle(body):
                await self.writer.drain()
                return
            await self.writer.drain()

    def handle(self, body):
        """Handles one body; False closes the connection."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            if self.args.defect == "crash-on-invalid-utf8":
                os._exit(70)
            return True
        try:
            message = json.loads(text, object_pairs_hook=no_duplicates)
        except DuplicateKey as key:
            message_id = readable_id(text)
            if message_id:
                self.ack(message_id, "INVALID_MESSAGE", "duplicate key %s" % key)
            return True
        except (ValueError, RecursionError):
            return True
        if not isinstance(message, dict):
            return True
        message_id = message.get("id")
        if not isinstance(message_id, str) or not message_id:
            return True
        message_type = message.get("type")
        if message_type not in RECEIVED:
            self.ack(message_id, "UNKNOWN_MESSAGE_TYPE", "%r is not a message the service receives" % message_type)
            return True
        errors = sorted(self.service.validator.iter_errors(message), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            if message_type not in ("HEARTBEAT", "ACKNOWLEDGMENT"):
                self.ack(message_id, "INVALID_MESSAGE", "%s: %s" % (where, errors[0].message))
            return True
        payload = message.get("payload", {})
        if message_type in ("HEARTBEAT", "ACKNOWLEDGMENT"):
            return True
        if message_type == "AGENT_STARTED":
            claimed = payload["userId"]
            if claimed != self.login and self.args.defect != "accept-impersonation":
                self.ack(message_id, "USER_MISMATCH", "%s is not the peer's login name" % claimed)
                return False
            self.user, self.session = claimed, payload["sessionId"]
            self.ack(message_id)
            self.send(encode("CONFIGURATION_UPDATE", {"configVersion": 0, "settings": {}}))
            self.send(encode("STATUS_UPDATE", {"phase": "COLLECTING_BACKUPS", "userState": "NOT_STARTED"}))
            return True
        if self.user is None:
            self.ack(message_id, "AGENT_NOT_STARTED", "send AGENT_STARTED first")
            return True
        if payload.get("userId") != self.user and self.args.defect != "accept-impersonation":
            self.ack(message_id, "USER_MISMATCH", "userId is not the connection's user")
            return False
        key = (self.user, self.session, message_id)
        if key in self.service.handled:
            self.ack(message_id, "DUPLICATE_MESSAGE", "already processed")
            return True
        if message_type in ("BACKUP_PROGRESS", "BACKUP_COMPLETED", "BACKUP_STARTED", "DELAY_REQUEST"):
            # No backup is ever requested or running here.
            code = "INVALID_STATE" if message_type == "DELAY_REQUEST" else "UNKNOWN_BACKUP"
            self.ack(message_id, code, "no backup in this service")
            return True
        self.service.handled.add(key)
        self.ack(message_id)
        return True


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--defect", choices=["ignore-size-limit", "wrong-correlation", "crash-on-invalid-utf8",
                                             "no-heartbeats", "accept-impersonation"])
    parser.add_argument("--frame-read-timeout-seconds", type=float, default=1.0)
    parser.add_argument("--heartbeat-seconds", type=float, default=1.0)
    parser.add_argument("--stale-seconds", type=float, default=3.0)
    parser.add_argument("--max-connections", type=int, default=8)
    args = parser.parse_args()
    address = os.environ.get("IPCSPEC_ADDRESS", "")
    if not address.startswith("unix:"):
        sys.exit("IPCSPEC_ADDRESS must be unix:PATH")
    service = Service(args)
    server = await asyncio.start_unix_server(service.serve, path=address[len("unix:"):], limit=MAX + 16)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

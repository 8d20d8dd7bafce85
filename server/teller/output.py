"""What ``branchline-teller`` prints: one line per thing for people, JSON with ``--json``,
and a refused call as the status and field its details carry."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from branchline.common.grpc_errors import describe, error_details

PROG = "branchline-teller"


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def enum_name(value: int, enum: Any, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def when(ts: Any, with_date: bool = False) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    local = ts.ToDatetime(tzinfo=UTC).astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def emit(args: argparse.Namespace, message: Message, human: str) -> None:
    if args.json:
        print(json.dumps(to_dict(message), sort_keys=True), flush=True)
    else:
        print(human, flush=True)


def refusal(error: grpc.RpcError, as_json: bool) -> None:
    """Say why the server refused: on stderr the status, the field and the message; with
    ``--json`` also the details as data on stdout (``code`` is the status, as before)."""
    if as_json:
        details = error_details(error)
        print(json.dumps({"error": {"code": details.status, **details.as_dict()}}), flush=True)
    print(f"{PROG}: {describe(error)}", file=sys.stderr, flush=True)


def notice(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)

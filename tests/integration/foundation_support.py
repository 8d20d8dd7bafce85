"""test_foundation's readers of the Fleet API, the agent's status and refused calls."""

from __future__ import annotations

import json
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from branchline.v1 import common_pb2, fleet_pb2
from tests.integration.stack import Stack

ONLINE = common_pb2.DEVICE_STATUS_ONLINE


def status_code(info: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return cast(grpc.Call, info.value).code()


def status_details(info: pytest.ExceptionInfo[grpc.RpcError]) -> str:
    return cast(grpc.Call, info.value).details() or ""


def violations(info: pytest.ExceptionInfo[grpc.RpcError]) -> list[tuple[str, str]]:
    """The BadRequest field violations in a refused call's status details."""
    status = rpc_status.from_call(cast(grpc.Call, info.value))
    assert status is not None, "the status carries no details"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.reason) for v in bad.field_violations)
    return found


def fleet_printer(stack: Stack) -> common_pb2.Device | None:
    terminal = stack.terminal()
    if terminal is None:
        return None
    return next((d for d in terminal.devices if d.name == "printer"), None)


def registered(stack: Stack) -> fleet_pb2.Terminal:
    terminal = stack.terminal()
    assert terminal is not None, "terminal not registered"
    return terminal


def registered_printer(stack: Stack) -> common_pb2.Device:
    device = fleet_printer(stack)
    assert device is not None, "printer not reported"
    return device


def fleet_printer_status(stack: Stack) -> int | None:
    device = fleet_printer(stack)
    return device.status if device is not None else None


def agent_printer_status(stack: Stack) -> str:
    return str(stack.agent_device("printer")["status"])


def diag_printer_status(stack: Stack) -> str:
    result = stack.diag("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return next(d["status"] for d in data["devices"] if d["name"] == "printer")

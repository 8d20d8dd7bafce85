"""What the PIN, card and tube tests share: the HSM's test keys, the simulator's card and its
PIN, and how a person works the simulated card reader and PIN pad (tube_support.py and the
browser tests use them too)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import grpc

from branchline.common.grpc_errors import error_details
from branchline.sim.devices.card_reader import GATE_CLOSED, NO_CARD_AT_GATE
from branchline.sim.enrol_pin_pad import ENROL_KSN
from branchline.v1 import agent_local_pb2, common_pb2, sim_control_pb2
from tests.integration.stack import Stack

BDK = "0123456789ABCDEFFEDCBA9876543210"  # ANSI X9.24-1 example BDK
KSN0 = "FFFF9876543210E00000"
PAN = "4761739001010010"  # the simulator's "visa" card
PIN = "918273"


def desk_pin_pad_key(hsm: Callable[..., str]) -> str:
    """The initial key of the bank desk's (simulated) enrolment PIN pad, from the HSM CLI."""
    out = hsm("--json", "derive-initial-key", "--bdk", "BDK", "--ksn", ENROL_KSN)
    return str(json.loads(out)["initial_key"])


def agent_devices(stack: Stack) -> list[common_pb2.Device]:
    """The devices as the agent reports them (its local API: no process per look)."""
    try:
        status = stack.agent_local().GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
    except grpc.RpcError:
        return []
    return list(status.devices)


def devices_online(stack: Stack) -> int:
    return sum(d.status == common_pb2.DEVICE_STATUS_ONLINE for d in agent_devices(stack))


def device_busy_with(stack: Stack, device: str, command: str) -> bool:
    return any(d.name == device and d.detail == f"running {command}" for d in agent_devices(stack))


def pin_entry_active(stack: Stack) -> bool:
    """The simulated PIN pad takes keys (pressed earlier, they are ignored, as on a real pad)."""
    listed = stack.sim().ListDevices(sim_control_pb2.ListSimDevicesRequest(), timeout=5)
    return any(d.name == "pin_pad" and d.facts.get("entry") == "active" for d in listed.devices)


def try_insert(stack: Stack, card: str) -> bool:
    """The card pushed into the slot; False while the gate is still closed."""
    try:
        stack.sim_act("card_reader", "insert", card=card)
    except grpc.RpcError as exc:
        if error_details(exc).reason == GATE_CLOSED:
            return False
        raise
    return True


def try_take(stack: Stack, worker: threading.Thread) -> bool:
    """The card taken from the gate; without a card there, done once the sign-in ended."""
    try:
        stack.sim_act("card_reader", "take")
    except grpc.RpcError as exc:
        if error_details(exc).reason == NO_CARD_AT_GATE:
            return not worker.is_alive()  # the sign-in ended without handing the card back
        raise
    return True

"""Card reader end to end: the real agent and simulator processes, faults, unplug, diag."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from branchline.v1 import sim_control_pb2
from tests.integration.stack import Stack, device_stack, wait_for

PAN = "4761739001010010"
# Anything that would show card data in a log: the PAN, either track, the track 2 equivalent.
SECRETS = (PAN, "%B4761", f";{PAN}=", f"{PAN}D", "TEST/VISA CARD^")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One stack for the module: every test leaves the reader online with no card in it.
    with device_stack(tmp_path_factory.mktemp("card_reader"), "card_reader") as stack:
        yield stack


@pytest.fixture
def stack(shared: Stack) -> Stack:
    wait_for(lambda: agent_status(shared)[0] == "online", 15, "card reader online")
    return shared


def agent_status(stack: Stack) -> tuple[str, str, dict[str, str]]:
    device = stack.agent_device("card_reader")
    return device["status"], device["detail"], device["facts"]


def diag_status(stack: Stack) -> tuple[str, str, dict[str, str]]:
    result = stack.diag("status", "--json")
    assert result.returncode == 0, result.stderr
    device = next(d for d in json.loads(result.stdout)["devices"] if d["name"] == "card_reader")
    return device["status"], device["detail"], device["facts"]


def sim_facts(stack: Stack) -> dict[str, str]:
    devices = stack.sim().ListDevices(sim_control_pb2.ListSimDevicesRequest(), timeout=5).devices
    return dict(next(d for d in devices if d.name == "card_reader").facts)


def background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    return thread, box


def command(stack: Stack, name: str, **params: Any) -> tuple[str, str, dict[str, Any]]:
    return stack.device_command("card_reader", name, timeout=30, **params)


def insert(stack: Stack, card: str = "visa") -> None:
    thread, box = background(lambda: command(stack, "accept_card", timeout_s=10))
    wait_for(lambda: sim_facts(stack)["insertion_enabled"] == "true", 5, "gate open")
    stack.sim_act("card_reader", "insert", card=card)
    thread.join(15)
    assert box and box[0][0] == "success" and box[0][2] == {"card": "inserted"}, box


def eject_and_wait_at_gate(stack: Stack, **params: Any) -> tuple[threading.Thread, list[Any]]:
    thread, box = background(lambda: command(stack, "eject", **params))
    wait_for(lambda: sim_facts(stack)["card_position"] == "at_gate", 5, "card at the gate")
    return thread, box


def test_read_tracks_and_chip_eject_take_and_no_card_data_in_the_log(stack: Stack) -> None:
    # The module's first test: the stack is fresh (the bin count is still 0 below).
    assert diag_status(stack)[0] == "online"
    insert(stack)
    completion, _, tracks = command(stack, "read_tracks")
    assert completion == "success", tracks
    assert tracks["track1_present"] and tracks["track2_present"]
    assert tracks["pan"] == PAN and tracks["pan_masked"] == "476173******0010"
    assert tracks["expiry"] == "2031-12" and tracks["cardholder_name"] == "TEST/VISA CARD"
    completion, _, chip = command(stack, "read_chip")
    assert completion == "success", chip
    assert chip["pan"] == PAN == tracks["pan"]
    assert chip["aid"] == "A0000000031010" and chip["app_label"] == "VISA CREDIT"
    assert chip["expiry"] == "2031-12" and chip["cardholder_name"] == "TEST/VISA CARD"

    thread, box = eject_and_wait_at_gate(stack, take_timeout_s=10)
    assert stack.sim_act("card_reader", "take") == {"taken": "true"}
    thread.join(15)
    assert box[0][0] == "success" and box[0][2] == {"card": "taken"}

    # Technician commands through branchline-diag.
    counted = stack.diag("card_reader", "bin_count", "--json")
    assert counted.returncode == 0, counted.stdout + counted.stderr
    assert json.loads(counted.stdout)["result"]["bin_count"] == 0
    insert(stack)
    thread, box = background(lambda: stack.diag("card_reader", "eject", "take_timeout_s=10"))
    wait_for(lambda: sim_facts(stack)["card_position"] == "at_gate", 5, "diag eject at the gate")
    stack.sim_act("card_reader", "take")
    thread.join(15)
    assert box[0].returncode == 0 and "card: taken" in box[0].stdout, box[0].stdout
    reset = stack.diag("card_reader", "initialise")
    assert reset.returncode == 0 and "card_position: none" in reset.stdout, reset.stdout

    log = stack.procs["agent"].log()
    assert log, "the agent wrote no log"
    for secret in SECRETS:
        assert secret not in log, f"{secret!r} in the agent log"
    for secret in SECRETS:
        assert secret not in stack.procs["sim"].log(), f"{secret!r} in the simulator log"


def test_faults_end_cleanly_and_recover_without_restarting_the_agent(stack: Stack) -> None:
    agent = stack.procs["agent"].popen

    # Jam: the motor command fails, status shows the jam until an initialise after the fix.
    insert(stack)
    stack.sim_fault("card_reader", "jam", True)
    completion, code, _ = command(stack, "retain")
    assert (completion, code.split(":")[0]) == ("hardware_error", "card_jam")
    wait_for(lambda: agent_status(stack)[:2] == ("hardware_error", "card jam"), 5, "jam reported")
    stack.sim_fault("card_reader", "jam", False)
    assert agent_status(stack)[:2] == ("hardware_error", "card jam")
    completion, _, result = command(stack, "initialise", card="retain")
    assert completion == "success" and result["card_position"] == "none"
    wait_for(lambda: agent_status(stack)[0] == "online", 5, "online after initialise")
    bin_count = int(agent_status(stack)[2]["bin_count"])

    # Card not taken: the reader retains it after the take timeout, bin count + 1.
    insert(stack, "magstripe")
    stack.sim_fault("card_reader", "card_not_taken", True)
    thread, box = eject_and_wait_at_gate(stack, take_timeout_s=1)
    assert stack.sim_act("card_reader", "take") == {"taken": "false"}
    thread.join(15)
    assert box[0][0] == "success"
    assert box[0][2] == {"card": "retained", "bin_count": bin_count + 1}
    stack.sim_fault("card_reader", "card_not_taken", False)
    wait_for(
        lambda: agent_status(stack)[2].get("bin_count") == str(bin_count + 1), 5, "bin count fact"
    )

    # Mute chip: power-on gives no ATR; the same card reads once the chip answers again.
    insert(stack)
    stack.sim_fault("card_reader", "mute_chip", True)
    completion, code, _ = command(stack, "read_chip")
    assert (completion, code.split(":")[0]) == ("user_error", "ic_activation_failed")
    stack.sim_fault("card_reader", "mute_chip", False)
    completion, _, chip = command(stack, "read_chip")
    assert completion == "success" and chip["pan"] == PAN

    # NAK storm: bounded retries, hardware error, online again once the line is clean.
    stack.sim_fault("card_reader", "nak_storm", True)
    completion, code, _ = command(stack, "read_tracks")
    assert (completion, code.split(":")[0]) == ("hardware_error", "nak_storm")
    wait_for(lambda: "NAK storm" in agent_status(stack)[1], 5, "NAK storm reported")
    stack.sim_fault("card_reader", "nak_storm", False)
    wait_for(lambda: agent_status(stack)[0] == "online", 5, "online after the storm")
    completion, _, result = command(stack, "retain")
    assert completion == "success" and result["bin_count"] == bin_count + 2

    # Nobody inserts a card: accept_card times out and closes the gate.
    completion, code, _ = command(stack, "accept_card", timeout_s=0.5)
    assert (completion, code.split(":")[0]) == ("timeout", "no_card_inserted")
    assert sim_facts(stack)["insertion_enabled"] == "false"
    assert agent.poll() is None
    for secret in SECRETS:
        assert secret not in stack.procs["agent"].log()


def test_unplug_replug_recovers_by_itself(stack: Stack) -> None:
    sim = stack.sim()
    request = sim_control_pb2.SimDeviceRequest(device="card_reader")
    sim.Unplug(request, timeout=5)
    wait_for(lambda: agent_status(stack)[0] == "no_device", 5, "card reader gone")
    completion, _, _ = command(stack, "status")
    assert completion == "device_not_ready"
    sim.Replug(request, timeout=5)
    wait_for(lambda: agent_status(stack)[0] == "online", 10, "card reader back")
    completion, _, result = command(stack, "status")
    assert completion == "success" and result["card_position"] == "none"

    # Garbage on the line is skipped.
    for junk in (b"\xf2\x00\x01\x00garbage", b"\x15\x15\x06\x03", bytes(range(256))):
        sim.InjectGarbage(
            sim_control_pb2.InjectGarbageRequest(device="card_reader", data=junk), timeout=5
        )
    completion, _, _ = command(stack, "bin_count")
    assert completion == "success"
    assert agent_status(stack)[0] == "online"

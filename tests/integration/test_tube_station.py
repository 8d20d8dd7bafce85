"""The pneumatic tube station end to end: the real agent drives the simulated station
controller over Modbus RTU on a pty, the simulator plays the customer and the back office.

A carrier out to the back office and back, the technician's send_test and spy, jam / lost
carrier / door open ending in the right status and recovering with reset_fault, a silent
controller, a disagreeing GPIO sensor, and unplug/replug, all without restarting the agent.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from branchline.v1 import agent_local_pb2, common_pb2
from tests.integration.stack import PY, Stack, running_stack, wait_for

DEVICE = "tube_station"


def device(stack: Stack) -> common_pb2.Device:
    status = stack.agent_local().GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
    return next(d for d in status.devices if d.name == DEVICE)


def status_is(stack: Stack, name: str, detail: str | None = None) -> bool:
    d = device(stack)
    wanted = getattr(common_pb2, f"DEVICE_STATUS_{name.upper()}")
    return d.status == wanted and (detail is None or detail in d.detail)


def wait_status(stack: Stack, name: str, detail: str | None = None, timeout: float = 8) -> None:
    wait_for(
        lambda: status_is(stack, name, detail),
        timeout,
        f"tube station {name} {detail or ''}; now {device(stack).status} {device(stack).detail!r}",
    )


def command(stack: Stack, name: str, **params: Any) -> dict[str, Any]:
    completion, problem, result = stack.device_command(DEVICE, name, **params)
    assert completion == "success", f"{name}: {completion} {problem}"
    return result


def failing(stack: Stack, name: str, **params: Any) -> tuple[str, str]:
    completion, problem, _ = stack.device_command(DEVICE, name, **params)
    assert completion != "success", f"{name} should have failed"
    return completion, problem


def take_out_at_the_terminal(stack: Stack) -> None:
    """The customer takes the carrier that came back, through the product's own commands."""
    command(stack, "open_door")
    stack.sim_act(DEVICE, "remove")
    assert command(stack, "wait_removed", timeout_s=5)["state"] == "empty"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One stack for the module: each test leaves both stations empty and its faults cleared.
    with running_stack(tmp_path_factory.mktemp("tube_station")) as stack:
        stack.shutdown_drain = 0  # no client to drain when the module ends
        stack.devices = (DEVICE,)
        stack.required_devices = (DEVICE,)
        stack.start_all()
        yield stack


@pytest.fixture
def tube(shared: Stack) -> Stack:
    wait_status(shared, "online", timeout=15)
    return shared


def test_carrier_to_the_back_office_and_back(tube: Stack) -> None:
    # The module's first test: the station's counters below start from zero.
    stack = tube
    stack.sim_act(DEVICE, "set_travel_time", seconds="1.0")
    assert stack.sim_act(DEVICE, "load", carrier_id="4711")["terminal_state"] == "loaded"
    wait_for(lambda: device(stack).facts["state"] == "loaded", 5, "agent sees the carrier")
    assert device(stack).facts["carrier_id"] == "4711"

    sent = command(stack, "send", carrier_id=4711)
    assert sent["state"] == "arrived" and sent["carrier_id"] == 4711
    assert 0.9 < sent["seconds"] < 5
    seen = sent["states"]
    assert seen[0] == "here:loaded far:empty"
    assert any(s.startswith("here:in_transit") for s in seen)
    office = stack.sim_act(DEVICE, "status")
    assert office["backoffice_state"] == "arrived" and office["backoffice_carrier_id"] == "4711"

    stack.sim_act(DEVICE, "backoffice_return")
    arrived = command(stack, "wait_arrival", timeout_s=10)
    assert arrived == {"state": "arrived", "carrier_id": 4711, "seconds": arrived["seconds"]}
    assert command(stack, "open_door") == {"door": "open", "state": "arrived"}
    assert stack.sim_act(DEVICE, "remove")["terminal_state"] == "removed"
    removed = command(stack, "wait_removed", timeout_s=5)
    assert (removed["state"], removed["door"]) == ("empty", "closed")
    status = command(stack, "status")
    assert (status["state"], status["present"], status["fault"]) == ("empty", False, "none")
    assert (status["sent_count"], status["received_count"]) == (1, 1)
    wait_status(stack, "online")


def test_send_test_and_spy_from_branchline_diag(tube: Stack) -> None:
    stack = tube
    spy = subprocess.Popen(
        [PY, "-m", "branchline.agent.diag", "--socket", str(stack.agent_socket)]
        + ["spy", DEVICE, "--seconds", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, _ = spy.communicate(timeout=30)
    # Read input registers 0..8 of unit 1, with its CRC, and the controller's reply.
    assert "tx  01 04 00 00 00 09 30 0c" in out
    assert "rx  01 04 12" in out

    refused = stack.diag(DEVICE, "send_test", "--json")
    assert refused.returncode == 3
    assert json.loads(refused.stdout)["code"] == "not_loaded"

    stack.sim_act(DEVICE, "load", carrier_id="9000")
    result = stack.diag(DEVICE, "send_test", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["completion"] == "success" and report["result"]["result"] == "passed"
    states = report["result"]["states"]
    assert states[0] == "here:loaded far:empty" and states[-1] == "here:arrived far:empty"
    assert any(s.endswith("far:arrived") for s in states)  # it reached the back office
    human = stack.diag(DEVICE, "send_test")
    assert human.returncode == 3 and "not_loaded" in human.stdout  # the carrier is back, not loaded

    bad = stack.diag(DEVICE, "send", "carrier_id=abc")
    assert bad.returncode == 3 and "carrier_id: expected a whole number" in bad.stdout
    take_out_at_the_terminal(stack)


def test_faults_end_in_the_right_status_and_recover(tube: Stack) -> None:
    stack = tube
    agent_pid = stack.procs["agent"].popen.pid

    # Jam: the carrier stops in the tube; reset only once the jam is cleared.
    stack.sim_act(DEVICE, "load", carrier_id="1")
    stack.sim_fault(DEVICE, "jam", True)
    completion, problem = failing(stack, "send", carrier_id=1)
    assert completion == "hardware_error" and problem.startswith("jam:")
    wait_status(stack, "hardware_error", "carrier jammed in the tube")
    completion, problem = failing(stack, "reset_fault")
    assert completion == "hardware_error" and "fault active" in problem
    stack.sim_fault(DEVICE, "jam", False)
    assert command(stack, "reset_fault")["state"] == "loaded"  # the carrier is put back
    wait_status(stack, "online")

    # Lost: it never arrives; the driver's transit timeout (3 s here) says so.
    stack.sim_fault(DEVICE, "carrier_lost", True)
    started = time.monotonic()
    completion, problem = failing(stack, "send", carrier_id=1)
    assert completion == "hardware_error" and problem.startswith("carrier_lost:")
    assert time.monotonic() - started < 10
    wait_status(stack, "hardware_error", "carrier lost")
    stack.sim_fault(DEVICE, "carrier_lost", False)
    assert command(stack, "reset_fault")["state"] == "empty"  # written off
    wait_status(stack, "online")

    # Door forced open: a user error; the fault stays latched until reset.
    stack.sim_fault(DEVICE, "door_open", True)
    wait_status(stack, "user_error", "door open")
    completion, problem = failing(stack, "wait_arrival", timeout_s=2)
    assert completion == "user_error"
    stack.sim_fault(DEVICE, "door_open", False)
    wait_status(stack, "user_error", "reset_fault clears it")
    command(stack, "reset_fault")
    wait_status(stack, "online")

    assert stack.procs["agent"].popen.pid == agent_pid and stack.procs["agent"].popen.poll() is None


def test_silent_controller_disagreeing_sensor_and_unplug(tube: Stack) -> None:
    stack = tube
    agent_pid = stack.procs["agent"].popen.pid

    stack.sim_fault(DEVICE, "controller_silent", True)
    wait_status(stack, "offline", "did not answer")
    stack.sim_fault(DEVICE, "controller_silent", False)
    wait_status(stack, "online")

    stack.sim_fault(DEVICE, "sensor_mismatch", True)
    wait_status(stack, "hardware_error", "sensor disagreement: carrier GPIO says present")
    stack.sim_fault(DEVICE, "sensor_mismatch", False)
    wait_status(stack, "online")

    from branchline.v1 import sim_control_pb2

    sim = stack.sim()
    sim.Unplug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_status(stack, "no_device", timeout=5)
    completion, _ = failing(stack, "status")
    assert completion == "device_not_ready"
    sim.Replug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_status(stack, "online", timeout=8)
    stack.sim_act(DEVICE, "load", carrier_id="77")
    assert command(stack, "send", carrier_id=77)["state"] == "arrived"
    assert stack.procs["agent"].popen.pid == agent_pid and stack.procs["agent"].popen.poll() is None
    stack.sim_act(DEVICE, "backoffice_remove")  # the back office takes carrier 77

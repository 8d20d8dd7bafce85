"""The resident ID-card reader end to end: server, simulator and agent as real processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from branchline.v1 import sim_control_pb2
from tests.integration.stack import Stack, device_stack, wait_for

DEVICE = "id_reader"
VALID_ID = "11010519491231002X"
ALL_IDS = (VALID_ID, "440304199506123513", "310101198807150037", "320102196308052422")


def device_status(stack: Stack) -> str:
    return str(stack.agent_device(DEVICE)["status"])


def diag_status(stack: Stack) -> str:
    result = stack.diag("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return str(next(d["status"] for d in data["devices"] if d["name"] == DEVICE))


def sim_facts(stack: Stack) -> dict[str, str]:
    listed = stack.sim().ListDevices(sim_control_pb2.ListSimDevicesRequest(), timeout=5)
    return dict(next(d for d in listed.devices if d.name == DEVICE).facts)


def read(stack: Stack, card: str | None, **params: Any) -> tuple[str, str, dict[str, Any]]:
    if card is None:
        stack.sim_act(DEVICE, "remove")
    else:
        stack.sim_act(DEVICE, "place", card=card)
    return stack.device_command(DEVICE, "read_card", **params)


def assert_no_full_id_number_logged(stack: Stack) -> None:
    log = stack.procs["agent"].log()
    assert log, "the agent wrote no log"
    for id_number in ALL_IDS:
        assert id_number not in log
        assert id_number[:17] not in log


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One stack for the module: each test clears the faults it sets.
    with device_stack(tmp_path_factory.mktemp(DEVICE), DEVICE) as stack:
        yield stack


@pytest.fixture
def id_stack(shared: Stack) -> Stack:
    wait_for(lambda: device_status(shared) == "online", 15, "ID reader online")
    return shared


def test_cards_are_read_parsed_and_validated(id_stack: Stack) -> None:
    stack = id_stack
    assert diag_status(stack) == "online"
    completion, problem, result = read(stack, "valid")
    assert completion == "success", problem
    assert result["name"] == "李秀英"
    assert result["id_number_masked"] == "110105********002X"
    assert result["id_number"] == VALID_ID
    assert (result["birth_date"], result["valid_from"], result["valid_to"]) == (
        "19491231",
        "20200601",
        "20400601",
    )
    assert result["photo_bytes"] == 1024 and result["valid"] is True and result["problems"] == []

    completion, problem, result = read(stack, "expired")
    assert completion == "success", problem
    assert result["valid"] is False and result["problems"] == ["expired"]

    completion, problem, result = read(stack, "bad_check_digit")
    assert completion == "success", problem
    assert result["valid"] is False and "bad_check_digit" in result["problems"]

    completion, problem, result = read(stack, "long_term")
    assert completion == "success", problem
    assert result["valid"] is True and result["valid_to"] == "长期"

    completion, problem, _ = read(stack, None, timeout_s=1)
    assert completion == "timeout" and problem.startswith("no_card:")

    # The technician's tools.
    sam = stack.diag(DEVICE, "sam_status")
    assert sam.returncode == 0, sam.stdout + sam.stderr
    assert "sam: ok" in sam.stdout
    stack.sim_act(DEVICE, "place", card="valid")
    test_read = stack.diag(DEVICE, "test_read", "--json")
    assert test_read.returncode == 0, test_read.stdout + test_read.stderr
    out = json.loads(test_read.stdout)
    assert out["result"]["id_number_masked"] == "110105********002X"
    assert VALID_ID not in test_read.stdout and 'id_number"' not in test_read.stdout
    bad = stack.diag(DEVICE, "read_card", "timeout_s=soon")
    assert bad.returncode == 3 and "timeout_s: expected a number" in bad.stdout

    selftest = stack.diag("selftest", DEVICE)
    assert selftest.returncode == 0 and "PASSED" in selftest.stdout
    assert_no_full_id_number_logged(stack)


def test_faults_and_unplug_recover_without_restarting_the_agent(id_stack: Stack) -> None:
    stack = id_stack
    agent = stack.procs["agent"].popen
    stack.sim_act(DEVICE, "place", card="valid")

    stack.sim_fault(DEVICE, "sam_fault", True)
    wait_for(lambda: device_status(stack) == "hardware_error", 5, "SAM fault reported")
    completion, problem, _ = stack.device_command(DEVICE, "sam_status")
    assert completion == "hardware_error" and problem.startswith("sam_self_test_failed:")
    completion, problem, _ = stack.device_command(DEVICE, "read_card", timeout_s=1)
    assert completion == "hardware_error", problem
    stack.sim_fault(DEVICE, "sam_fault", False)
    wait_for(lambda: device_status(stack) == "online", 5, "online after the SAM recovers")

    stack.sim_fault(DEVICE, "read_fail", True)
    completion, problem, _ = stack.device_command(DEVICE, "read_card", timeout_s=1)
    assert completion == "user_error" and problem.startswith("read_failed:")
    stack.sim_fault(DEVICE, "read_fail", False)
    completion, problem, result = stack.device_command(DEVICE, "read_card")
    assert completion == "success" and result["valid"] is True, problem

    stack.sim_fault(DEVICE, "bad_checksum", True)
    completion, problem, result = stack.device_command(DEVICE, "read_card")
    assert completion == "success" and result["valid"] is True, problem
    assert sim_facts(stack)["corrupted_replies"] == "1"

    sim = stack.sim()
    sim.InjectGarbage(
        sim_control_pb2.InjectGarbageRequest(device=DEVICE, data=b"\xaa\xaa\x00junk" * 20),
        timeout=5,
    )
    completion, problem, _ = stack.device_command(DEVICE, "read_card")
    assert completion == "success", problem

    sim.Unplug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_for(lambda: device_status(stack) == "no_device", 5, "agent sees the reader gone")
    completion, _, _ = stack.device_command(DEVICE, "read_card", timeout_s=1)
    assert completion == "device_not_ready"
    sim.Replug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_for(lambda: device_status(stack) == "online", 10, "online again after replug")
    completion, problem, result = stack.device_command(DEVICE, "read_card")
    assert completion == "success" and result["id_number_masked"] == "110105********002X", problem

    assert agent.poll() is None and stack.procs["agent"].popen.pid == agent.pid
    assert_no_full_id_number_logged(stack)
    stack.sim_fault(DEVICE, "bad_checksum", False)  # the module's stack as it was

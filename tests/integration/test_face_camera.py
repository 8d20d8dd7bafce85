"""The face camera end to end: the simulated face module behind a real pseudo-terminal, the
agent's driver on it, commands through the agent's local API, faults and unplug; then the
captures through the server's face checks and matcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from branchline.server.faces.checks import capture_from_result
from branchline.server.faces.dlib_backend import DlibFaceMatcher
from branchline.server.faces.settings import FaceSettings
from branchline.server.faces.verify import enrol, verify
from branchline.v1 import sim_control_pb2
from tests.integration.stack import Stack, device_stack, wait_for

DEVICE = "face_camera"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"


def device_status(stack: Stack) -> str:
    return str(stack.agent_device(DEVICE)["status"])


def diag_status(stack: Stack) -> str:
    result = stack.diag("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    return str(next(d["status"] for d in data["devices"] if d["name"] == DEVICE))


def capture(stack: Stack, **scene: str) -> tuple[str, str, dict[str, Any]]:
    stack.sim_act(DEVICE, "present", **scene)
    return stack.device_command(DEVICE, "capture", timeout_s=2)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One stack for the module: each test clears the faults it sets.
    with device_stack(tmp_path_factory.mktemp(DEVICE), DEVICE) as stack:
        yield stack


@pytest.fixture
def face_stack(shared: Stack) -> Stack:
    wait_for(lambda: device_status(shared) == "online", 15, "face camera online")
    return shared


def test_every_presentation_over_the_wire_and_to_a_decision(face_stack: Stack) -> None:
    stack = face_stack
    assert diag_status(stack) == "online"
    results: dict[str, dict[str, Any]] = {}
    for name, scene in {
        "live": {"scene": "live", "person": "obama"},
        "other": {"scene": "live", "person": "biden"},
        "photo": {"scene": "photo", "person": "obama"},
        "no_face": {"scene": "no_face"},
        "two_faces": {"scene": "two_faces", "person": "obama", "other": "biden"},
    }.items():
        completion, problem, result = capture(stack, **scene)
        assert completion == "success", (name, problem)
        results[name] = result
    assert results["live"]["liveness"] == "live" and results["live"]["face_count"] == 1
    assert results["photo"]["liveness"] == "not_live"
    assert results["no_face"]["face_count"] == 0
    assert results["two_faces"]["face_count"] == 2

    matcher = DlibFaceMatcher()
    settings = FaceSettings()
    enrolled = enrol(matcher, (FIXTURES / "obama_3.jpg").read_bytes(), settings)
    outcomes = {
        name: verify(matcher, capture_from_result(result), enrolled, settings)
        for name, result in results.items()
    }
    assert {n: (d.outcome, d.reason) for n, d in outcomes.items()} == {
        "live": ("match", ""),
        "other": ("no_match", ""),
        "photo": ("refused", "not_live"),
        "no_face": ("refused", "no_face"),
        "two_faces": ("refused", "several_faces"),
    }

    # The technician's tools.
    stack.sim_act(DEVICE, "present", scene="live", person="biden")
    test = stack.diag(DEVICE, "test_capture", "--json")
    assert test.returncode == 0, test.stdout + test.stderr
    assert json.loads(test.stdout)["result"]["liveness"] == "live"
    assert "jpeg_b64" not in test.stdout
    bad = stack.diag(DEVICE, "capture", "timeout_s=soon")
    assert bad.returncode == 3 and "timeout_s: expected a number" in bad.stdout
    selftest = stack.diag("selftest", DEVICE)
    assert selftest.returncode == 0 and "PASSED" in selftest.stdout


def test_faults_and_unplug_recover_without_restarting_the_agent(face_stack: Stack) -> None:
    stack = face_stack
    agent = stack.procs["agent"].popen
    stack.sim_act(DEVICE, "present", scene="live", person="obama")

    stack.sim_fault(DEVICE, "sensor_fault", True)
    wait_for(lambda: device_status(stack) == "hardware_error", 5, "sensor fault reported")
    completion, problem, _ = stack.device_command(DEVICE, "capture", timeout_s=1)
    assert completion == "hardware_error" and problem.startswith("sensor_fault:")
    stack.sim_fault(DEVICE, "sensor_fault", False)
    wait_for(lambda: device_status(stack) == "online", 5, "online after the sensor recovers")

    stack.sim_fault(DEVICE, "ir_fault", True)
    completion, problem, result = stack.device_command(DEVICE, "capture", timeout_s=1)
    assert completion == "success", problem
    assert result["liveness"] == "unavailable" and result["liveness_score"] is None
    selftest = stack.diag("selftest", DEVICE)
    assert selftest.returncode != 0 and "ir_fault" in selftest.stdout + selftest.stderr
    stack.sim_fault(DEVICE, "ir_fault", False)

    stack.sim_fault(DEVICE, "bad_crc", True)
    completion, problem, result = stack.device_command(DEVICE, "capture", timeout_s=1)
    assert completion == "success" and result["liveness"] == "live", problem

    stack.sim_act(DEVICE, "clear")
    completion, problem, _ = stack.device_command(DEVICE, "capture", timeout_s=0.5)
    assert completion == "timeout" and problem.startswith("capture_timeout:")

    stack.sim().Unplug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_for(lambda: device_status(stack) in ("no_device", "offline"), 10, "unplug noticed")
    stack.sim().Replug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_for(lambda: device_status(stack) == "online", 15, "back online after replug")
    stack.sim_act(DEVICE, "present", scene="live", person="obama")
    completion, problem, result = stack.device_command(DEVICE, "capture", timeout_s=1)
    assert completion == "success" and result["face_count"] == 1, problem
    assert agent.poll() is None  # never restarted
    stack.sim_fault(DEVICE, "bad_crc", False)  # the module's stack as it was

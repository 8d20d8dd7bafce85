"""Issue 2 acceptance: server, simulator and agent as real processes.

Printer end to end, unplug/replug, paper out, health, sd_notify, mTLS identity, bad input.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import grpc
import pytest
import zxingcpp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from branchline.server.health_cli import served_services
from branchline.v1 import (
    common_pb2,
    fleet_pb2,
    sim_control_pb2,
    terminal_link_pb2,
    terminal_link_pb2_grpc,
)
from tests.integration.foundation_support import (
    ONLINE,
    agent_printer_status,
    diag_printer_status,
    fleet_printer,
    fleet_printer_status,
    registered,
    registered_printer,
    status_code,
    status_details,
    violations,
)
from tests.integration.stack import PY, Stack, running_stack, wait_for


class Shared(NamedTuple):
    stack: Stack
    started: float  # time.monotonic() when its processes were started


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Server, simulator and agent for the tests that leave them as they found them."""
    with running_stack(tmp_path_factory.mktemp("foundation")) as stack:
        stack.shutdown_drain = 0  # no client to drain when the module ends
        started = time.monotonic()
        stack.start_all()
        yield Shared(stack, started)


@pytest.fixture
def up(shared: Shared) -> Stack:
    stack = shared.stack
    if stack.procs["agent"].popen.poll() is not None:  # the sd_notify test stopped it
        stack.start_agent()
    return stack


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server no terminal ever registered with, for the tests of refused identities."""
    with running_stack(tmp_path_factory.mktemp("bare")) as stack:
        stack.shutdown_drain = 0  # no client to drain when the module ends
        stack.start_server()
        yield stack


def test_terminal_and_printer_online_and_selftest_prints_terminal_id(shared: Shared) -> None:
    # The module's first test: the shared stack was started by the fixture just now.
    stack, started = shared
    terminal = wait_for(
        lambda: (t := stack.terminal()) is not None and t.online and t,
        10,
        "terminal registered and online",
    )
    assert time.monotonic() - started < 30
    assert terminal.branch == "BR-001"
    assert terminal.kind == common_pb2.TERMINAL_KIND_SELF_SERVICE
    wait_for(lambda: fleet_printer_status(stack) == ONLINE, 10, "printer online in the Fleet API")
    printer = fleet_printer(stack)
    assert printer is not None and printer.driver == "escpos_printer"
    assert printer.capabilities["qr"] == "true"
    listed = stack.fleet().ListTerminals(fleet_pb2.ListTerminalsRequest(branch="BR-001"), timeout=5)
    assert [t.terminal_id for t in listed.terminals] == ["T-0001"]
    assert (
        stack.fleet()
        .ListTerminals(fleet_pb2.ListTerminalsRequest(branch="BR-999"), timeout=5)
        .terminals
        == []
    )

    result = stack.diag("selftest", "printer")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    pngs = sorted((stack.sim_dir / "printer").glob("receipt-*.png"))
    assert pngs, "the simulator rendered no receipt"
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(pngs[-1]))]
    assert decoded == ["T-0001"]

    human = stack.diag("status")
    assert human.returncode == 0
    assert "T-0001" in human.stdout and "printer" in human.stdout and "online" in human.stdout


def test_unplug_replug_and_paper_out(up: Stack) -> None:
    stack = up
    wait_for(lambda: fleet_printer_status(stack) == ONLINE, 15, "printer online")
    agent_pid = stack.procs["agent"].popen.pid
    sim = stack.sim()

    sim.Unplug(sim_control_pb2.SimDeviceRequest(device="printer"), timeout=5)
    unplugged = time.monotonic()
    wait_for(lambda: agent_printer_status(stack) == "no_device", 5, "agent sees the printer gone")
    wait_for(
        lambda: fleet_printer_status(stack) == common_pb2.DEVICE_STATUS_NO_DEVICE,
        max(0.5, 5 - (time.monotonic() - unplugged)),
        "Fleet API sees the printer gone",
    )
    failed = stack.diag("selftest", "printer")
    assert failed.returncode == 3 and "FAILED" in failed.stdout

    sim.Replug(sim_control_pb2.SimDeviceRequest(device="printer"), timeout=5)
    wait_for(lambda: fleet_printer_status(stack) == ONLINE, 5, "printer back online after replug")
    assert diag_printer_status(stack) == "online"
    assert stack.procs["agent"].popen.pid == agent_pid and stack.procs["agent"].popen.poll() is None

    stack.sim_fault("printer", "paper_out", True)
    wait_for(
        lambda: fleet_printer_status(stack) == common_pb2.DEVICE_STATUS_USER_ERROR,
        5,
        "paper out reported as a user error",
    )
    assert registered_printer(stack).detail == "paper out"
    status = stack.diag("status", "--json")
    assert '"service_state": "out_of_service"' in status.stdout
    result = stack.diag("selftest", "printer", "--json")
    assert result.returncode == 3
    assert '"completion": "user_error"' in result.stdout
    stack.sim_fault("printer", "paper_out", False)
    wait_for(lambda: fleet_printer_status(stack) == ONLINE, 5, "printer online after new paper")

    stack.sim_fault("printer", "cover_open", True)
    wait_for(lambda: registered_printer(stack).detail == "cover open", 5, "cover open reported")
    stack.sim_fault("printer", "cover_open", False)
    wait_for(lambda: fleet_printer_status(stack) == ONLINE, 5, "printer online after cover closed")


def test_garbage_on_the_printer_line_does_not_crash_the_agent(up: Stack) -> None:
    stack = up
    wait_for(lambda: fleet_printer_status(stack) == ONLINE, 15, "printer online")
    sim = stack.sim()
    rng = __import__("random").Random(7)
    for _ in range(20):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
        sim.InjectGarbage(
            sim_control_pb2.InjectGarbageRequest(device="printer", data=junk), timeout=5
        )
        time.sleep(0.05)
    assert stack.procs["agent"].popen.poll() is None
    result = stack.diag("selftest", "printer")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: agent_printer_status(stack) == "online", 5, "printer online after garbage")


def test_maintenance_mode_is_acknowledged_and_reported(up: Stack) -> None:
    stack = up
    wait_for(
        lambda: (
            (t := stack.terminal()) is not None
            and t.service_state == common_pb2.SERVICE_STATE_IN_SERVICE
        ),
        15,
        "in service",
    )
    on = stack.diag("maintenance", "on", "--json")
    assert on.returncode == 0 and '"service_state": "maintenance"' in on.stdout
    wait_for(
        lambda: registered(stack).service_state == common_pb2.SERVICE_STATE_MAINTENANCE,
        5,
        "maintenance in the Fleet API",
    )
    off = stack.diag("maintenance", "off")
    assert off.returncode == 0 and "in_service" in off.stdout
    wait_for(
        lambda: registered(stack).service_state == common_pb2.SERVICE_STATE_IN_SERVICE,
        5,
        "back in service in the Fleet API",
    )


def test_health_serving_then_not_serving_while_shutting_down(stack: Stack) -> None:
    # A server of its own: the test shuts it down.
    stack.start_server()
    channel = grpc.insecure_channel(f"127.0.0.1:{stack.server_port}")
    # Health is on the TLS port like everything else: use the operator's credentials.
    channel = stack.operator_channel()
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "branchline.v1.TerminalLink", "branchline.v1.Fleet"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    # Every capability of the list is up: reflection lists its services, health serves them.
    served = served_services(channel, 5)
    for service in (
        "branchline.v1.Receipts",
        "branchline.v1.TubeDesk",
        "branchline.v1.Dispatch",
        "branchline.v1.Tasks",
        "branchline.v1.DispatchAdmin",
        "branchline.v1.Calls",
    ):
        assert service in served, served
    for service in served:
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    stack.procs["server"].popen.send_signal(signal.SIGTERM)
    wait_for(
        lambda: (
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
            == health_pb2.HealthCheckResponse.NOT_SERVING
        ),
        2,
        "NOT_SERVING during the drain",
    )
    assert stack.procs["server"].popen.wait(20) == 0


def test_heartbeat_timeout_marks_a_silent_terminal_offline(up: Stack) -> None:
    stack = up
    wait_for(lambda: (t := stack.terminal()) is not None and t.online, 15, "online")
    agent = stack.procs["agent"].popen
    agent.send_signal(signal.SIGSTOP)  # silent, but its TCP connection stays open
    try:
        wait_for(
            lambda: not registered(stack).online,
            stack.heartbeat_timeout + 5,
            "offline after the heartbeat timeout",
        )
    finally:
        agent.send_signal(signal.SIGCONT)
    wait_for(lambda: registered(stack).online, 15, "online again once heartbeats resume")


# long: one server start covers every refusal at the mTLS boundary, in order
def test_mtls_refuses_another_ca_and_impersonation(bare_server: Stack, tmp_path: Path) -> None:
    stack = bare_server
    target = f"127.0.0.1:{stack.server_port}"
    pki = stack.pki

    # A terminal certificate from another CA: the TLS handshake itself fails.
    other = tmp_path / "other-pki"
    subprocess.run(
        [PY, "-m", "branchline.server.main", "pki", "init", str(other), "--terminal", "T-0001"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    foreign = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(other / "terminals" / "T-0001.key").read_bytes(),
        certificate_chain=(other / "terminals" / "T-0001.pem").read_bytes(),
    )
    stub = terminal_link_pb2_grpc.TerminalLinkStub(grpc.secure_channel(target, foreign))
    register = terminal_link_pb2.TerminalMessage(
        seq=1,
        register=terminal_link_pb2.Register(
            terminal_id="T-0001", branch="BR-001", kind=common_pb2.TERMINAL_KIND_SELF_SERVICE
        ),
    )
    with pytest.raises(grpc.RpcError) as refused:
        list(stub.Connect(iter([register]), timeout=10))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

    # T-OTHER's genuine certificate cannot register as T-0001.
    other_terminal = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / "terminals" / "T-OTHER.key").read_bytes(),
        certificate_chain=(pki / "terminals" / "T-OTHER.pem").read_bytes(),
    )
    stub = terminal_link_pb2_grpc.TerminalLinkStub(grpc.secure_channel(target, other_terminal))
    with pytest.raises(grpc.RpcError) as denied:
        list(stub.Connect(iter([register]), timeout=10))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "T-OTHER" in status_details(denied)
    assert stack.terminal("T-0001") is None

    # A terminal may not use the operations API.
    from branchline.v1 import fleet_pb2_grpc

    fleet_as_terminal = fleet_pb2_grpc.FleetStub(grpc.secure_channel(target, other_terminal))
    with pytest.raises(grpc.RpcError) as not_operator:
        fleet_as_terminal.ListTerminals(fleet_pb2.ListTerminalsRequest(), timeout=5)
    assert not_operator.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]

    # A malformed registration names the field.
    own = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / "terminals" / "T-0001.key").read_bytes(),
        certificate_chain=(pki / "terminals" / "T-0001.pem").read_bytes(),
    )
    stub = terminal_link_pb2_grpc.TerminalLinkStub(grpc.secure_channel(target, own))
    bad = terminal_link_pb2.TerminalMessage(
        seq=1,
        register=terminal_link_pb2.Register(
            terminal_id="T-0001", kind=common_pb2.TERMINAL_KIND_SELF_SERVICE
        ),
    )
    with pytest.raises(grpc.RpcError) as invalid:
        list(stub.Connect(iter([bad]), timeout=10))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "register.branch" in status_details(invalid)
    assert violations(invalid) == [("register.branch", "required")]
    # An over-long id: refused as invalid, the field as data, only a short piece echoed.
    too_long = terminal_link_pb2.TerminalMessage(
        seq=1,
        register=terminal_link_pb2.Register(
            terminal_id="T" * 5000, branch="BR-001", kind=common_pb2.TERMINAL_KIND_SELF_SERVICE
        ),
    )
    with pytest.raises(grpc.RpcError) as long_id:
        list(stub.Connect(iter([too_long]), timeout=10))
    assert violations(long_id) == [("register.terminal_id", "too_long")]
    assert "(5000 characters)" in status_details(long_id)
    assert len(status_details(long_id)) < 200

    # The Fleet API: the same for an over-long terminal id, and NOT_FOUND names the field.
    fleet = stack.fleet()
    with pytest.raises(grpc.RpcError) as long_get:
        fleet.GetTerminal(fleet_pb2.GetTerminalRequest(terminal_id="T" * 5000), timeout=5)
    assert status_code(long_get) == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(long_get) == [("terminal_id", "too_long")]
    assert "(5000 characters)" in status_details(long_get)
    assert len(status_details(long_get)) < 200
    with pytest.raises(grpc.RpcError) as unknown:
        fleet.GetTerminal(fleet_pb2.GetTerminalRequest(terminal_id="T-NOPE"), timeout=5)
    assert status_code(unknown) == grpc.StatusCode.NOT_FOUND
    assert violations(unknown) == [("terminal_id", "unknown_terminal")]


def test_agent_with_wrong_certificate_stays_unregistered(bare_server: Stack) -> None:
    stack = bare_server
    stack.start_sim()
    proc = stack.start_agent(cert="T-OTHER")
    try:
        wait_for(lambda: "PERMISSION_DENIED" in proc.log(), 15, "agent logs the refusal")
        assert proc.popen.poll() is None, "the agent keeps running and retrying"
        assert stack.terminal("T-0001") is None and stack.terminal("T-OTHER") is None
    finally:  # the bare server as it was: no agent, no simulator
        proc.stop()
        stack.procs["sim"].stop()


def test_plaintext_only_on_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            PY,
            "-m",
            "branchline.server.main",
            "--listen",
            "0.0.0.0:0",
            "--insecure-loopback",
            "--db",
            f"sqlite:///{tmp_path / 'db.sqlite'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--insecure-loopback" in result.stderr and "loopback" in result.stderr


def test_diag_when_agent_is_not_running(tmp_path: Path) -> None:
    result = subprocess.run(
        [PY, "-m", "branchline.agent.diag", "--socket", str(tmp_path / "agent.sock"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "agent is not running" in result.stderr


def test_second_agent_on_the_same_state_dir_is_refused(up: Stack) -> None:
    stack = up
    wait_for(lambda: agent_printer_status(stack) == "online", 15, "the first agent up")
    second = subprocess.run(
        [PY, "-m", "branchline.agent.main", "--config", str(stack.root / "agent.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert second.returncode == 2
    assert "another agent" in second.stderr
    assert sys.executable


def test_device_command_and_spy_show_the_printer_wire(up: Stack) -> None:
    stack = up
    wait_for(lambda: agent_printer_status(stack) == "online", 15, "printer online")
    spy = subprocess.Popen(
        [
            PY,
            "-m",
            "branchline.agent.diag",
            "--socket",
            str(stack.agent_socket),
            "spy",
            "printer",
            "--seconds",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The spy is attached once it shows the printer's status poll (every 0.5 s).
    assert spy.stdout is not None
    first = spy.stdout.readline()
    assert first.startswith(("tx", "rx")), first
    completion, problem, result = stack.device_command(
        "printer", "print_receipt", title="Statement", lines=["Balance 100.00 CNY"], qr="TX-1"
    )
    assert completion == "success", problem
    assert result["bytes"] > 0
    rest, _ = spy.communicate(timeout=30)
    out = first + rest
    assert "tx  10 04 01" in out  # DLE EOT 1, the real-time status request
    assert "rx  12" in out  # the printer's status byte
    assert "Statement" in out or "Balance" in out

    bad = stack.diag("printer", "print_receipt", "lines=[1]")
    assert bad.returncode == 3
    assert "receipt.lines[0]: expected text" in bad.stdout
    unknown = stack.diag("printer", "fly")
    assert unknown.returncode == 3 and "unknown_command" in unknown.stdout


def test_sd_notify_ready_watchdog_stopping(up: Stack) -> None:
    # Last on the shared stack: its agent is replaced by one under the notify socket, which the
    # test stops (``up`` starts the usual agent again for any test after it).
    stack = up
    notify_path = stack.root / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(15)
    try:
        assert stack.procs["agent"].stop() == 0
        stack.start_agent(env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
        messages: list[str] = []

        def receive_until(predicate: str) -> None:
            while predicate not in messages:
                messages.append(sock.recv(4096).decode().split("\n")[0])

        receive_until("READY=1")
        ready_index = messages.index("READY=1")
        for _ in range(3):
            messages.append(sock.recv(4096).decode().split("\n")[0])
        assert messages[ready_index + 1 :].count("WATCHDOG=1") >= 2
        stack.procs["agent"].popen.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert stack.procs["agent"].popen.wait(20) == 0
    finally:
        sock.close()

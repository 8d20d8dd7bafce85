"""What the PIN, card and tube tests share: the HSM's test keys, the simulator's card and its
PIN, the HSM and server CLIs on a stack's files, and how a person works the simulated card
reader and PIN pad (test_pin_verification.py, test_customer_info.py, test_calls.py,
test_replicas.py, tube_support.py and the browser tests use them)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable

import grpc

from branchline.common.grpc_errors import error_details
from branchline.server.hsm_cli import main as hsm_main
from branchline.server.main import main as server_main
from branchline.sim.devices.card_reader import GATE_CLOSED, NO_CARD_AT_GATE
from branchline.sim.enrol_pin_pad import ENROL_KSN, EnrolmentBlock, enrolment_block
from branchline.v1 import agent_local_pb2, common_pb2, sim_control_pb2
from tests.integration.cli_support import in_process, run_main
from tests.integration.stack import Stack, wait_for

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


def hsm_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``branchline-hsm`` on the stack's soft HSM (run in this process: see cli_support)."""
    result = run_main(
        hsm_main,
        ["--keystore", str(stack.root / "keystore.json"),
         "--master-key-file", str(stack.root / "hsm-master.key"), *args],
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def server_cli(stack: Stack, *args: str, stdin: str | None = None) -> str:
    """``branchline-server`` on the stack's database, in this process; its stdout."""
    return in_process(
        server_main,
        ["--db", f"sqlite:///{stack.root / 'server.db'}",
         "--pan-token-key", str(stack.root / "pan-token.key"), *args],
        stdin,
    )  # fmt: skip


def soft_hsm(stack: Stack) -> tuple[EnrolmentBlock, str]:
    """The soft HSM's master key and keys (BDK, PVK, ZPK) made with the HSM CLI: the bank
    desk's enrolment PIN pad's block for PIN and PAN, and the soft HSM's URL."""
    in_process(hsm_main, ["new-master-key", "--out", str(stack.root / "hsm-master.key")])
    hsm_cli(stack, "import-key", "BDK", "--type", "bdk", "--algorithm", "tdes", "--hex", BDK)
    hsm_cli(stack, "create-key", "PVK", "--type", "pvk", "--algorithm", "tdes")
    hsm_cli(stack, "create-key", "ZPK", "--type", "zpk", "--algorithm", "tdes")
    desk = enrolment_block(desk_pin_pad_key(lambda *a: hsm_cli(stack, *a).stdout), PIN, PAN)
    soft_url = (
        f"soft://{stack.root / 'keystore.json'}?master_key_file={stack.root / 'hsm-master.key'}"
    )
    return desk, soft_url


def customer_session(
    stack: Stack, pin: str, card: str = "visa"
) -> agent_local_pb2.AuthenticateResult:
    """A customer inserts ``card``, types ``pin`` and Enter, and takes the card back."""
    outcome: dict[str, agent_local_pb2.AuthenticateResult] = {}

    def call() -> None:
        outcome["result"] = stack.agent_local().AuthenticateCustomer(
            agent_local_pb2.AuthenticateRequest(
                card_timeout_seconds=20, pin_timeout_seconds=20, eject_after=True
            ),
            timeout=90,
        )

    worker = threading.Thread(target=call)
    worker.start()
    wait_for(lambda: device_busy_with(stack, "card_reader", "accept_card"), 20, "card slot open")
    # The command shows as running a moment before the driver opens the gate: a person
    # simply pushes the card again.
    wait_for(lambda: try_insert(stack, card), 10, "the card reader to take the card")
    wait_for(lambda: pin_entry_active(stack), 30, "PIN entry started")
    stack.sim_act("pin_pad", "press", keys=pin + "E")
    wait_for(
        lambda: device_busy_with(stack, "card_reader", "eject") or not worker.is_alive(),
        30,
        "card ejected",
    )
    # The eject shows as running a moment before the card reaches the gate: a person takes
    # it once it is out.
    wait_for(lambda: try_take(stack, worker), 20, "the card at the gate")
    worker.join(60)
    assert not worker.is_alive()
    return outcome["result"]

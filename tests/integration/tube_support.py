"""A branch with a tube, for issue 6's integration tests: server (SQLite, soft HSM), simulator
and agent as real processes; two customers with cards, accounts in CNY, USD, gold and bills;
a back-office clerk (teller BO-1 with the back_office skill) and one of another branch.

The customer acts through the agent's local TubeCustomer API — the same calls the kiosk page
makes — and the simulator (card, PIN pad, loading and taking carriers); the back office through
the server's TubeDesk with its own certificate, and the simulator's back-office station.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import grpc

from branchline.server import pki
from branchline.server.hsm_cli import main as hsm_main
from branchline.server.main import main as server_main
from branchline.sim.enrol_pin_pad import enrolment_block
from branchline.v1 import agent_local_pb2, common_pb2
from branchline.v1 import dispatch_pb2 as dpb
from branchline.v1 import dispatch_pb2_grpc as dpb_grpc
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc
from tests.integration.cli_support import in_process as in_process  # back_office.py uses it
from tests.integration.launch import Background, server_and_agent
from tests.integration.pin_support import (
    BDK,
    KSN0,
    PAN,
    PIN,
    agent_devices,
    customer_session,
    desk_pin_pad_key,
)
from tests.integration.stack import Stack, wait_for

PAN2 = "5555555555554444"  # the simulator's "magstripe" card: the second customer
CARDS = {"visa": PAN, "magstripe": PAN2}
BRANCH = "BR-001"
OTHER_BRANCH = "BR-002"
CLERK = "BO-1"
OTHER_CLERK = "BO-9"
TRANSACTIONS = """
[transactions]
customer_timeout = {customer}
count_timeout = 60
delivery_timeout = {delivery}
transit_timeout = 6
take_timeout = {take}
poll_seconds = 0.5
send_command_timeout = 30
"""
S = pb.TubeState


def server_cli(stack: Stack, *args: str, stdin: str | None = None) -> str:
    return in_process(
        server_main,
        ["--db", stack.db_url or f"sqlite:///{stack.root / 'server.db'}",
         "--pan-token-key", str(stack.root / "pan-token.key"), *args],
        stdin,
    )  # fmt: skip


def hsm(stack: Stack, *args: str) -> str:
    return in_process(
        hsm_main,
        ["--keystore", str(stack.root / "keystore.json"),
         "--master-key-file", str(stack.root / "hsm-master.key"), *args],
    )  # fmt: skip


def soft_hsm(stack: Stack) -> str:
    return f"soft://{stack.root / 'keystore.json'}?master_key_file={stack.root / 'hsm-master.key'}"


def ledger(stack: Stack, *args: str, stdin: str | None = None) -> str:
    return server_cli(stack, "ledger", *args, stdin=stdin)


def prepare_bank(stack: Stack) -> None:
    """Keys, cards, customers, accounts, opening balances and rates — before the server runs."""
    stack.branch = BRANCH
    in_process(hsm_main, ["new-master-key", "--out", str(stack.root / "hsm-master.key")])
    hsm(stack, "import-key", "BDK", "--type", "bdk", "--algorithm", "tdes", "--hex", BDK)
    hsm(stack, "create-key", "PVK", "--type", "pvk", "--algorithm", "tdes")
    hsm(stack, "create-key", "ZPK", "--type", "zpk", "--algorithm", "tdes")
    desk_key = desk_pin_pad_key(lambda *a: hsm(stack, *a))
    for customer, pan in (("C-1", PAN), ("C-2", PAN2)):
        desk = enrolment_block(desk_key, PIN, pan)
        server_cli(
            stack, "cards", "enroll", "--pan", "-", "--customer", customer,
            "--name", f"Customer {customer}", "--pvk", "PVK", *desk.cli_args(),
            "--hsm", soft_hsm(stack), stdin=pan + "\n",
        )  # fmt: skip
    accounts = (
        ("C-1", "cash", "CNY", "C1-CNY"),
        ("C-1", "cash", "USD", "C1-USD"),
        ("C-1", "metal", "XAU", "C1-XAU"),
        ("C-1", "bills", "CNY", "C1-BILL"),
        ("C-2", "cash", "CNY", "C2-CNY"),
    )
    for customer, kind, currency, account in accounts:
        ledger(
            stack, "open-account", "--customer", customer, "--kind", kind,
            "--currency", currency, "--id", account,
        )  # fmt: skip
        pan = PAN if customer == "C-1" else PAN2
        ledger(stack, "link", "--pan", "-", "--account", account, stdin=pan + "\n")
    for account, currency, amount in (
        ("C1-CNY", "CNY", "5000.00"),
        ("C1-USD", "USD", "300.00"),
        ("C1-XAU", "XAU", "50.000"),
        ("C2-CNY", "CNY", "100.00"),
    ):
        ledger(
            stack, "deposit", "--account", account, "--currency", currency,
            "--amount", amount, "--branch", BRANCH, "--ref", f"opening-{account}",
        )  # fmt: skip
    ledger(stack, "rates", "--set", "USD=7.10:7.20", "XAU=540.50:548.00")


def start_branch(
    stack: Stack,
    *,
    customer_timeout: float = 30,
    delivery_timeout: float = 30,
    take_timeout: float = 8,
    agent_env: dict[str, str] | None = None,
    server_extra: tuple[str, ...] = (),
    agent_extra: str = "",
    required_devices: tuple[str, ...] | None = None,
    extra_devices: tuple[str, ...] = (),
) -> None:
    """``extra_devices``: simulated devices the agent drives besides the card reader, PIN
    pad, printer and tube station (e.g. the cheque sale's); ``agent_extra``: more agent config after [transactions] (e.g. a [kiosk] table);
    ``required_devices``: those whose loss takes the terminal out of service (default all)."""
    # The simulator needs nothing of the bank's: it starts while the bank is set up; the
    # agent starts with the server (it connects once the server listens).
    sim = Background(stack.start_sim)
    prepare_bank(stack)
    pki.issue_user_cert(stack.pki, "teller", CLERK)
    pki.issue_user_cert(stack.pki, "teller", OTHER_CLERK)
    stack.devices = ("card_reader", "pin_pad", "printer", "tube_station", *extra_devices)
    stack.required_devices = stack.devices if required_devices is None else required_devices
    stack.agent_extra = (
        TRANSACTIONS.format(customer=customer_timeout, delivery=delivery_timeout, take=take_timeout)
        + agent_extra
    )

    def agent() -> None:
        stack.sim_act("tube_station", "set_travel_time", seconds="0.6")
        stack.start_agent(env=agent_env)

    server_and_agent(
        stack,
        ["--hsm", soft_hsm(stack), "--pan-token-key", str(stack.root / "pan-token.key"),
         "--rate-poll-seconds", "0.5", *server_extra],
        start_agent=agent,
        after=sim,
    )  # fmt: skip
    admin = dpb_grpc.DispatchAdminStub(stack.operator_channel())
    for branch in (BRANCH, OTHER_BRANCH):
        admin.AddBranch(dpb.AddBranchRequest(branch_id=branch, name=branch), timeout=10)
    for clerk, branch in ((CLERK, BRANCH), (OTHER_CLERK, OTHER_BRANCH)):
        admin.AddTeller(
            dpb.AddTellerRequest(
                teller_id=clerk, name=f"Clerk {clerk}", branch=branch, skills=["back_office"]
            ),
            timeout=10,
        )
    agent_ready(stack)
    initial = json.loads(hsm(stack, "--json", "derive-initial-key", "--bdk", "BDK", "--ksn", KSN0))
    completion, problem, _ = stack.device_command(
        "pin_pad", "load_key", algorithm="tdes", key_hex=initial["initial_key"], ksn_hex=KSN0
    )
    assert completion == "success", problem


def start_agent(stack: Stack, env: dict[str, str] | None = None) -> None:
    stack.start_agent(env=env)
    agent_ready(stack)


def agent_ready(stack: Stack) -> None:
    wait_for(lambda: devices_open(stack), 30, "card reader, PIN pad, printer and tube station open")
    wait_for(lambda: agent_connected(stack), 20, "the agent's link to the server")


def devices_open(stack: Stack) -> bool:
    """Every device answers (busy or reporting a fault counts: its driver is talking to it)."""
    devices = agent_devices(stack)
    closed = (
        common_pb2.DEVICE_STATUS_UNSPECIFIED,
        common_pb2.DEVICE_STATUS_NO_DEVICE,
        common_pb2.DEVICE_STATUS_OFFLINE,
    )
    return len(devices) >= 4 and all(d.status not in closed for d in devices)


def station(stack: Stack) -> common_pb2.Device | None:
    return next((d for d in agent_devices(stack) if d.name == "tube_station"), None)


def station_loaded(stack: Stack) -> bool:
    found = station(stack)
    return found is not None and found.facts.get("state") == "loaded"


def station_online(stack: Stack) -> bool:
    found = station(stack)
    return found is not None and found.status == common_pb2.DEVICE_STATUS_ONLINE


def agent_connected(stack: Stack) -> bool:
    try:
        status = stack.agent_local().GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
    except grpc.RpcError:
        return False
    return bool(status.server_connected)


def tube_rates_version(stack: Stack) -> int:
    """The version of the rates the agent holds (0 before any), from its diag command."""
    return int(json.loads(stack.diag("rates", "--json").stdout).get("version") or 0)


def teller_channel(stack: Stack, teller: str) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(stack.pki / "ca.pem").read_bytes(),
        private_key=(stack.pki / "tellers" / f"{teller}.key").read_bytes(),
        certificate_chain=(stack.pki / "tellers" / f"{teller}.pem").read_bytes(),
    )
    return grpc.secure_channel(f"127.0.0.1:{stack.server_port}", credentials)


def desk(stack: Stack, teller: str = CLERK) -> pb_grpc.TubeDeskStub:
    return pb_grpc.TubeDeskStub(teller_channel(stack, teller))


def tube(stack: Stack) -> pb_grpc.TubeCustomerStub:
    return pb_grpc.TubeCustomerStub(grpc.insecure_channel(f"unix:{stack.agent_socket}"))


def sign_in(stack: Stack, card: str = "visa", pin: str = PIN) -> str:
    """The customer inserts ``card``, types the PIN and takes the card back: a session id."""
    result = customer_session(stack, pin, card)
    assert result.verified, result
    return result.session_id


def asset(kind: str, currency: str, amount: str, bill_id: str = "") -> pb.TubeAsset:
    found = pb.TubeAsset(
        kind=pb.AssetKind.Value(f"ASSET_KIND_{kind.upper()}"),  # type: ignore[arg-type]
        currency=currency,
        amount=amount,
    )
    if bill_id:
        found.bill.bill_id = bill_id
    return found


def watch_until(
    stack: Stack, txn_id: str, done: Callable[[pb.TubeView], bool], timeout: float, what: str
) -> pb.TubeView:
    def look() -> pb.TubeView | None:
        try:
            view = tube(stack).GetTransaction(pb.TubeAction(txn_id=txn_id), timeout=5)
        except grpc.RpcError:
            return None
        return view if done(view) else None

    return cast(pb.TubeView, wait_for(look, timeout, what, interval=0.2))


def at_stage(stack: Stack, txn_id: str, stage: str, timeout: float = 30) -> pb.TubeView:
    return watch_until(stack, txn_id, lambda v: v.stage == stage, timeout, f"stage {stage}")


def finished(stack: Stack, txn_id: str, timeout: float = 60) -> pb.TubeView:
    return watch_until(stack, txn_id, lambda v: v.finished, timeout, "the transaction to end")


def server_record(stack: Stack, txn_id: str, teller: str = CLERK) -> pb.TubeTransaction:
    return desk(stack, teller).GetTransaction(pb.TubeRef(txn_id=txn_id), timeout=10)


def server_state(stack: Stack, txn_id: str, state: int, timeout: float = 30) -> pb.TubeTransaction:
    seen: list[str] = []  # what the server said last, for the failure's message

    def look() -> pb.TubeTransaction | None:
        try:
            record = server_record(stack, txn_id)
        except grpc.RpcError as exc:
            seen[:] = [f"{exc.code().name}: {exc.details()}"]
            return None
        seen[:] = [pb.TubeState.Name(record.state)]
        return record if record.state == state else None

    try:
        return cast(
            pb.TubeTransaction,
            wait_for(look, timeout, f"server state {pb.TubeState.Name(state)}", interval=0.2),
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the server last said {seen}") from None


def balances(stack: Stack, customer: str = "C-1") -> dict[str, Decimal]:
    rows = json.loads(ledger(stack, "balances", "--customer", customer, "--json"))
    listed = rows["accounts"] if isinstance(rows, dict) else rows
    return {row["account_id"]: Decimal(row["balance"]) for row in listed}


def lookup(stack: Stack, reference: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(ledger(stack, "lookup", reference, "--json")))


@dataclass
class Carriers:
    """Carrier numbers, fresh for every use in one test run."""

    next_id: int = 100

    def take(self) -> int:
        self.next_id += 1
        return self.next_id


def send_deposit(stack: Stack, session: str, txn_id: str, carrier: int) -> pb.TubeView:
    """The customer loads the carrier and presses Send; returns once it has left."""
    stack.sim_act("tube_station", "load", carrier_id=str(carrier))
    wait_for(lambda: station_loaded(stack), 10, "the agent to see the loaded carrier")
    view = tube(stack).SendCarrier(pb.TubeAction(session_id=session, txn_id=txn_id), timeout=30)
    return view


def back_office_counts(
    stack: Stack, txn_id: str, counted: pb.TubeAsset, note: str = ""
) -> pb.TubeTransaction:
    """The carrier arrives at the back office, the clerk takes it out and enters the count."""
    server_state(stack, txn_id, S.TUBE_STATE_IN_TRANSIT)
    wait_for(
        lambda: stack.sim_act("tube_station", "status").get("backoffice_state") == "arrived",
        10,
        "the carrier at the back office",
    )
    record = server_record(stack, txn_id)
    desk(stack).ReceiveCarrier(
        pb.CarrierRequest(txn_id=txn_id, carrier_id=record.carrier_id), timeout=10
    )
    stack.sim_act("tube_station", "backoffice_remove")
    return desk(stack).EnterCount(
        pb.CountRequest(txn_id=txn_id, counted=counted, note=note), timeout=10
    )


def back_office_sends(stack: Stack, txn_id: str, carrier: int) -> pb.TubeTransaction:
    """The clerk loads the carrier, records it and sends it to the terminal."""
    record = desk(stack).SendCarrier(
        pb.CarrierRequest(txn_id=txn_id, carrier_id=carrier), timeout=10
    )
    stack.sim_act("tube_station", "backoffice_send", carrier_id=str(carrier))
    return record


def customer_takes(stack: Stack, txn_id: str, stage: str = "arrived") -> None:
    """The door opens; the customer takes the carrier out."""
    at_stage(stack, txn_id, stage)
    wait_for(
        lambda: stack.sim_act("tube_station", "status").get("terminal_door") == "open",
        15,
        "the terminal door to open",
    )
    stack.sim_act("tube_station", "remove")


def tidy_tube(stack: Stack) -> None:
    """Leave both stations empty with doors closed and no fault (between independent cases).

    The agent must be running: the terminal's door is opened through it, as a technician
    would with ``branchline-diag tube_station open_door``."""
    line = stack.sim_act("tube_station", "status")
    if line["backoffice_state"] == "arrived":
        stack.sim_act("tube_station", "backoffice_remove")
    if line["terminal_carrier_id"] != "0":
        stack.device_command("tube_station", "open_door")
        stack.sim_act("tube_station", "remove")
    stack.device_command("tube_station", "close_door")
    if line["terminal_fault"] != "none" or line["backoffice_fault"] != "none":
        stack.device_command("tube_station", "reset_fault")

"""``python -m branchline.sim.customer``: a scripted customer at a simulated terminal.

Its hands are the simulator's (card in, PIN keys, carrier in and out); its eyes and buttons
are the agent's local TubeCustomer API — the calls the kiosk page makes. It signs in with
card and PIN, then does one tube deposit or withdrawal, printing what the terminal shows
and waiting while the back office does its part (``branchline-teller ... tube ...``)::

    python -m branchline.sim.customer --state-dir var/agent deposit --account C1-CNY \\
        --amount 200.00 --carrier 7 --decide confirm
    python -m branchline.sim.customer --state-dir var/agent withdraw --account C1-CNY \\
        --amount 50.00
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from branchline.common.grpc_errors import describe, error_details
from branchline.sim.act import act
from branchline.sim.devices.card_reader import GATE_CLOSED, NO_CARD_AT_GATE
from branchline.v1 import (
    agent_local_pb2,
    agent_local_pb2_grpc,
    sim_control_pb2,
    sim_control_pb2_grpc,
)
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

DECISIONS = {
    "confirm": pb.DECISION_CONFIRM,
    "return": pb.DECISION_DISPUTE_RETURN,
    "teller": pb.DECISION_DISPUTE_TELLER,
}


class Customer:
    def __init__(self, state_dir: Path, run_dir: Path) -> None:
        channel = grpc.insecure_channel(f"unix:{state_dir / 'agent.sock'}")
        self.agent = agent_local_pb2_grpc.AgentLocalStub(channel)
        self.tube = pb_grpc.TubeCustomerStub(channel)
        self.run_dir = run_dir
        self.session = ""

    def _busy_with(self, device: str, command: str) -> bool:
        status = self.agent.GetStatus(agent_local_pb2.GetStatusRequest(), timeout=5)
        return any(d.name == device and d.detail == f"running {command}" for d in status.devices)

    def _until(self, what: str, done: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise SystemExit(f"customer: gave up waiting for {what}")
            time.sleep(0.2)

    def _insert(self, card: str) -> bool:
        try:
            act(self.run_dir, "card_reader", "insert", {"card": card})
        except grpc.RpcError as exc:
            if error_details(exc).reason == GATE_CLOSED:
                return False
            raise
        return True

    def _take(self, worker: threading.Thread) -> bool:
        """Take the card once it is at the gate (True), or see the sign-in end without it."""
        try:
            act(self.run_dir, "card_reader", "take", {})
        except grpc.RpcError as exc:
            if error_details(exc).reason == NO_CARD_AT_GATE:
                return not worker.is_alive()
            raise
        return True

    def _entry_active(self) -> bool:
        with grpc.insecure_channel(f"unix:{self.run_dir / 'control.sock'}") as channel:
            listed = sim_control_pb2_grpc.SimControlStub(channel).ListDevices(
                sim_control_pb2.ListSimDevicesRequest(), timeout=5
            )
        return any(d.name == "pin_pad" and d.facts.get("entry") == "active" for d in listed.devices)

    def sign_in(self, card: str, pin: str) -> None:
        result: dict[str, agent_local_pb2.AuthenticateResult] = {}

        def call() -> None:
            result["r"] = self.agent.AuthenticateCustomer(
                agent_local_pb2.AuthenticateRequest(
                    card_timeout_seconds=30, pin_timeout_seconds=30, eject_after=True
                ),
                timeout=120,
            )

        worker = threading.Thread(target=call)
        worker.start()
        self._until("the card slot", lambda: self._busy_with("card_reader", "accept_card"))
        # The command shows as running a moment before the gate opens: push the card again.
        self._until("the card reader to take the card", lambda: self._insert(card))
        # Keys pressed before the PIN pad starts entry are ignored, as on a real pad.
        self._until("the PIN pad", self._entry_active)
        act(self.run_dir, "pin_pad", "press", {"keys": pin + "E"})
        self._until(
            "the card back",
            lambda: self._busy_with("card_reader", "eject") or not worker.is_alive(),
        )
        # The eject shows as running a moment before the card reaches the gate.
        self._until("the card at the gate", lambda: self._take(worker))
        worker.join(60)
        outcome = result["r"]
        if not outcome.verified:
            raise SystemExit(f"customer: not signed in: {outcome.message or outcome.code}")
        self.session = outcome.session_id
        print(f"signed in as {outcome.pan_masked}")

    def follow(self, txn_id: str, until: Callable[[pb.TubeView], bool]) -> pb.TubeView:
        """Print every change of the transaction until ``until`` holds."""
        shown = ""
        for view in self.tube.Watch(pb.TubeAction(txn_id=txn_id), timeout=3600):
            line = f"[{view.stage}] {view.message}"
            if view.server.counted.amount and view.stage == "counted":
                line += f" — counted {view.server.counted.amount} {view.server.counted.currency}"
            if line != shown:
                print(line, flush=True)
                shown = line
            if until(view) or view.finished:
                return view
        raise SystemExit("customer: the terminal stopped answering")

    def finish(self, view: pb.TubeView) -> int:
        final = self.follow(view.txn_id, lambda v: v.finished)
        print(f"outcome: {final.outcome}; receipt reference {final.receipt_reference}")
        if final.server.balance_after:
            print(
                f"balance after: {final.server.balance_after} {final.server.quote.account_currency}"
            )
        return 0 if final.outcome in ("completed", "returned") else 1


def asset(kind: str, currency: str, amount: str, bill_id: str) -> pb.TubeAsset:
    found = pb.TubeAsset(currency=currency, amount=amount)
    found.kind = pb.AssetKind.Value(f"ASSET_KIND_{kind.upper()}")  # type: ignore[assignment]
    if bill_id:
        found.bill.bill_id = bill_id
    return found


def deposit(customer: Customer, args: argparse.Namespace) -> int:
    view = customer.tube.StartDeposit(
        pb.StartTubeRequest(
            session_id=customer.session,
            account_id=args.account,
            asset=asset(args.kind, args.currency, args.amount, ""),
        ),
        timeout=60,
    )
    if view.finished:
        print(f"refused: {view.code}: {view.message}")
        return 1
    print(f"deposit {view.txn_id}: loading carrier {args.carrier}")
    act(customer.run_dir, "tube_station", "load", {"carrier_id": str(args.carrier)})
    time.sleep(1.0)  # the agent looks at the station every poll_interval
    customer.tube.SendCarrier(
        pb.TubeAction(session_id=customer.session, txn_id=view.txn_id), timeout=60
    )
    print("waiting for the back office to count (branchline-teller ... tube count ...)")
    view = customer.follow(view.txn_id, lambda v: v.stage == "counted")
    if view.stage == "counted":
        customer.tube.Decide(
            pb.DecideRequest(
                session_id=customer.session, txn_id=view.txn_id, decision=DECISIONS[args.decide]
            ),
            timeout=60,
        )
        if args.decide == "return":
            customer.follow(view.txn_id, lambda v: v.stage == "return_arrived")
            take(customer)
    return customer.finish(view)


def take(customer: Customer) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = act(customer.run_dir, "tube_station", "status", {})
        if line.get("terminal_door") == "open" and line.get("terminal_carrier_id") != "0":
            act(customer.run_dir, "tube_station", "remove", {})
            print("took the carrier out")
            return
        time.sleep(0.2)


def withdraw(customer: Customer, args: argparse.Namespace) -> int:
    view = customer.tube.StartWithdrawal(
        pb.StartTubeRequest(
            session_id=customer.session,
            account_id=args.account,
            asset=asset(args.kind, args.currency, args.amount, args.bill_id),
        ),
        timeout=60,
    )
    if view.finished:
        print(f"refused: {view.code}: {view.message}")
        return 1
    print(
        f"withdrawal {view.txn_id} authorised; waiting for the back office to send it "
        "(branchline-teller ... tube send ...)"
    )
    view = customer.follow(view.txn_id, lambda v: v.stage == "arrived")
    if view.stage == "arrived":
        take(customer)
        view = customer.follow(view.txn_id, lambda v: v.stage == "taken")
        customer.tube.ConfirmReceipt(
            pb.TubeAction(session_id=customer.session, txn_id=view.txn_id), timeout=60
        )
    return customer.finish(view)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchline-sim-customer", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path("var/agent"))
    parser.add_argument("--run-dir", type=Path, default=Path("var/sim"))
    parser.add_argument("--card", default="visa", help="a simulator card (default visa)")
    parser.add_argument("--pin", default="1234")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("deposit", "withdraw"):
        p = sub.add_parser(name)
        p.add_argument("--account", required=True)
        p.add_argument("--amount", required=True)
        p.add_argument("--currency", default="CNY")
        p.add_argument("--kind", choices=["cash", "metal", "bill"], default="cash")
        if name == "deposit":
            p.add_argument("--carrier", type=int, default=7)
            p.add_argument("--decide", choices=sorted(DECISIONS), default="confirm")
        else:
            p.add_argument("--bill-id", default="")
    args = parser.parse_args(argv)
    customer = Customer(args.state_dir, args.run_dir)
    try:
        customer.sign_in(args.card, args.pin)
        return deposit(customer, args) if args.command == "deposit" else withdraw(customer, args)
    except grpc.RpcError as exc:
        print(f"customer: {describe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

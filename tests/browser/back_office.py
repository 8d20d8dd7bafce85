"""The back office in the browser tests: ``branchline-teller`` (its ``main``, in process) and
the simulator's back-office tube station."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from branchline.server.teller.main import main as teller_main
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import CLERK, in_process


def teller(stack: Stack, *args: str, who: str = CLERK) -> dict[str, Any]:
    """``branchline-teller --as teller:<who> ... --json`` (the back-office clerk BO-1 unless
    told), run in this process."""
    said = in_process(
        teller_main,
        ["--target", f"127.0.0.1:{stack.server_port}", "--tls-dir", str(stack.pki),
         "--as", f"teller:{who}", *args, "--json"],
    )  # fmt: skip
    return cast(dict[str, Any], json.loads(said))


def open_txns(stack: Stack, state: str) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], teller(stack, "tube", "list", "--state", state)["txns"])


def newest_txn(stack: Stack, state: str, timeout: float = 30) -> dict[str, Any]:
    """The branch's newest transaction in ``state`` (one terminal: the customer's)."""
    found = wait_for(lambda: open_txns(stack, state), timeout, f"a transaction {state}", 0.3)
    return cast(dict[str, Any], found[-1])


def station_status(stack: Stack) -> dict[str, str]:
    return stack.sim_act("tube_station", "status")


def back_office_counts(
    stack: Stack, kind: str, currency: str, amount: str, note: str = ""
) -> dict[str, Any]:
    """The carrier arrives; the clerk takes it out, receives it and enters the count."""
    txn = newest_txn(stack, "in_transit")
    wait_for(
        lambda: station_status(stack).get("backoffice_state") == "arrived",
        20,
        "the carrier at the back office",
    )
    teller(stack, "tube", "receive", txn["txn_id"], "--carrier", str(txn["carrier_id"]))
    stack.sim_act("tube_station", "backoffice_remove")
    args = ["--kind", kind, "--currency", currency, "--amount", amount]
    teller(stack, "tube", "count", txn["txn_id"], *args, *(["--note", note] if note else []))
    return txn


def back_office_sends(stack: Stack, txn_id: str, carrier: int) -> None:
    """The clerk records the carrier and sends it to the terminal."""
    teller(stack, "tube", "send", txn_id, "--carrier", str(carrier))
    stack.sim_act("tube_station", "backoffice_send", carrier_id=str(carrier))


def wait_door_open(stack: Stack, timeout: float = 20) -> None:
    wait_for(
        lambda: station_status(stack).get("terminal_door") == "open",
        timeout,
        "the terminal door to open",
    )


@dataclass
class Carriers:
    next_id: int = 200

    def take(self) -> int:
        self.next_id += 1
        return self.next_id

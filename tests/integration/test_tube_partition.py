"""Issue 6 acceptance: a network partition — the server stopped for a while — in the middle of
tube transactions loses nothing and duplicates nothing once it heals.

A withdrawal's confirmation and a deposit's carrier-sent and confirmation are queued in the
agent's outbox while the server is down (``branchline-diag outbox`` shows them waiting, with
their attempts); when the server comes back on the same address the agent reconnects, the
outbox delivers them in order under their original keys, and each transaction posts once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from branchline.v1 import tube_pb2 as pb
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import (
    S,
    agent_connected,
    asset,
    at_stage,
    back_office_counts,
    back_office_sends,
    balances,
    customer_takes,
    finished,
    lookup,
    send_deposit,
    server_state,
    sign_in,
    soft_hsm,
    start_branch,
    tube,
)

NO_DRAIN = ("--shutdown-drain", "0")


@pytest.fixture
def branch(tmp_path: Path) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    try:
        # No load balancer in front: a stopped server is gone at once (no drain period).
        start_branch(stack, customer_timeout=60, server_extra=NO_DRAIN)
        yield stack
    finally:
        stack.stop_all()
        for proc in stack.procs.values():
            (tmp_path / proc.log_path.name).write_text(proc.log())
        shutil.rmtree(root, ignore_errors=True)


def partition(stack: Stack) -> None:
    stack.procs["server"].stop()
    wait_for(lambda: not agent_connected(stack), 20, "the agent to notice the server is gone")


def heal(stack: Stack) -> None:
    port = stack.server_port
    stack.start_server(
        extra=[
            "--hsm", soft_hsm(stack), "--pan-token-key", str(stack.root / "pan-token.key"),
            "--rate-poll-seconds", "0.5", *NO_DRAIN, "--listen", f"127.0.0.1:{port}",
        ]
    )  # fmt: skip
    assert stack.server_port == port
    wait_for(lambda: agent_connected(stack), 40, "the agent to reconnect")


def waiting_in_outbox(stack: Stack) -> dict[str, object]:
    outbox: dict[str, object] = json.loads(stack.diag("outbox", "--json").stdout)
    return outbox


# long: one end-to-end scenario, step by step, over one stack of processes
@pytest.mark.timeout(300)
def test_partition_during_transactions_loses_and_duplicates_nothing(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)

    # A withdrawal: delivered and taken; the customer confirms while the server is away.
    start = tube(stack).StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "150.00")
        ),
        timeout=30,
    )
    server_state(stack, start.txn_id, S.TUBE_STATE_OPEN)
    back_office_sends(stack, start.txn_id, 901)
    customer_takes(stack, start.txn_id)
    at_stage(stack, start.txn_id, "taken")
    partition(stack)
    view = tube(stack).ConfirmReceipt(
        pb.TubeAction(session_id=session, txn_id=start.txn_id), timeout=30
    )
    assert view.stage == "capturing" and not view.finished
    waiting = wait_for(
        lambda: (o := waiting_in_outbox(stack))["pending"] == 1 and o, 10, "the confirmation queued"
    )
    message = waiting["messages"][0]  # type: ignore[index]
    assert message["kind"] == "tube_event"
    wait_for(
        lambda: waiting_in_outbox(stack)["messages"][0]["attempts"] >= 1,  # type: ignore[index]
        20,
        "a failed attempt to be counted",
    )
    heal(stack)
    done = finished(stack, start.txn_id)
    assert done.outcome == "completed"
    assert len(lookup(stack, done.receipt_reference)["entries"]) == 1

    # A deposit: the carrier leaves while the server is away; later the confirmation too.
    start = tube(stack).StartDeposit(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "700.00")
        ),
        timeout=30,
    )
    assert start.stage == "awaiting_carrier"
    partition(stack)
    send_deposit(stack, session, start.txn_id, 902)
    at_stage(stack, start.txn_id, "sent")
    assert waiting_in_outbox(stack)["pending"] == 1
    heal(stack)
    back_office_counts(stack, start.txn_id, asset("cash", "CNY", "700.00"))
    at_stage(stack, start.txn_id, "counted")
    partition(stack)
    tube(stack).Decide(
        pb.DecideRequest(session_id=session, txn_id=start.txn_id, decision=pb.DECISION_CONFIRM),
        timeout=30,
    )
    at_stage(stack, start.txn_id, "confirming")
    assert waiting_in_outbox(stack)["pending"] == 1
    heal(stack)
    done = finished(stack, start.txn_id)
    assert done.outcome == "completed"
    assert len(lookup(stack, done.receipt_reference)["entries"]) == 1

    after = balances(stack)
    assert after["C1-CNY"] - before["C1-CNY"] == Decimal("550.00")
    assert waiting_in_outbox(stack)["pending"] == 0
    assert stack.diag("journal", "verify").returncode == 0

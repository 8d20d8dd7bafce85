"""Issue 6 acceptance: tube deposits and withdrawals through real processes.

Server (SQLite, soft HSM), simulator and agent run as processes; the customer acts through
the agent's TubeCustomer API and the simulated card reader, PIN pad and tube station; the
back office through TubeDesk (its own teller certificate) and the simulator's back-office
station. Every asset type both ways, FX at the rate shown, disputes, a lost carrier, a
customer who walks away, and bad inputs refused by name. Balances are read from the ledger
with the server's CLI; receipts are read back from the simulator's printer as PNG.

One branch per test worker (module fixture): each test checks balances relative to before.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import cast

import grpc
import pytest
import zxingcpp
from PIL import Image

from branchline.v1 import tube_pb2 as pb
from tests.integration.stack import Stack, wait_for
from tests.integration.tube_support import (
    OTHER_CLERK,
    PAN,
    PAN2,
    Carriers,
    S,
    asset,
    at_stage,
    back_office_counts,
    back_office_sends,
    balances,
    customer_takes,
    desk,
    finished,
    ledger,
    lookup,
    send_deposit,
    server_record,
    server_state,
    sign_in,
    start_branch,
    station_online,
    tube,
    tube_rates_version,
)

CARRIERS = Carriers()


@pytest.fixture(scope="module")
def branch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="bl-", dir="/tmp"))
    stack = Stack(root)
    stack.init_pki()
    try:
        start_branch(stack, customer_timeout=12, take_timeout=8)
        yield stack
    finally:
        stack.stop_all()
        logs = tmp_path_factory.mktemp("tube-logs")
        for proc in stack.procs.values():
            (logs / proc.log_path.name).write_text(proc.log())
        for proc in stack.procs.values():
            assert PAN not in proc.log(), f"{proc.name}'s log holds a full card number"
            assert PAN2 not in proc.log(), f"{proc.name}'s log holds a full card number"
        shutil.rmtree(root, ignore_errors=True)


def start_deposit(stack: Stack, session: str, account: str, item: pb.TubeAsset) -> pb.TubeView:
    view = tube(stack).StartDeposit(
        pb.StartTubeRequest(session_id=session, account_id=account, asset=item), timeout=30
    )
    assert view.stage == "awaiting_carrier", view
    assert view.next == pb.CUSTOMER_STEP_LOAD_CARRIER
    return view


def deposit_until_counted(
    stack: Stack, session: str, account: str, declared: pb.TubeAsset, counted: pb.TubeAsset
) -> pb.TubeView:
    view = start_deposit(stack, session, account, declared)
    carrier = CARRIERS.take()
    send_deposit(stack, session, view.txn_id, carrier)
    back_office_counts(stack, view.txn_id, counted, note="counted twice")
    shown = at_stage(stack, view.txn_id, "counted")
    assert shown.next == pb.CUSTOMER_STEP_DECIDE
    assert shown.server.counted.amount == counted.amount
    assert shown.server.carrier_id == carrier
    return shown


def decide(stack: Stack, session: str, txn_id: str, decision: int) -> pb.TubeView:
    return tube(stack).Decide(
        pb.DecideRequest(session_id=session, txn_id=txn_id, decision=decision),  # type: ignore[arg-type]
        timeout=30,
    )


def last_receipt_qr(stack: Stack, after: set[Path]) -> str:
    def new_png() -> Path | None:
        found = sorted(set((stack.sim_dir / "printer").glob("receipt-*.png")) - after)
        return found[-1] if found else None

    png = cast(Path, wait_for(new_png, 20, "the receipt to print"))
    texts = wait_for(lambda: [r.text for r in zxingcpp.read_barcodes(Image.open(png))], 5, "QR")
    return cast(str, texts[0])


def printed(stack: Stack) -> set[Path]:
    return set((stack.sim_dir / "printer").glob("receipt-*.png"))


def entries_of(stack: Stack, reference: str) -> list[dict[str, object]]:
    found = lookup(stack, reference)
    return cast(list[dict[str, object]], found["entries"])


def test_cash_deposit_confirmed_posts_once_with_a_receipt(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    receipts = printed(stack)
    session = sign_in(stack)
    shown = deposit_until_counted(
        stack, session, "C1-CNY", asset("cash", "CNY", "800.00"), asset("cash", "CNY", "750.00")
    )
    assert shown.server.requested.amount == "800.00"
    done = decide(stack, session, shown.txn_id, pb.DECISION_CONFIRM)
    done = finished(stack, shown.txn_id)
    assert done.outcome == "completed", done
    assert done.server.state == S.TUBE_STATE_POSTED and done.server.entry_id
    after = balances(stack)
    assert after["C1-CNY"] - before["C1-CNY"] == Decimal("750.00")
    assert done.server.balance_after == str(after["C1-CNY"])
    # The receipt's QR code is the reference that finds the one posting.
    reference = last_receipt_qr(stack, receipts)
    assert reference == done.receipt_reference == f"BLTX:{stack.terminal_id}:{shown.txn_id}"
    entries = entries_of(stack, reference)
    assert len(entries) == 1 and entries[0]["entry_id"] == done.server.entry_id
    # The terminal's own records: nothing waits in the outbox, the e-journal verifies and
    # tells the story.
    outbox = json.loads(stack.diag("outbox", "--json").stdout)
    assert outbox["pending"] == 0
    assert stack.diag("journal", "verify").returncode == 0
    journal = json.loads(stack.diag("journal", "show", "--json").stdout)
    entries_shown = journal["entries"] if isinstance(journal, dict) else journal
    kinds = [e["kind"] for e in entries_shown if e["fields"].get("txn") == shown.txn_id]
    assert kinds[0] == "tube_deposit_started" and kinds[-1] == "tube_completed"
    assert "tube_posted" in kinds and "tube_customer_confirmed" in kinds


def test_foreign_currency_deposit_and_withdrawal_post_at_the_rate_shown(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    shown = deposit_until_counted(
        stack, session, "C1-CNY", asset("cash", "USD", "100.00"), asset("cash", "USD", "100.00")
    )
    version = shown.server.quote.rate_version
    assert version and shown.server.quote.rate == "7.1"  # USD bid at open
    # New rates while the customer looks at the count: the posting keeps the quoted ones.
    ledger(stack, "rates", "--set", "USD=6.50:6.60", "XAU=540.50:548.00")
    decide(stack, session, shown.txn_id, pb.DECISION_CONFIRM)
    done = finished(stack, shown.txn_id)
    assert done.outcome == "completed"
    after = balances(stack)
    assert after["C1-CNY"] - before["C1-CNY"] == Decimal("710.00")

    # A USD withdrawal from the CNY account: debited at the ask the terminal showed.
    wait_for(lambda: tube_rates_version(stack) > version, 10, "the new rates at the terminal")
    start = tube(stack).StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "USD", "50.00")
        ),
        timeout=30,
    )
    assert start.stage == "awaiting_delivery", start
    assert start.server.quote.rate == "6.6" and start.server.quote.account_amount == "330.00"
    ledger(stack, "rates", "--set", "USD=7.00:7.30", "XAU=540.50:548.00")
    deliver_withdrawal(stack, session, start.txn_id)
    assert balances(stack)["C1-CNY"] - after["C1-CNY"] == Decimal("-330.00")


def deliver_withdrawal(stack: Stack, session: str, txn_id: str) -> pb.TubeView:
    server_state(stack, txn_id, S.TUBE_STATE_OPEN)
    carrier = CARRIERS.take()
    back_office_sends(stack, txn_id, carrier)
    customer_takes(stack, txn_id)
    at_stage(stack, txn_id, "taken")
    tube(stack).ConfirmReceipt(pb.TubeAction(session_id=session, txn_id=txn_id), timeout=30)
    done = finished(stack, txn_id)
    assert done.outcome == "completed", done
    assert done.server.state == S.TUBE_STATE_POSTED and done.server.carrier_id == carrier
    return done


def test_metal_and_bill_deposits_and_withdrawals(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    gold = deposit_until_counted(
        stack, session, "C1-XAU", asset("metal", "XAU", "12.500"), asset("metal", "XAU", "12.480")
    )
    decide(stack, session, gold.txn_id, pb.DECISION_CONFIRM)
    assert finished(stack, gold.txn_id).outcome == "completed"

    bill = pb.TubeAsset()
    bill.CopyFrom(asset("bill", "CNY", "100000.00"))
    counted = pb.TubeAsset()
    counted.CopyFrom(bill)
    counted.bill.CopyFrom(
        pb.BillInfo(bill_id="BA-2027-0001", instrument="bank_acceptance", maturity="2027-06-30")
    )
    shown = deposit_until_counted(stack, session, "C1-BILL", bill, counted)
    decide(stack, session, shown.txn_id, pb.DECISION_CONFIRM)
    assert finished(stack, shown.txn_id).outcome == "completed"
    after = balances(stack)
    assert after["C1-XAU"] - before["C1-XAU"] == Decimal("12.480")
    assert after["C1-BILL"] - before["C1-BILL"] == Decimal("100000.00")

    for account, item in (
        ("C1-XAU", asset("metal", "XAU", "2.000")),
        ("C1-BILL", asset("bill", "CNY", "100000.00", bill_id="BA-2027-0001")),
    ):
        start = tube(stack).StartWithdrawal(
            pb.StartTubeRequest(session_id=session, account_id=account, asset=item), timeout=30
        )
        assert start.stage == "awaiting_delivery", start
        deliver_withdrawal(stack, session, start.txn_id)
    final = balances(stack)
    assert final["C1-XAU"] - after["C1-XAU"] == Decimal("-2.000")
    assert final["C1-BILL"] == before["C1-BILL"]


def test_disputed_deposit_comes_back_and_nothing_is_posted(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    shown = deposit_until_counted(
        stack, session, "C1-CNY", asset("cash", "CNY", "500.00"), asset("cash", "CNY", "300.00")
    )
    decide(stack, session, shown.txn_id, pb.DECISION_DISPUTE_RETURN)
    server_state(stack, shown.txn_id, S.TUBE_STATE_DISPUTED)
    at_stage(stack, shown.txn_id, "awaiting_return")
    # The clerk sends the same carrier back.
    carrier = server_record(stack, shown.txn_id).carrier_id
    desk(stack).SendCarrier(pb.CarrierRequest(txn_id=shown.txn_id, carrier_id=carrier), timeout=10)
    stack.sim_act("tube_station", "backoffice_send", carrier_id=str(carrier))
    customer_takes(stack, shown.txn_id, stage="return_arrived")
    done = finished(stack, shown.txn_id)
    assert done.outcome == "returned" and done.server.state == S.TUBE_STATE_RETURNED
    assert balances(stack) == before
    assert entries_of(stack, done.receipt_reference) == []


def test_dispute_for_a_teller_and_a_walk_away_are_handed_over_with_incidents(
    branch: Stack,
) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    shown = deposit_until_counted(
        stack, session, "C1-CNY", asset("cash", "CNY", "200.00"), asset("cash", "CNY", "190.00")
    )
    decide(stack, session, shown.txn_id, pb.DECISION_DISPUTE_TELLER)
    done = finished(stack, shown.txn_id)
    assert done.outcome == "handed_to_teller"
    assert done.server.state == S.TUBE_STATE_HANDED_TO_TELLER and done.server.incident_id

    # The customer leaves while the count is on the screen.
    walked = deposit_until_counted(
        stack, session, "C1-CNY", asset("cash", "CNY", "60.00"), asset("cash", "CNY", "60.00")
    )
    done = finished(stack, walked.txn_id, timeout=40)
    assert done.outcome == "handed_to_teller"
    incidents = desk(stack).ListIncidents(pb.ListIncidentsRequest(), timeout=10).incidents
    kinds = {i.txn_id: i.kind for i in incidents}
    assert kinds[shown.txn_id] == "dispute" and kinds[walked.txn_id] == "walked_away"
    assert balances(stack) == before


def test_withdrawal_delivered_posts_once(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    start = tube(stack).StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "400.00")
        ),
        timeout=30,
    )
    assert start.server.hold_id
    assert Decimal(start.server.available_after) == before["C1-CNY"] - Decimal("400.00")
    done = deliver_withdrawal(stack, session, start.txn_id)
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == Decimal("-400.00")
    assert len(entries_of(stack, done.receipt_reference)) == 1


def test_lost_carrier_and_untaken_carrier_are_reversed_exactly_once(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    # Lost in the tube: the terminal's transit limit runs out; the hold is released.
    start = tube(stack).StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "250.00")
        ),
        timeout=30,
    )
    server_state(stack, start.txn_id, S.TUBE_STATE_OPEN)
    stack.sim_fault("tube_station", "carrier_lost", True)
    try:
        back_office_sends(stack, start.txn_id, CARRIERS.take())
        done = finished(stack, start.txn_id, timeout=60)
    finally:
        stack.sim_fault("tube_station", "carrier_lost", False)
        stack.diag("tube_station", "reset_fault")
    assert done.outcome == "reversed", done
    assert done.server.state == S.TUBE_STATE_REVERSED and done.server.incident_id
    record = lookup(stack, done.receipt_reference)
    assert record["entries"] == []
    assert [h["status"] for h in record["holds"]] == ["released"]

    # Arrived, the door opened, nobody took it: reversed too, the carrier stays locked in.
    wait_for(lambda: station_online(stack), 15, "the station back online")
    start = tube(stack).StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "120.00")
        ),
        timeout=30,
    )
    server_state(stack, start.txn_id, S.TUBE_STATE_OPEN)
    back_office_sends(stack, start.txn_id, CARRIERS.take())
    at_stage(stack, start.txn_id, "arrived")
    done = finished(stack, start.txn_id, timeout=40)
    assert done.outcome == "reversed" and done.server.reason == "not_taken"
    assert balances(stack) == before
    kinds = {
        i.txn_id: i.kind
        for i in desk(stack).ListIncidents(pb.ListIncidentsRequest(), timeout=10).incidents
    }
    assert kinds[start.txn_id] == "not_taken"
    # The clerk collects the carrier from the terminal; the station is free again.
    stack.sim_act("tube_station", "status")
    stack.device_command("tube_station", "open_door")
    stack.sim_act("tube_station", "remove")
    stack.device_command("tube_station", "close_door")


def refused(call: object) -> tuple[grpc.StatusCode, str]:
    error = cast(grpc.Call, call)
    return error.code(), error.details() or ""


# long: one end-to-end scenario, step by step, over one stack of processes
def test_bad_inputs_are_refused_by_name(branch: Stack) -> None:
    stack = branch
    before = balances(stack)
    session = sign_in(stack)
    client = tube(stack)

    def start(kind: str, account: str, item: pb.TubeAsset) -> tuple[grpc.StatusCode, str]:
        request = pb.StartTubeRequest(session_id=session, account_id=account, asset=item)
        method = client.StartDeposit if kind == "deposit" else client.StartWithdrawal
        with pytest.raises(grpc.RpcError) as caught:
            method(request, timeout=30)
        return refused(caught.value)

    assert start("deposit", "C1-CNY", asset("cash", "CNY", "-5")) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "negative_amount: asset.amount: -5 is negative",
    )
    code, text = start("deposit", "C1-CNY", asset("cash", "CNY", "abc"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "asset.amount" in text
    code, text = start("deposit", "C1-CNY", asset("cash", "ZZZ", "10"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and text.startswith("unknown_currency:")
    code, text = start("deposit", "C2-CNY", asset("cash", "CNY", "10"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and text.startswith("not_your_account:")
    code, text = start("deposit", "C1-XAU", asset("cash", "CNY", "10"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "account_id" in text

    # Absurd amounts and over-balance withdrawals are the bank's to refuse: the view says why.
    absurd = client.StartDeposit(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "9" * 12)
        ),
        timeout=30,
    )
    assert absurd.finished and absurd.outcome == "canceled"
    assert absurd.code == "amount_over_limit" and "asset.amount" in absurd.message
    over = client.StartWithdrawal(
        pb.StartTubeRequest(
            session_id=session, account_id="C1-CNY", asset=asset("cash", "CNY", "999999.00")
        ),
        timeout=30,
    )
    assert over.finished and over.code == "insufficient_funds", over
    assert "amount over balance" in over.message

    # Another customer may not confirm or send this customer's transaction.
    shown = deposit_until_counted(
        stack, session, "C1-CNY", asset("cash", "CNY", "10.00"), asset("cash", "CNY", "10.00")
    )
    other = sign_in(stack, card="magstripe")
    with pytest.raises(grpc.RpcError) as caught:
        decide(stack, other, shown.txn_id, pb.DECISION_CONFIRM)
    assert refused(caught.value) == (
        grpc.StatusCode.PERMISSION_DENIED,
        f"not_your_transaction: txn_id: transaction {shown.txn_id} belongs to another customer",
    )
    with pytest.raises(grpc.RpcError) as caught:
        decide(stack, session, shown.txn_id, 0)
    assert refused(caught.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        client.ConfirmReceipt(pb.TubeAction(session_id=session, txn_id=shown.txn_id), timeout=10)
    code, text = refused(caught.value)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and text.startswith("wrong_stage:")
    # The back office of another branch cannot touch it either.
    with pytest.raises(grpc.RpcError) as caught:
        desk(stack, OTHER_CLERK).GetTransaction(pb.TubeRef(txn_id=shown.txn_id), timeout=10)
    assert refused(caught.value)[0] == grpc.StatusCode.PERMISSION_DENIED
    decide(stack, session, shown.txn_id, pb.DECISION_CONFIRM)
    assert finished(stack, shown.txn_id).outcome == "completed"
    assert balances(stack)["C1-CNY"] - before["C1-CNY"] == Decimal("10.00")

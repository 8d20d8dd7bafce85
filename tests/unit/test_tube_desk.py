"""TubeDesk over gRPC with certificates (the dev PKI): who may (tellers with the back_office
skill, their own branch), statuses naming the rule or the field, Watch tailing the branch's
events; and ``branchline-teller tube ...`` against the same server, human and --json."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from branchline.common.grpc_errors import error_details
from branchline.server.teller.main import main as teller_main
from branchline.v1 import tube_pb2 as pb
from tests.unit.tube_desk_support import Desk, desk, sent_deposit
from tests.unit.tube_support import (
    PAN_MASKED,
    SESSIONS,
    WITHDRAWAL,
    Clock,
    cash,
    tube_event,
    tube_open,
)

__all__ = ["desk"]  # the module-scoped server fixture (tube_desk_support)

pytestmark = pytest.mark.timeout(120)


def status(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), error.details() or ""


def test_roles_branches_and_statuses(desk: Desk) -> None:
    sent_deposit(desk, "DESK-1")
    bo1 = desk.stub("teller:BO-1")
    listed = bo1.ListTransactions(pb.ListTubeRequest())
    assert "DESK-1" in [t.txn_id for t in listed.txns]
    ref = pb.TubeRef(txn_id="DESK-1")
    assert status(lambda: desk.stub("teller:BO-2").GetTransaction(ref)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "tube transactions of branch BR-1 are handled by its own back office; "
        "teller BO-2 is of BR-2",
    )
    assert status(lambda: desk.stub("teller:T-9").GetTransaction(ref)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "TubeDesk is for tellers with the back_office skill; teller T-9 does not have it",
    )
    for who in ("operator:ops", "lobby:L1", "terminal:K-1"):
        code, message = status(
            lambda who=who: desk.stub(who).ListIncidents(pb.ListIncidentsRequest())
        )
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert message.startswith(
            "TubeDesk is for tellers with the back_office skill; the caller is"
        )
    assert status(lambda: bo1.GetTransaction(pb.TubeRef(txn_id="NOPE"))) == (
        grpc.StatusCode.NOT_FOUND,
        "txn_id: no tube transaction 'NOPE'",
    )
    code, message = status(
        lambda: bo1.EnterCount(pb.CountRequest(txn_id="DESK-1", counted=cash("-5")))
    )
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "counted.amount: -5 is negative")
    code, message = status(lambda: bo1.ListTransactions(pb.ListTubeRequest(states=[99])))  # type: ignore[list-item]
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "states[0]: unknown state 99")
    code, message = status(
        lambda: bo1.SendCarrier(pb.CarrierRequest(txn_id="DESK-1", carrier_id=3))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert message == "SendCarrier is not possible for deposit DESK-1 in state in_transit"
    received = bo1.ReceiveCarrier(pb.CarrierRequest(txn_id="DESK-1", carrier_id=17))
    assert received.state == pb.TUBE_STATE_RECEIVED


def _refused(call: Any) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_refusals_carry_the_field_and_the_reason_as_details(desk: Desk) -> None:
    sent_deposit(desk, "DET-1", carrier=41)
    bo1 = desk.stub("teller:BO-1")
    # A malformed request: a google.rpc.BadRequest whose violation names the field.
    error = _refused(lambda: bo1.EnterCount(pb.CountRequest(txn_id="DET-1", counted=cash("-5"))))
    status = rpc_status.from_call(error)
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert [(f.field, f.reason) for f in bad.field_violations] == [
        ("counted.amount", "negative_amount")
    ]
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
    assert (info.domain, info.reason) == ("branchline", "negative_amount")
    # An over-long id: INVALID_ARGUMENT naming it, the echo cut short.
    long_id = "T" * 5000
    error = _refused(lambda: bo1.GetTransaction(pb.TubeRef(txn_id=long_id)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = error.details() or ""
    assert len(message) < 200 and "5000 characters" in message and long_id not in message
    details = error_details(error)
    assert (details.field, details.reason) == ("txn_id", "too_long")
    error = _refused(
        lambda: bo1.EnterCount(
            pb.CountRequest(txn_id="DET-1", counted=cash("490"), note="n" * 5000)
        )
    )
    assert (error_details(error).field, error_details(error).reason) == ("note", "too_long")
    assert len(error.details() or "") < 200
    # A refused caller: ErrorInfo names the rule; a wrong state names the reason.
    error = _refused(lambda: desk.stub("teller:BO-2").GetTransaction(pb.TubeRef(txn_id="DET-1")))
    assert (error_details(error).status, error_details(error).reason) == (
        "PERMISSION_DENIED",
        "own_branch_only",
    )
    error = _refused(lambda: desk.stub("teller:T-9").GetTransaction(pb.TubeRef(txn_id="DET-1")))
    assert error_details(error).reason == "back_office_skill"
    error = _refused(lambda: bo1.SendCarrier(pb.CarrierRequest(txn_id="DET-1", carrier_id=3)))
    assert (error_details(error).status, error_details(error).reason) == (
        "FAILED_PRECONDITION",
        "wrong_state",
    )
    error = _refused(lambda: bo1.ListTransactions(pb.ListTubeRequest(states=[99])))  # type: ignore[list-item]
    assert error_details(error).field == "states[0]"


def test_watch_tails_only_the_callers_branch(desk: Desk) -> None:
    sent_deposit(desk, "WATCH-9", terminal="K-9", carrier=90)
    sent_deposit(desk, "WATCH-1", carrier=91)
    bo1 = desk.stub("teller:BO-1")
    stream = bo1.Watch(pb.WatchTubeRequest(after_id=0), timeout=10)
    seen: list[pb.TubeEventRecord] = []
    for event in stream:
        seen.append(event)
        if event.txn_id == "WATCH-1" and event.event == "carrier_sent":
            break
    stream.cancel()
    assert {e.branch for e in seen} == {"BR-1"} and "WATCH-9" not in {e.txn_id for e in seen}
    ids = [e.event_id for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Resume after the last one seen: the next change, as it happens.
    stream = bo1.Watch(pb.WatchTubeRequest(after_id=ids[-1]), timeout=10)
    bo1.ReceiveCarrier(pb.CarrierRequest(txn_id="WATCH-1", carrier_id=91))
    nxt = next(iter(stream))
    stream.cancel()
    assert (nxt.txn_id, nxt.event, nxt.actor, nxt.state) == (
        "WATCH-1",
        "received",
        "teller:BO-1",
        pb.TUBE_STATE_RECEIVED,
    )
    bo2 = desk.stub("teller:BO-2")
    stream = bo2.Watch(pb.WatchTubeRequest(after_id=0), timeout=10)
    first = next(iter(stream))
    stream.cancel()
    assert (first.txn_id, first.branch) == ("WATCH-9", "BR-2")
    assert status(lambda: next(iter(bo1.Watch(pb.WatchTubeRequest(after_id=-1), timeout=5)))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "after_id: must not be negative",
    )


def _run_cli(
    desk: Desk, capsys: pytest.CaptureFixture[str], who: str, *args: str
) -> tuple[int, str]:
    code = teller_main(desk.cli(who, *args))
    return code, capsys.readouterr().out


# long: one end-to-end scenario, step by step, over one stack of processes
def test_the_back_office_cli(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    sent_deposit(desk, "CLI-1", carrier=23)
    code, out = _run_cli(
        desk, capsys, "teller:BO-1", "receive", "CLI-1", "--carrier", "24", "--json"
    )
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and "sent in carrier 23, not 24" in error["message"]
    code, out = _run_cli(
        desk, capsys, "teller:BO-1", "receive", "CLI-1", "--carrier", "23", "--json"
    )
    assert code == 0 and json.loads(out)["state"] == "TUBE_STATE_RECEIVED"
    code, out = _run_cli(
        desk,
        capsys,
        "teller:BO-1",
        "count",
        "CLI-1",
        "--kind",
        "cash",
        "--currency",
        "CNY",
        "--amount",
        "490.00",
        "--note",
        "one note torn",
    )
    assert code == 0
    assert "deposit CLI-1: COUNTED" in out and "counted       490.00 CNY cash" in out
    assert PAN_MASKED in out and "carrier       23" in out and "note          one note torn" in out
    code, out = _run_cli(desk, capsys, "teller:BO-1", "list", "--state", "counted", "--json")
    listed = json.loads(out)["txns"]
    assert code == 0 and "CLI-1" in [t["txn_id"] for t in listed]
    code, out = _run_cli(desk, capsys, "teller:BO-1", "list")
    line = next(line for line in out.splitlines() if line.startswith("CLI-1"))
    assert (
        "COUNTED" in line and "490.00 CNY cash (declared 500.00)" in line and "customer c1" in line
    )
    code, out = _run_cli(desk, capsys, "teller:BO-1", "show", "CLI-1", "--json")
    shown = json.loads(out)
    assert (shown["counted"]["amount"], shown["pan_masked"]) == ("490.00", PAN_MASKED)
    # A withdrawal goes out; a lost carrier becomes an incident the clerk resolves.
    session = SESSIONS.issue("K-1", "card-token-c1", "c1", Clock()())
    opened = desk.svc.handle_open(
        "K-1", tube_open(WITHDRAWAL, desk.books.cash, cash("20"), "CLI-2", session=session)
    )
    assert opened.code == ""
    code, out = _run_cli(desk, capsys, "teller:BO-1", "send", "CLI-2", "--carrier", "31")
    assert code == 0 and "withdrawal CLI-2: DISPATCHED" in out
    lost = desk.svc.handle_event(
        "K-1", tube_event("CLI-2", pb.TUBE_EVENT_REVERSE, "cli-r", reason="carrier_lost")
    )
    assert lost.txn.state == pb.TUBE_STATE_REVERSED
    code, out = _run_cli(desk, capsys, "teller:BO-1", "incidents", "--json")
    incidents = json.loads(out)["incidents"]
    mine = next(i for i in incidents if i["txn_id"] == "CLI-2")
    assert mine["kind"] == "carrier_lost"
    code, out = _run_cli(
        desk,
        capsys,
        "teller:BO-1",
        "resolve",
        str(mine["incident_id"]),
        "--resolution",
        "found in the tube",
    )
    assert code == 0 and "RESOLVED" in out and "teller:BO-1: found in the tube" in out
    code, out = _run_cli(desk, capsys, "teller:BO-1", "watch", "--count", "2", "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [e["event"] for e in events] == ["open", "carrier_sent"]
    code, out = _run_cli(desk, capsys, "teller:T-9", "list")
    assert code == 1
    with pytest.raises(SystemExit) as usage:  # incident ids start at 1
        _run_cli(desk, capsys, "teller:BO-1", "resolve", "0", "--resolution", "x")
    assert usage.value.code == 2 and "not between 1 and" in capsys.readouterr().err

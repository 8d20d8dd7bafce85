"""TubeDesk.SearchHistory over gRPC with certificates: the back office finds its branch's
transactions (final ones included) by receipt reference, terminal, customer and date; other
branches' transactions stay out; bad filters are refused naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from branchline.common.grpc_errors import error_details
from branchline.v1 import tube_pb2 as pb
from tests.unit.tube_desk_support import Desk, desk, sent_deposit

__all__ = [
    "desk"
]  # the module-scoped server fixture, shared with test_tube_desk (tube_desk_support)

pytestmark = pytest.mark.timeout(120)


def refused(call: Any) -> Any:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return error_details(caught.value)


def ids(found: pb.TubeList) -> list[str]:
    return [t.txn_id for t in found.txns]


def test_history_by_reference_terminal_customer_and_date(desk: Desk) -> None:
    sent_deposit(desk, "HIST-1", carrier=41)
    sent_deposit(desk, "HIST-2", carrier=42)
    sent_deposit(desk, "HIST-9", terminal="K-9", carrier=49)
    bo1 = desk.stub("teller:BO-1")
    by_ref = bo1.SearchHistory(pb.HistoryRequest(reference="BLTX:K-1:HIST-1\n"))
    assert ids(by_ref) == ["HIST-1"]
    assert by_ref.txns[0].pan_masked.endswith("0010") and by_ref.txns[0].terminal_id == "K-1"
    # By terminal: only that terminal's, and never another branch's.
    everything = ids(bo1.SearchHistory(pb.HistoryRequest(terminal_id="K-1")))
    assert {"HIST-1", "HIST-2"} <= set(everything) and "HIST-9" not in everything
    assert ids(bo1.SearchHistory(pb.HistoryRequest(customer_id="c2"))) == []
    assert "HIST-2" in ids(bo1.SearchHistory(pb.HistoryRequest(customer_id="c1")))
    day = pb.HistoryRequest(from_date="2026-03-02", to_date="2026-03-02", terminal_id="K-1")
    assert {"HIST-1", "HIST-2"} <= set(ids(bo1.SearchHistory(day)))
    later = pb.HistoryRequest(from_date="2026-03-03")
    assert ids(bo1.SearchHistory(later)) == []
    assert ids(bo1.SearchHistory(pb.HistoryRequest(limit=1))) == [everything[0]]
    # Another branch's receipt finds nothing for BO-1; its own back office finds it.
    assert ids(bo1.SearchHistory(pb.HistoryRequest(reference="BLTX:K-9:HIST-9"))) == []
    bo2 = desk.stub("teller:BO-2")
    assert ids(bo2.SearchHistory(pb.HistoryRequest(reference="BLTX:K-9:HIST-9"))) == ["HIST-9"]


def test_history_refusals_name_the_field_or_rule(desk: Desk) -> None:
    bo1 = desk.stub("teller:BO-1")
    bad_date = refused(lambda: bo1.SearchHistory(pb.HistoryRequest(from_date="02/03/2026")))
    assert (bad_date.status, bad_date.field) == ("INVALID_ARGUMENT", "from_date")
    assert "YYYY-MM-DD" in bad_date.message
    backwards = refused(
        lambda: bo1.SearchHistory(pb.HistoryRequest(from_date="2026-03-05", to_date="2026-03-01"))
    )
    assert (backwards.status, backwards.field) == ("INVALID_ARGUMENT", "to_date")
    bad_ref = refused(lambda: bo1.SearchHistory(pb.HistoryRequest(reference="HELLO")))
    assert (bad_ref.status, bad_ref.field) == ("INVALID_ARGUMENT", "reference")
    assert "BLTX:" in bad_ref.message
    clash = refused(
        lambda: bo1.SearchHistory(pb.HistoryRequest(reference="BLTX:K-1:X", terminal_id="K-2"))
    )
    assert (clash.status, clash.field) == ("INVALID_ARGUMENT", "terminal_id")
    too_many = refused(lambda: bo1.SearchHistory(pb.HistoryRequest(limit=5000)))
    assert (too_many.status, too_many.field) == ("INVALID_ARGUMENT", "limit")
    plain = refused(lambda: desk.stub("teller:T-9").SearchHistory(pb.HistoryRequest()))
    assert plain.status == "PERMISSION_DENIED"
    assert "back_office skill" in plain.message

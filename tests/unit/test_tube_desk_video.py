"""The back office's video on the customer's screen, the server's rules (server/tube/
desk_video.py): the desk of the transaction's branch sends offer / candidates / bye, the
transaction's own terminal answers; each side reads only the other's signals; refusals name
the field or rule; nothing once the transaction is final; old desk signals are not pushed."""

from __future__ import annotations

import pytest

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from branchline.v1 import tube_pb2 as pb
from tests.unit import tube_support
from tests.unit.tube_support import BO, BO2, DEPOSIT, PLAIN_TELLER, World, cash, tube_open

world = tube_support.world


def opened(w: World, txn: str = "V1") -> str:
    reply = w.svc.handle_open("K-1", tube_open(DEPOSIT, w.books.cash, cash("100"), txn))
    assert reply.code == "", reply
    return txn


def test_desk_offers_terminal_answers_each_reads_the_other(world: World) -> None:
    w = world
    txn = opened(w)
    offer = w.svc.add_desk_signal(BO, txn, "offer", "v=0 offer")
    cand = w.svc.add_desk_signal(BO, txn, "candidate", '{"candidate":"c1"}')
    assert (offer.sender, offer.kind, offer.txn_id) == ("desk", "offer", txn)
    # The terminal gets the desk's, in order, and only after what it has seen.
    pushed = w.svc.desk_signals_for_terminal("K-1", 0)
    assert [s.signal_id for s in pushed] == [offer.signal_id, cand.signal_id]
    assert w.svc.desk_signals_for_terminal("K-1", cand.signal_id) == []
    assert w.svc.desk_signals_for_terminal("K-2", 0) == []
    answer = w.svc.terminal_desk_signal("K-1", txn, "answer", "v=0 answer")
    seen = w.svc.desk_signals_after(BO, txn, 0)
    assert [(s.sender, s.kind, s.payload) for s in seen] == [("terminal", "answer", "v=0 answer")]
    assert w.svc.desk_signals_after(BO, txn, answer.signal_id) == []
    # Old desk signals are not pushed to a terminal that connects much later.
    w.clock.advance(11 * 60)
    assert w.svc.desk_signals_for_terminal("K-1", 0) == []


def test_refusals_name_the_field_or_rule(world: World) -> None:
    w = world
    txn = opened(w)
    with pytest.raises(InvalidArgument) as bad_kind:
        w.svc.add_desk_signal(BO, txn, "answer", "x")  # the desk offers, never answers
    assert bad_kind.value.field == "kind"
    with pytest.raises(InvalidArgument) as empty:
        w.svc.add_desk_signal(BO, txn, "offer", "")
    assert empty.value.field == "payload"
    with pytest.raises(InvalidArgument) as big:
        w.svc.terminal_desk_signal("K-1", txn, "candidate", "x" * 2000)
    assert big.value.field == "payload"
    with pytest.raises(InvalidArgument) as bad_id:
        w.svc.add_desk_signal(BO, "not an id!", "offer", "v=0")
    assert bad_id.value.field == "txn_id"
    with pytest.raises(NotFound):
        w.svc.add_desk_signal(BO, "NO-SUCH", "offer", "v=0")
    with pytest.raises(PermissionDenied) as other_branch:
        w.svc.add_desk_signal(BO2, txn, "offer", "v=0")
    assert other_branch.value.reason == "own_branch_only"
    with pytest.raises(PermissionDenied) as no_skill:
        w.svc.desk_signals_after(PLAIN_TELLER, txn, 0)
    assert no_skill.value.reason == "back_office_skill"
    with pytest.raises(NotFound) as not_its_own:
        w.svc.terminal_desk_signal("K-2", txn, "answer", "v=0")
    assert not_its_own.value.field == "txn_id"


def test_nothing_once_the_transaction_is_final(world: World) -> None:
    w = world
    txn = opened(w)
    w.svc.add_desk_signal(BO, txn, "bye", "")
    event = pb.TubeEvent(request_id="c-1", txn_id=txn, kind=pb.TUBE_EVENT_CANCEL)
    assert w.svc.handle_event("K-1", event).code == ""
    with pytest.raises(FailedPrecondition) as final:
        w.svc.add_desk_signal(BO, txn, "offer", "v=0")
    assert final.value.reason == "txn_final"
    with pytest.raises(FailedPrecondition):
        w.svc.terminal_desk_signal("K-1", txn, "answer", "v=0")

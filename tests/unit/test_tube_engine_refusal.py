"""The journal refusing a tube stage's data for good ends the transaction, never retries it:
a withdrawal the server approved is reversed once (the hold released, an incident), one it
refused simply ends, and a restart carries on from the ending, not from the refused stage.
Transient failures are still tried again. The engine over the real server service
(tube_engine_support), on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from branchline.agent.journal.db import JournalError
from branchline.agent.tube import machines as m
from branchline.server.ledger import withdrawals
from branchline.v1 import tube_pb2 as pb
from tests.unit import tube_support
from tests.unit.tube_engine_support import (
    ServiceUplink,
    journal_states,
    terminal,
    until,
    withdraw,
    within,
)
from tests.unit.tube_support import BO, World

world = tube_support.world

# A hold id of the kind that stopped a withdrawal (tests/unit/test_ids.py): 4761739001010010
# is a test Visa PAN, so the journal refuses it as a clear card number.
PAN_RUN = "4761739001010010"
PAN_LIKE_HOLD = f"ab{PAN_RUN}cd0123456789ef"


def releases(monkeypatch: pytest.MonkeyPatch, w: World) -> list[str]:
    """The hold ids the ledger is asked to release, in order."""
    asked: list[str] = []
    release = w.ledger.release_hold

    def counted(hold_id: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(hold_id)
        return release(hold_id, *args, **kwargs)

    monkeypatch.setattr(w.ledger, "release_hold", counted)
    return asked


def available(w: World) -> Decimal:
    return next(a.available for a in w.ledger.balances("c1") if a.account_id == w.books.cash)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [getattr(r, "branchline_fields", {}) for r in caplog.records if r.getMessage() == name]


def no_pan_anywhere(caplog: pytest.LogCaptureFixture, tube: Any, txn_id: str) -> None:
    logged = [r.getMessage() + repr(getattr(r, "branchline_fields", "")) for r in caplog.records]
    assert not [line for line in logged if PAN_RUN in line]
    txn = tube.store.txjournal.get(txn_id)
    assert PAN_RUN not in repr(txn.data) + repr([s.data for s in txn.steps])


@pytest.mark.asyncio
async def test_refused_hold_id_reverses_the_withdrawal_once(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(withdrawals, "random_hex", lambda nbytes=16: PAN_LIKE_HOLD)
    released = releases(monkeypatch, world)
    caplog.set_level(logging.INFO, logger="branchline.agent")
    tube = terminal(tmp_path, ServiceUplink(world))
    live = await withdraw(tube, world.books.cash, "200.00", "W-REFUSED")
    await until(live, lambda x: x.finished)

    assert (live.stage, live.code) == (m.REVERSED, "not_completed")
    assert journal_states(tube.store, live.key) == [m.REVERSING, m.REVERSED]
    (reverse,) = tube.uplink.events(pb.TUBE_EVENT_REVERSE)
    assert reverse.reason == "journal_refused"
    assert released == [PAN_LIKE_HOLD] and available(world) == Decimal("1000.00")
    (incident,) = world.svc.list_incidents(BO)
    assert incident.kind == "journal_refused"
    (refused,) = events(caplog, "tube_journal_refused")
    assert refused["stage"] == "authorising" and refused["field"] == "data.hold_id"
    assert refused["error"] == "SensitiveData"
    assert events(caplog, "tube_stage_failed") == []  # ended, not retried
    no_pan_anywhere(caplog, tube, live.key)
    (line,) = [e for e in tube.store.ejournal.show() if e.kind == "tube_journal_refused"]
    assert line.fields()["ending"] == m.REVERSING
    assert line.fields()["field"] == "data.hold_id"
    await tube.close()


@pytest.mark.asyncio
async def test_refusal_before_approval_ends_without_a_reversal(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    released = releases(monkeypatch, world)
    caplog.set_level(logging.INFO, logger="branchline.agent")

    def card_in_refusal(kind: str, reply: pb.TubeReply) -> None:
        # A refusal text the journal cannot keep (it names a card-like number).
        if kind == "tube_open" and reply.code:
            reply.message += f" (card {PAN_RUN})"

    uplink = ServiceUplink(world, change=card_in_refusal)
    tube = terminal(tmp_path, uplink)
    live = await withdraw(tube, world.books.cash, "5000.00", "W-POOR")  # balance 1000.00
    await until(live, lambda x: x.finished)

    assert (live.stage, live.code) == (m.CANCELED, "not_completed")
    assert journal_states(tube.store, live.key) == [m.CANCELED]
    assert [kind for kind, _ in uplink.applied] == ["tube_open"]  # no reversal, no event
    assert released == [] and available(world) == Decimal("1000.00")
    assert world.svc.list_incidents(BO) == []
    (refused,) = events(caplog, "tube_journal_refused")
    assert refused["field"] == "data.message"
    assert events(caplog, "tube_stage_failed") == []
    no_pan_anywhere(caplog, tube, live.key)
    await tube.close()


@pytest.mark.asyncio
async def test_restart_after_a_refusal_resumes_the_ending_not_the_stage(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(withdrawals, "random_hex", lambda nbytes=16: PAN_LIKE_HOLD)
    released = releases(monkeypatch, world)
    caplog.set_level(logging.INFO, logger="branchline.agent")
    first = terminal(tmp_path, ServiceUplink(world, held={"tube_event"}))  # REVERSE not out
    live = await within(withdraw(first, world.books.cash, "200.00", "W-RESTART"), "no withdrawal")
    await until(live, lambda x: x.stage == m.REVERSING)
    # Closed just as the runner, having queued the REVERSE, kicks the sender: the sender's
    # cancel must not be lost in that turn (tests/unit/test_cancel_on_wake.py).
    await first.close()
    assert released == [] and first.uplink.events(pb.TUBE_EVENT_REVERSE) == []
    caplog.clear()

    second = terminal(tmp_path, ServiceUplink(world))
    await within(second.engine.recover(), "the second agent did not recover")
    again = second.engine.live["W-RESTART"]
    await until(again, lambda x: x.finished)

    assert again.stage == m.REVERSED and again.code == "not_completed"
    assert journal_states(second.store, again.key) == [m.REVERSING, m.REVERSED]
    assert len(second.uplink.events(pb.TUBE_EVENT_REVERSE)) == 1
    assert released == [PAN_LIKE_HOLD] and available(world) == Decimal("1000.00")
    assert events(caplog, "tube_journal_refused") == []  # authorising did not run again
    assert [e["stage"] for e in events(caplog, "tube_recovering")] == [m.REVERSING]
    await second.close()


@pytest.mark.asyncio
async def test_a_transient_journal_failure_is_still_tried_again(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="branchline.agent")
    tube = terminal(tmp_path, ServiceUplink(world))
    monkeypatch.setattr(tube.engine, "RETRY_AFTER", 0.05)
    set_state_in = tube.store.txjournal.set_state_in
    failures = [JournalError("database or disk is full")]

    def flaky(*args: Any, **kwargs: Any) -> int:
        if failures:
            raise failures.pop()
        return set_state_in(*args, **kwargs)

    monkeypatch.setattr(tube.store.txjournal, "set_state_in", flaky)
    live = await withdraw(tube, world.books.cash, "200.00", "W-FLAKY")
    await until(live, lambda x: x.stage == "awaiting_delivery")
    assert [e["stage"] for e in events(caplog, "tube_stage_failed")] == ["authorising"]
    assert events(caplog, "tube_journal_refused") == []
    await tube.close()

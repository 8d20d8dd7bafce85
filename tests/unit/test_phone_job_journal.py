"""The terminal's journal of its phone job (agent/kiosk/flows/phone_job_journal.py) on a real
``journal.db``, and the end's delivery (phone_job_state.end_job): the first end decided is
the one kept and sent, again while the bank cannot be reached, and forgotten once the server
has answered; a transaction asked for and not yet linked is found as the first begun since."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from branchline.agent.journal.store import Store
from branchline.agent.kiosk.flows import phone_job_journal as journal
from branchline.agent.kiosk.flows import phone_job_state
from branchline.agent.tube import machines as tube_machines
from branchline.agent.uplink import UplinkUnavailable
from branchline.v1 import mobile_pb2
from branchline.v1 import terminal_link_pb2 as link_pb


def _end(state: str, reason: str = "") -> mobile_pb2.PhoneJobUpdate:
    return mobile_pb2.PhoneJobUpdate(job_id="pj-1", state=state, reason=reason)


def test_the_first_end_decided_is_kept_until_forgotten(tmp_path: Path) -> None:
    store = Store(tmp_path, "T-1")
    try:
        db = store.db
        journal.remember(db, "pj-1", "tube_withdrawal")
        journal.remember(db, "pj-1", "tube_withdrawal")  # a repeated push: one row
        journal.intend(db, "pj-1", "tube")
        [job] = journal.left(db)
        assert (job.service, job.txn_kind, job.txn_id, job.final) == (
            "tube_withdrawal", "tube", "", None,
        )  # fmt: skip
        journal.link(db, "pj-1", "tube", "txn-9")
        journal.decide(db, _end("abandoned", "timeout"))
        journal.decide(db, _end("done"))  # a later end never replaces the first
        [job] = journal.left(db)
        assert job.txn_id == "txn-9" and job.final == _end("abandoned", "timeout")
        journal.forget(db, "pj-1")
        assert journal.left(db) == [] and journal.final(db, "pj-1") is None
        # An end decided for a job never remembered (refused at once) is kept too.
        journal.decide(db, _end("failed", "terminal_busy"), "video_teller")
        assert journal.final(db, "pj-1") == _end("failed", "terminal_busy")
    finally:
        store.close()


def test_a_transaction_not_yet_linked_is_the_first_begun_since(tmp_path: Path) -> None:
    clock = [1000.0]
    store = Store(tmp_path, "T-1", tube_machines.MACHINES, now=lambda: clock[0])
    try:
        store.txjournal.begin("tube_deposit", {})
        clock[0] = 1001.0
        journal.remember(store.db, "pj-1", "tube_withdrawal")
        journal.intend(store.db, "pj-1", "tube")
        [job] = journal.left(store.db)
        assert journal.begun_since(store.db, job.updated_at) == []
        clock[0] = 1002.0
        after = store.txjournal.begin("tube_withdrawal", {})
        assert journal.begun_since(store.db, job.updated_at) == [(after, "tube_withdrawal")]
    finally:
        store.close()


class _Uplink:
    """Answers like the server's link once ``down`` refusals have been used up."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.sent: list[mobile_pb2.PhoneJobUpdate] = []

    async def request(self, **body: Any) -> link_pb.ServerMessage:
        update = body["phone_job_update"]
        self.sent.append(update)
        if self.down > 0:
            self.down -= 1
            raise UplinkUnavailable("not connected")
        ack = mobile_pb2.PhoneJobAck(job_id=update.job_id, state=update.state)
        return link_pb.ServerMessage(phone_job_ack=ack)


def test_an_end_is_sent_until_acknowledged_then_forgotten(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(phone_job_state, "RETRY_SECONDS", 0.01)
    store = Store(tmp_path, "T-1")
    uplink = _Uplink(down=3)
    kept: list[asyncio.Task[None]] = []
    session = SimpleNamespace(agent=SimpleNamespace(store=store, uplink=uplink), keep=kept.append)

    async def scenario() -> None:
        journal.remember(store.db, "pj-1", "statement_view")
        await phone_job_state.end_job(session, "pj-1", "abandoned", reason="timeout")  # type: ignore[arg-type]
        assert journal.final(store.db, "pj-1") == _end("abandoned", "timeout")  # not yet sent
        # Another end decided meanwhile (the restart's) is not what goes out.
        await phone_job_state.end_job(session, "pj-1", "abandoned", reason="agent_restarted")  # type: ignore[arg-type]
        await asyncio.gather(*kept)

    try:
        asyncio.run(scenario())
        assert journal.left(store.db) == []
        assert {(u.state, u.reason) for u in uplink.sent} == {("abandoned", "timeout")}
        assert len(uplink.sent) >= 4  # three refusals, then the answer
    finally:
        store.close()

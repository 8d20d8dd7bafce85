"""Outbox: idempotency keys, gapless sequences, first answer kept, atomic with journal steps."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchline.agent.journal.jsoncodec import DataError
from branchline.agent.journal.outbox import UnknownMessage
from branchline.agent.journal.store import Store
from branchline.agent.journal.txjournal import StateMachine, UnknownTransaction
from branchline.agent.tube.sender import OutboxSender, decode_body, encode_body, without_secrets
from branchline.v1 import terminal_link_pb2 as link_pb2
from branchline.v1 import tube_pb2

MACHINE = StateMachine("started", {"started": frozenset({"done"})}, frozenset({"done"}))


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store(tmp_path, "T-0001", {"deposit": MACHINE}, now=clock)
    yield s
    s.close()


def test_enqueue_allocates_gapless_keys_and_pending_is_in_order(store: Store) -> None:
    got = [store.outbox.enqueue("deposit_request", f"m{i}".encode()) for i in range(5)]
    assert got == [(i, f"T-0001:{i}") for i in range(1, 6)]
    pending = store.outbox.pending()
    assert [(m.seq, m.key, m.payload) for m in pending] == [
        (i, f"T-0001:{i}", f"m{i - 1}".encode()) for i in range(1, 6)
    ]
    assert [m.seq for m in store.outbox.pending(limit=2)] == [1, 2]


def test_acknowledged_keeps_the_first_answer(store: Store) -> None:
    seq, _ = store.outbox.enqueue("deposit_request", b"req")
    assert store.outbox.acknowledged_response(seq) is None
    assert store.outbox.mark_acknowledged(seq, b"first") == b"first"
    # A repeat (the caller resent and got the server's repeat answer) changes nothing.
    assert store.outbox.mark_acknowledged(seq, b"second") == b"first"
    assert store.outbox.acknowledged_response(seq) == b"first"
    assert store.outbox.pending() == []


def test_the_session_token_is_not_kept_once_the_server_has_the_open(store: Store) -> None:
    """A TubeOpen carries the customer's session token (a bearer credential for ten minutes);
    the server needs it once, so the acknowledged message keeps everything but that."""
    body = tube_pb2.TubeOpen(txn_id="tx-1", session_token="claims.signature", account_id="A-1")
    seq, key = store.outbox.enqueue("tube_open", encode_body(body))
    message = store.outbox.get(seq)
    sent = decode_body(message)
    assert isinstance(sent, tube_pb2.TubeOpen)
    assert sent.request_id == key and sent.session_token == "claims.signature"
    kept = without_secrets(message, sent)
    assert kept is not None
    store.outbox.mark_acknowledged(seq, b"answer", keep_payload=kept)
    stored = tube_pb2.TubeOpen.FromString(store.outbox.get(seq).payload)
    assert (stored.txn_id, stored.account_id, stored.session_token) == ("tx-1", "A-1", "")
    assert b"claims.signature" not in store.outbox.get(seq).payload
    # Events carry no credential: kept as sent.
    event = store.outbox.get(store.outbox.enqueue("tube_event", b"")[0])
    assert without_secrets(event, decode_body(event)) is None
    with pytest.raises(DataError, match="keep_payload: must be bytes"):
        store.outbox.mark_acknowledged(event.seq, b"a", keep_payload="x")  # type: ignore[arg-type]


def test_sequence_is_never_reused_and_survives_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path, "T-0001")
    s.outbox.enqueue("a", b"")
    seq, _ = s.outbox.enqueue("a", b"")
    s.close()
    with sqlite3.connect(tmp_path / "journal.db") as conn:  # even if rows are pruned
        conn.execute("DELETE FROM outbox")
    s = Store(tmp_path, "T-0001")
    assert s.outbox.enqueue("a", b"") == (seq + 1, f"T-0001:{seq + 1}")
    s.close()


def test_stats_and_attempts(store: Store, clock: Clock) -> None:
    assert store.outbox.stats().pending == 0
    assert store.outbox.stats().oldest_age_seconds == 0.0
    a, _ = store.outbox.enqueue("x", b"1")
    clock.t += 30
    b, _ = store.outbox.enqueue("x", b"2")
    clock.t += 15
    store.outbox.mark_attempt(a, "UNAVAILABLE: server down")
    store.outbox.mark_attempt(a, "DEADLINE_EXCEEDED")
    stats = store.outbox.stats()
    assert (stats.pending, stats.oldest_age_seconds, stats.acknowledged, stats.last_seq) == (
        2,
        45.0,
        0,
        2,
    )
    first = store.outbox.get(a)
    assert (first.attempts, first.last_error) == (2, "DEADLINE_EXCEEDED")
    assert first.age(clock.t) == 45.0
    store.outbox.mark_acknowledged(a, b"ok")
    stats = store.outbox.stats()
    assert (stats.pending, stats.oldest_age_seconds, stats.acknowledged) == (1, 15.0, 1)
    assert store.outbox.get(b).attempts == 0


def test_journal_step_and_its_message_commit_together(store: Store) -> None:
    txn = store.txjournal.begin("deposit")
    assert store.record_step_and_enqueue(txn, "host_request", {"n": 1}, "req", b"p") == (
        1,
        1,
        "T-0001:1",
    )
    assert store.outbox.get(1).txn_id == txn
    # A failure of the message undoes the step, and the sequence number is not consumed.
    with pytest.raises(DataError):
        store.record_step_and_enqueue(txn, "host_request", {"n": 2}, "req", "not bytes")  # type: ignore[arg-type]
    assert len(store.txjournal.get(txn).steps) == 1
    assert store.outbox.enqueue("req", b"q") == (2, "T-0001:2")
    # ... and a failure of the step sends nothing.
    with pytest.raises(DataError):
        store.record_step_and_enqueue(txn, "host_request", {"n": 0.5}, "req", b"p")
    assert store.outbox.stats().last_seq == 2


def test_bad_input(store: Store) -> None:
    with pytest.raises(UnknownMessage, match="no outbox message 99"):
        store.outbox.mark_acknowledged(99, b"")
    with pytest.raises(UnknownMessage):
        store.outbox.mark_attempt(99)
    with pytest.raises(UnknownMessage):
        store.outbox.acknowledged_response(99)
    with pytest.raises(UnknownTransaction, match="no transaction 'ghost'"):
        store.outbox.enqueue("x", b"", txn_id="ghost")
    with pytest.raises(DataError, match="kind"):
        store.outbox.enqueue("Bad Kind", b"")
    with pytest.raises(DataError, match="payload: must be bytes"):
        store.outbox.enqueue("x", "text")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="limit"):
        store.outbox.pending(0)
    seq, _ = store.outbox.enqueue("x", b"")
    with pytest.raises(DataError, match="response: must be bytes"):
        store.outbox.mark_acknowledged(seq, None)  # type: ignore[arg-type]
    assert store.outbox.stats().last_seq == 1


class BusyThenAppliedServer:
    """Plays the server for OutboxSender: ``server_busy`` twice, then applied."""

    connected = True
    last_error = ""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.sent: list[str] = []

    async def request(self, timeout: float, **body: object) -> link_pb2.ServerMessage:
        message = body["tube_open"]
        assert isinstance(message, tube_pb2.TubeOpen)
        self.sent.append(message.request_id)
        if self.busy:
            self.busy -= 1
            reply = tube_pb2.TubeReply(
                request_id=message.request_id,
                code="server_busy",
                message="tube_open: the server is saturated",
                retry_after_ms=50,
            )
        else:
            reply = tube_pb2.TubeReply(request_id=message.request_id)
        return link_pb2.ServerMessage(ack_seq=1, tube_reply=reply)


def test_server_busy_is_retried_after_its_wait_with_backoff(store: Store) -> None:
    server = BusyThenAppliedServer(busy=2)
    sender = OutboxSender(store.outbox, server, retry_seconds=0.01)  # type: ignore[arg-type]
    seq, key = store.outbox.enqueue("tube_open", encode_body(tube_pb2.TubeOpen(txn_id="tx-1")))

    async def scenario() -> bytes:
        runner = asyncio.create_task(sender.run())
        try:
            return await asyncio.wait_for(sender.answer(seq), 10)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    answer = tube_pb2.TubeReply.FromString(asyncio.run(scenario()))
    assert answer.code == "" and answer.request_id == key
    # The same key each time: the server applies it once, when it has room.
    assert server.sent == [key, key, key]
    kept = store.outbox.get(seq)
    assert kept.attempts == 2 and kept.last_error.startswith("server_busy")


def test_server_busy_waits_grow_and_are_bounded(store: Store) -> None:
    sender = OutboxSender(store.outbox, BusyThenAppliedServer(0), retry_seconds=1.0)  # type: ignore[arg-type]
    waits = [sender.busy_wait(0.5) for _ in range(10)]
    # At least retry_seconds, doubling (+-20 % jitter), at most 30 s.
    assert 0.8 <= waits[0] <= 1.2
    assert 1.6 <= waits[1] <= 2.4
    assert 3.2 <= waits[2] <= 4.8
    assert all(w <= 30.0 * 1.2 for w in waits)
    assert waits[-1] >= 24.0

"""Journal retention (agent/journal/retention.py): what a finished transaction leaves in
journal.db — a cheque purchase's ID card read and face JPEG among it — is deleted once older
than ``[terminal] journal_retention_days``, and nothing unfinished or unacknowledged is ever
touched. Real SQLite files and the agent's own journal classes."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from branchline.agent.cheques import customer
from branchline.agent.cheques import machine as m
from branchline.agent.config import AgentConfig, load_config
from branchline.agent.daemon import Agent
from branchline.agent.journal import retention as retention_module
from branchline.agent.journal.db import MIGRATIONS, Database
from branchline.agent.journal.retention import DAY, JournalRetention, held, sweep_batch
from branchline.agent.journal.store import Store
from branchline.agent.journal.txjournal import StateMachine
from branchline.agent.kiosk.flows import phone_job_journal
from branchline.agent.kiosk.settings import KioskSettings
from branchline.agent.metrics import AgentCollector
from branchline.agent.tube.sender import OutboxSender
from branchline.common.config_reader import ConfigError
from branchline.v1 import cheques_pb2 as pb
from tests.unit.cheque_fakes import FACE, ID_CARD, make_world
from tests.unit.link_support import loopback_terminal, until

MACHINE = StateMachine("started", {"started": frozenset({"done"})}, frozenset({"done"}))
# What the fake ID reader and face camera give (tests/unit/cheque_fakes.py): the card's photo,
# the face JPEG and the clear ID number must all leave journal.db; the masked number stays in
# the e-journal.
PHOTO = b"WLT-PHOTO"
JPEG = b"\xff\xd8jpeg\xff\xd9"
ID_NUMBER = str(ID_CARD["id_number"]).encode()
MASKED = str(ID_CARD["id_number_masked"]).encode()
assert ID_CARD["photo_b64"] and FACE["jpeg_b64"]


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
    s = Store(tmp_path, "T-0001", {"deposit": MACHINE, "cheque_purchase": MACHINE}, now=clock)
    yield s
    s.close()


def on_disk(state_dir: Path) -> bytes:
    """Every byte of journal.db and its WAL as they are on disk."""
    return b"".join(
        path.read_bytes()
        for path in (state_dir / "journal.db", state_dir / "journal.db-wal")
        if path.exists()
    )


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.db.reading() as conn:
        return [tuple(r) for r in conn.execute(sql)]


# -- a real cheque purchase --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_finished_purchases_id_photo_and_face_go_after_the_retention(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path)
    live = await customer.start_code(world.engine, "6222020200112233", "123456")
    await customer.read_id(world.engine, live)
    await customer.capture_face(world.engine, live)
    assert live.stage == m.AWAITING_ORDER, live.code
    await customer.cancel(world.engine, live)
    for _ in range(200):
        if live.finished:
            break
        await asyncio.sleep(0.02)
    assert live.finished and live.stage == m.CANCELED
    await world.engine.stop()
    world.sender_task.cancel()
    store = world.store
    id_card = store.outbox.get(2)
    face = store.outbox.get(3)
    assert (id_card.kind, face.kind) == ("cheque_id_card", "cheque_face")
    assert pb.ChequeIdCard.FromString(id_card.payload).id_card.photo == PHOTO
    assert pb.ChequeFace.FromString(face.payload).capture.jpeg == JPEG
    assert store.outbox.stats().pending == 0
    entries = len(store.ejournal.show(since=1, limit=1000))
    steps = len(store.txjournal.get(live.purchase_id).steps)
    messages = store.outbox.stats().last_seq
    clean_at = store.db.now()

    # Six days on: all of it is still there (support, a replay of its acknowledgements).
    retention = JournalRetention(store.db, 7)
    store.db.now = lambda: clean_at + 6 * DAY  # type: ignore[method-assign]
    assert (await retention.sweep_once()).empty
    assert store.txjournal.get(live.purchase_id).finished
    assert PHOTO in store.outbox.get(2).payload and JPEG in store.outbox.get(3).payload
    assert PHOTO in on_disk(tmp_path) and JPEG in on_disk(tmp_path)

    # Eight days on: the purchase, its steps and every message of it are gone, and the
    # bytes are nowhere in the file or its WAL; the e-journal is whole and still verifies.
    store.db.now = lambda: clean_at + 8 * DAY  # type: ignore[method-assign]
    swept = await retention.sweep_once()
    assert (swept.transactions, swept.steps, swept.messages) == (1, steps, messages)
    assert rows(store, "SELECT COUNT(*) FROM txn") == [(0,)]
    assert rows(store, "SELECT COUNT(*) FROM txn_step") == [(0,)]
    assert rows(store, "SELECT COUNT(*) FROM outbox") == [(0,)]
    disk = on_disk(tmp_path)
    for secret in (PHOTO, JPEG, ID_NUMBER, b"123456"):
        assert secret not in disk, secret
    assert MASKED in disk  # the e-journal's masked fact stays
    assert len(store.ejournal.show(since=1, limit=1000)) == entries
    assert store.ejournal.verify().ok
    # The sequence goes on: a key is never used twice.
    assert store.outbox.stats().last_seq == messages
    assert store.outbox.enqueue("cheque_start", b"")[0] == messages + 1
    store.close()


# -- what is never touched ---------------------------------------------------------------------


def finished_txn(store: Store, *, acked: bool = True) -> tuple[str, int]:
    txn = store.txjournal.begin("deposit", {"account": "A-1"})
    _, seq, _ = store.record_step_and_enqueue(txn, "send", {"n": 1}, "deposit_request", b"id")
    if acked:
        store.outbox.mark_acknowledged(seq, b"first")
    store.txjournal.set_state(txn, "done")
    return txn, seq


def test_unfinished_unacknowledged_and_phone_job_transactions_stay(
    store: Store, clock: Clock
) -> None:
    old = clock.t
    # Unfinished for a month (a teller must settle it): its acknowledged message stays too.
    open_txn = store.txjournal.begin("deposit", {"account": "A-1"})
    _, open_seq, _ = store.record_step_and_enqueue(open_txn, "send", {}, "deposit_request", b"o")
    store.outbox.mark_acknowledged(open_seq, b"open-answer")
    done, done_seq = finished_txn(store)
    pending_txn, pending_seq = finished_txn(store, acked=False)
    # Finished a month ago, acknowledged only yesterday (the link was down): kept for now.
    late_txn, late_seq = finished_txn(store, acked=False)
    lone_acked = store.outbox.enqueue("deposit_request", b"lone")[0]
    store.outbox.mark_acknowledged(lone_acked, b"r")
    lone_pending = store.outbox.enqueue("deposit_request", b"lone-pending")[0]
    # A phone job follows this one (recovery reads how it ended) ...
    followed, _ = finished_txn(store)
    phone_job_journal.remember(store.db, "job-1", "deposit")
    phone_job_journal.link(store.db, "job-1", "tube", followed)
    # ... and a job that asked for a transaction but was not linked may own any begun since.
    clock.t += 1
    phone_job_journal.remember(store.db, "job-2", "deposit")
    phone_job_journal.intend(store.db, "job-2", "tube")
    maybe_owned, _ = finished_txn(store)
    last_seq = store.outbox.stats().last_seq
    clock.t = old + 29 * DAY
    store.outbox.mark_acknowledged(late_seq, b"late")
    clock.t = old + 30 * DAY

    assert sweep_batch(store.db, clock.t - 7 * DAY).transactions == 1
    kept = {r[0] for r in rows(store, "SELECT id FROM txn")}
    assert kept == {open_txn, pending_txn, late_txn, followed, maybe_owned}
    assert done not in kept
    seqs = {r[0] for r in rows(store, "SELECT seq FROM outbox")}
    assert done_seq not in seqs and lone_acked not in seqs
    assert {open_seq, pending_seq, late_seq, lone_pending} <= seqs
    # Unfinished: every step and its stored answer, as recovery needs them.
    assert [s.name for s in store.txjournal.get(open_txn).steps] == ["send"]
    assert store.outbox.acknowledged_response(open_seq) == b"open-answer"
    assert [m.seq for m in store.outbox.pending()] == [pending_seq, lone_pending]
    assert [t.id for t in store.txjournal.unfinished()] == [open_txn]
    # Nothing more is due until the phone jobs end.
    assert sweep_batch(store.db, clock.t - 7 * DAY).empty
    phone_job_journal.forget(store.db, "job-1")
    phone_job_journal.forget(store.db, "job-2")
    assert sweep_batch(store.db, clock.t - 7 * DAY).transactions == 2
    assert store.outbox.enqueue("deposit_request", b"next")[0] == last_seq + 1


@pytest.mark.asyncio
async def test_a_replay_of_a_recent_acknowledgement_gets_its_stored_answer(
    store: Store, clock: Clock
) -> None:
    txn, seq = finished_txn(store)
    unfinished = store.txjournal.begin("deposit", {})
    _, open_seq, _ = store.record_step_and_enqueue(unfinished, "send", {}, "deposit_request", b"")
    store.outbox.mark_acknowledged(open_seq, b"open-first")
    clock.t += 2 * DAY
    swept = await JournalRetention(store.db, 1.5).sweep_once()
    assert swept.empty is False and (swept.transactions, swept.messages) == (1, 1)
    txn, seq = finished_txn(store)
    clock.t += 3 * DAY
    assert (await JournalRetention(store.db, 7).sweep_once()).empty
    # The server answered again (a resend after a lost answer): the first answer stands.
    assert store.outbox.mark_acknowledged(seq, b"second") == b"first"
    assert store.outbox.acknowledged_response(seq) == b"first"
    # A transaction recovering reads its stored answers instead of asking again, however old.
    sender = OutboxSender(store.outbox, SimpleNamespace(connected=False))  # type: ignore[arg-type]
    assert await sender.answer(open_seq) == b"open-first"
    assert await sender.answer(seq) == b"first"


# -- a sweep interrupted -----------------------------------------------------------------------


def break_delete_of(store: Store, txn_id: str) -> None:
    """Make deleting ``txn_id`` fail, after its messages and steps were deleted in the batch."""
    with store.db.transaction() as conn:
        conn.execute(
            "CREATE TEMP TRIGGER broken BEFORE DELETE ON txn"
            f" WHEN OLD.id = '{txn_id}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )


def test_a_sweep_failing_mid_batch_leaves_that_batch_undone(store: Store, clock: Clock) -> None:
    made = []
    for _ in range(5):  # oldest first, as the sweep takes them
        made.append(finished_txn(store))
        clock.t += 1
    clock.t += 10 * DAY
    cutoff = clock.t - 7 * DAY
    break_delete_of(store, made[3][0])
    assert sweep_batch(store.db, cutoff, limit=2).transactions == 2  # the first two
    with pytest.raises(sqlite3.IntegrityError, match="disk says no"):
        sweep_batch(store.db, cutoff, limit=2)  # the next two: the fourth fails
    kept = [r[0] for r in rows(store, "SELECT id FROM txn ORDER BY updated_at")]
    assert kept == [t for t, _ in made[2:]]
    for txn, seq in made[2:]:
        assert [s.name for s in store.txjournal.get(txn).steps] == ["send", "state"]
        assert store.outbox.acknowledged_response(seq) == b"first"
    assert rows(store, "PRAGMA integrity_check") == [("ok",)]
    assert rows(store, "PRAGMA foreign_key_check") == []
    with store.db.transaction() as conn:
        conn.execute("DROP TRIGGER broken")
    assert sweep_batch(store.db, cutoff, limit=2).transactions == 2
    assert sweep_batch(store.db, cutoff, limit=2).transactions == 1
    assert rows(store, "SELECT COUNT(*) FROM txn_step") == [(0,)]


@pytest.mark.asyncio
async def test_the_sweep_logs_counts_and_outlives_a_failure(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    made = [finished_txn(store) for _ in range(3)]
    store.outbox.mark_acknowledged(store.outbox.enqueue("deposit_request", b"x")[0], b"r")
    clock.t += 8 * DAY
    break_delete_of(store, made[0][0])
    retention = JournalRetention(store.db, 7, interval=0.01)
    caplog.set_level(logging.INFO, "branchline.agent.journal")
    task = asyncio.create_task(retention.run())
    try:
        for _ in range(200):
            if any(r.getMessage() == "journal_retention_failed" for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        assert len(rows(store, "SELECT id FROM txn")) == 3
        with store.db.transaction() as conn:
            conn.execute("DROP TRIGGER broken")
        for _ in range(200):
            if any(r.getMessage() == "journal_retention" for r in caplog.records):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (retention.removed.transactions, retention.removed.messages) == (3, 4)
    logged = [
        getattr(r, "branchline_fields", None)
        for r in caplog.records
        if r.getMessage() == "journal_retention"
    ]
    counts = {
        "transactions": 3,
        "steps": 6,
        "messages": 4,
        "retention_days": 7,
        "wal_truncated": True,
    }
    assert {"event": "journal_retention", **counts} in logged


# -- configuration -----------------------------------------------------------------------------

CONFIG = """
[terminal]
id = "T-0001"
branch = "BR-001"
state_dir = "state"
insecure = true
"""


def test_journal_retention_days_is_read_and_defaults_to_a_week(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG)
    assert load_config(path).terminal.journal_retention_days == 7.0
    path.write_text(CONFIG + "journal_retention_days = 30\n")
    assert load_config(path).terminal.journal_retention_days == 30.0
    path.write_text(CONFIG + "journal_retention_days = 1.5\n")
    assert load_config(path).terminal.journal_retention_days == 1.5


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "must be at least 1 day"),
        ("0.5", "must be at least 1 day"),
        ("-7", "must be at least 1 day"),
        ("nan", "must be at least 1 day"),
        ("inf", "must be at most 3650"),
        ("3651", "must be at most 3650"),
        ('"7"', "expected a number, got str"),
        ("true", "expected a number, got bool"),
    ],
)
def test_bad_journal_retention_days_is_refused_naming_the_key(
    tmp_path: Path, value: str, problem: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG + f"journal_retention_days = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "[terminal] journal_retention_days: " in str(info.value)
    assert problem in str(info.value)


def test_no_retention_at_all_is_refused_in_code_too(store: Store) -> None:
    for days in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="retention_days"):
            JournalRetention(store.db, days)
    with pytest.raises(ValueError, match="limit"):
        sweep_batch(store.db, 0.0, limit=0)


# -- what is kept, as diag and metrics show it -------------------------------------------------


def test_held_counts_what_retention_will_delete(store: Store, clock: Clock) -> None:
    assert held(store.db).finished_transactions == 0
    start = clock.t
    finished_txn(store)
    clock.t += 60
    finished_txn(store)
    store.txjournal.begin("deposit", {})
    kept = held(store.db)
    assert (kept.finished_transactions, kept.acknowledged_messages) == (2, 2)
    assert kept.oldest_finished_at == kept.oldest_acknowledged_at == start


def test_the_metric_counts_what_the_sweep_removed(store: Store, clock: Clock) -> None:
    finished_txn(store)
    clock.t += 8 * DAY
    retention = JournalRetention(store.db, 7)
    asyncio.run(retention.sweep_once())
    agent = SimpleNamespace(
        config=SimpleNamespace(terminal=SimpleNamespace(terminal_id="T-0001")),
        device_snapshots=list,
        store=store,
        uplink=SimpleNamespace(connected=True),
        retention=retention,
    )
    families = {f.name: f for f in AgentCollector(agent).collect()}  # type: ignore[arg-type]
    family = families["branchline_journal_retention_removed"]
    assert family.type == "counter"
    got = {s.labels["what"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert got == {"transactions": 1.0, "messages": 1.0}


# -- the agent ---------------------------------------------------------------------------------


def test_the_agent_sweeps_its_journal_when_it_runs(caplog: pytest.LogCaptureFixture) -> None:
    """The daemon runs the sweep on its loop with the configured retention: a purchase
    finished a month ago is gone once the agent has started, and it stops cleanly."""
    # A short directory: a Unix socket path is limited to about 100 bytes.
    state = Path(tempfile.mkdtemp(prefix="bl-ret-", dir="/tmp"))
    try:
        clock = Clock()
        clock.t = time.time() - 30 * DAY
        seeded = Store(state, "T-RET", {"deposit": MACHINE}, now=clock)
        old, _ = finished_txn(seeded)
        clock.t = time.time() - 5 * DAY
        recent, _ = finished_txn(seeded)
        seeded.close()
        terminal = replace(loopback_terminal("T-RET", 1, state), journal_retention_days=10)
        config = AgentConfig(
            file=state / "agent.toml",
            terminal=terminal,
            devices=(),
            kiosk=KioskSettings(enabled=False),
        )
        caplog.set_level(logging.INFO, "branchline.agent.journal")
        assert asyncio.run(run_agent_until_swept(Agent(config), caplog)) == 0
        store = Store(state, "T-RET")
        try:
            assert [r[0] for r in rows(store, "SELECT id FROM txn")] == [recent]
            assert old != recent
        finally:
            store.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)


async def run_agent_until_swept(agent: Agent, caplog: pytest.LogCaptureFixture) -> int:
    task = asyncio.create_task(agent.run())
    try:
        await until(
            lambda: (
                task.done() or any(r.getMessage() == "journal_retention" for r in caplog.records)
            ),
            "the agent's first sweep",
        )
    finally:
        agent.request_stop()
        async with asyncio.timeout(30):
            code = await task
    assert agent.retention.retention_days == 10
    assert agent.retention.removed.transactions == 1
    return code


def test_a_journal_from_before_gets_the_indexes_the_sweep_needs(tmp_path: Path) -> None:
    """Without an index on outbox.txn_id each deleted transaction scans the whole outbox
    (SQLite's foreign-key check too): a terminal's first sweep of years of journal took
    minutes per batch. A journal of the previous schema gets them when the agent opens it."""
    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as conn:
        for statement in [s for version in MIGRATIONS[:2] for s in version]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    db = Database(path)
    try:
        with db.reading() as conn:
            plan = " ".join(
                str(row[3])
                for row in conn.execute(
                    "EXPLAIN QUERY PLAN " + retention_module._DUE_TRANSACTIONS,
                    {"cutoff": 0.0, "limit": 1},
                )
            )
            indexes = {row[1] for row in conn.execute("PRAGMA index_list(outbox)")}
        assert "SEARCH txn USING INDEX txn_finished" in plan
        assert "SEARCH outbox USING INDEX outbox_txn" in plan
        assert "outbox_txn" in indexes
    finally:
        db.close()


def test_the_wal_truncation_does_not_wait_for_a_long_reader(store: Store) -> None:
    """A full e-journal verify reads on a connection of its own; the checkpoint after a sweep
    gives up at once rather than hold the journal's lock for the busy timeout (10 s)."""
    finished_txn(store)
    with store.db.separate_reader() as reader:
        reader.execute("SELECT COUNT(*) FROM txn").fetchone()
        started = time.monotonic()
        assert store.db.checkpoint() is False
        assert time.monotonic() - started < 2.0
    assert store.db.checkpoint() is True
    assert (store.db.path.parent / "journal.db-wal").stat().st_size == 0

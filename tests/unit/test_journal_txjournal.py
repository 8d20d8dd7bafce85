"""Write-ahead journal: the database file, transactions, steps, state machines, bad input."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from branchline.agent.journal.db import SCHEMA_VERSION, CorruptRecord, Database, JournalError
from branchline.agent.journal.jsoncodec import DataError, SensitiveData
from branchline.agent.journal.store import Store
from branchline.agent.journal.txjournal import (
    StateMachine,
    TransactionFinished,
    TransitionNotAllowed,
    UnknownKind,
    UnknownTransaction,
)

DEPOSIT = StateMachine(
    initial="started",
    transitions={
        "started": frozenset({"authorised", "failed"}),
        "authorised": frozenset({"completed", "reversed"}),
    },
    final=frozenset({"completed", "reversed", "failed"}),
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path, "T-0001", {"deposit": DEPOSIT}, now=Clock())
    yield s
    s.close()


def test_database_is_wal_full_sync_with_foreign_keys_and_owner_only(store: Store) -> None:
    with store.db.reading() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.db.path.name == "journal.db"
    assert store.db.path.stat().st_mode & 0o777 == 0o600


def test_reopen_keeps_data_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path, "T-0001", {"deposit": DEPOSIT})
    txn = s.txjournal.begin("deposit", {"amount": Decimal("10.00")})
    s.close()
    s = Store(tmp_path, "T-0001")
    assert s.txjournal.get(txn).data == {"amount": "10.00"}
    s.close()
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="newer than this agent knows"):
        Database(tmp_path / "journal.db")


def test_begin_steps_states_and_get(store: Store) -> None:
    journal = store.txjournal
    txn = journal.begin(
        "deposit",
        {
            "amount": Decimal("125.50"),
            "currency": "EUR",
            "pan_masked": "401234******8909",
            "card_token": "4111111111111111",  # a token may look like a PAN
        },
    )
    assert journal.record_step(txn, "host_request", {"amount": Decimal("125.50")}) == 1
    assert journal.set_state(txn, "authorised", {"auth_code": "A1"}) == 2
    assert journal.record_step(txn, "carrier_sent") == 3
    got = journal.get(txn)
    assert got.kind == "deposit" and got.state == "authorised" and not got.finished
    assert got.terminal_id == "T-0001"
    assert got.data["amount"] == "125.50" and Decimal(got.data["amount"]) == Decimal("125.50")
    assert [(s.number, s.name) for s in got.steps] == [
        (1, "host_request"),
        (2, "state"),
        (3, "carrier_sent"),
    ]
    assert got.steps[1].data == {"auth_code": "A1", "from": "started", "to": "authorised"}
    assert got.created_at < got.steps[0].at < got.updated_at == got.steps[-1].at
    assert [t.id for t in journal.unfinished()] == [txn]

    journal.set_state(txn, "completed")
    assert journal.get(txn).finished
    assert journal.unfinished() == []
    with pytest.raises(TransactionFinished, match="is finished"):
        journal.record_step(txn, "late")
    with pytest.raises(TransactionFinished):
        journal.set_state(txn, "reversed")


def test_unfinished_lists_oldest_first(store: Store) -> None:
    journal = store.txjournal
    a, b, c = (journal.begin("deposit", {"n": n}) for n in range(3))
    journal.set_state(b, "failed")
    assert [t.id for t in journal.unfinished()] == [a, c]


def test_transition_not_in_the_table_is_refused_and_nothing_is_written(store: Store) -> None:
    journal = store.txjournal
    txn = journal.begin("deposit")
    with pytest.raises(TransitionNotAllowed, match=r"from 'started' to 'completed'.*authorised"):
        journal.set_state(txn, "completed")
    got = journal.get(txn)
    assert got.state == "started" and got.steps == ()


def test_unknown_kind_and_unknown_transaction(store: Store) -> None:
    with pytest.raises(UnknownKind, match="'withdrawal'.*deposit"):
        store.txjournal.begin("withdrawal")
    for call in (
        lambda: store.txjournal.get("nope"),
        lambda: store.txjournal.record_step("nope", "x"),
        lambda: store.txjournal.set_state("nope", "failed"),
    ):
        with pytest.raises(UnknownTransaction, match="no transaction 'nope'"):
            call()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": 12.5}, r"data.amount: a float is not allowed"),
        ({"amount": Decimal("NaN")}, r"data.amount: NaN is not a finite amount"),
        ({"when": object()}, r"data.when: object cannot be stored"),
        ({1: "x"}, r"key 1 is not a string"),
        ({"items": [{"x": b"raw"}]}, r"data.items\[0\].x: bytes cannot be stored"),
    ],
)
def test_bad_data_is_refused_naming_the_field(
    store: Store, data: dict[object, object], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        store.txjournal.begin("deposit", data)  # type: ignore[arg-type]
    with store.db.reading() as conn:
        assert conn.execute("SELECT COUNT(*) FROM txn").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"pan": "4012345678909"}, "data.pan"),
        ({"card": {"track2": "x"}}, "data.card.track2"),
        ({"pin_block": "00"}, "data.pin_block"),
        ({"note": "card 4012345678909 read"}, "data.note"),
        ({"raw": ";4012345678909=2512?"}, "data.raw"),
    ],
)
def test_card_secrets_are_never_journaled(store: Store, data: dict[str, str], field: str) -> None:
    txn = store.txjournal.begin("deposit")
    with pytest.raises(SensitiveData, match=field) as info:
        store.txjournal.record_step(txn, "card_read", data)
    assert "4012345678909" not in str(info.value)
    assert store.txjournal.get(txn).steps == ()


def test_bad_names_are_refused(store: Store) -> None:
    txn = store.txjournal.begin("deposit")
    for name in ("", "Has Space", "x" * 65, "1st"):
        with pytest.raises(DataError, match="is not a name"):
            store.txjournal.record_step(txn, name)
    with pytest.raises(ValueError, match="unknown states"):
        StateMachine("a", {"a": frozenset({"b"})}, frozenset({"c"}))
    with pytest.raises(ValueError, match="initial state"):
        StateMachine("z", {"a": frozenset({"c"})}, frozenset({"c"}))


def test_corrupted_json_is_reported_by_get_and_flagged_by_unfinished(store: Store) -> None:
    good = store.txjournal.begin("deposit", {"n": 1})
    bad = store.txjournal.begin("deposit", {"n": 2})
    store.txjournal.record_step(bad, "host_request", {"n": 2})
    with sqlite3.connect(store.db.path) as conn:
        conn.execute("UPDATE txn_step SET data = '{\"n\": 2' WHERE txn_id = ?", (bad,))
    with pytest.raises(CorruptRecord, match=f"transaction {bad} step 1 data: not valid JSON"):
        store.txjournal.get(bad)
    listed = {t.id: t for t in store.txjournal.unfinished()}
    assert listed[good].problem == "" and listed[good].data == {"n": 1}
    assert "not valid JSON" in listed[bad].problem and listed[bad].state == "started"


def test_a_missing_step_is_reported(store: Store) -> None:
    txn = store.txjournal.begin("deposit")
    for name in ("a", "b", "c"):
        store.txjournal.record_step(txn, name)
    with sqlite3.connect(store.db.path) as conn:
        conn.execute("DELETE FROM txn_step WHERE txn_id = ? AND step = 2", (txn,))
    with pytest.raises(CorruptRecord, match="step 2 is missing"):
        store.txjournal.get(txn)


def test_nested_transactions_commit_together_or_not_at_all(store: Store) -> None:
    journal = store.txjournal
    txn = journal.begin("deposit")
    with pytest.raises(RuntimeError), store.db.transaction():
        journal.record_step(txn, "one")
        store.ejournal.append("note", {"n": 1})
        raise RuntimeError("power cut")
    assert journal.get(txn).steps == ()
    assert store.ejournal.show() == []

    with store.db.transaction():
        journal.record_step(txn, "one")
        # An inner failure that the caller handles undoes only the inner block.
        with pytest.raises(DataError), store.db.transaction():
            journal.record_step(txn, "two")
            journal.record_step(txn, "three", {"x": 1.5})
        journal.record_step(txn, "four")
    assert [s.name for s in journal.get(txn).steps] == ["one", "four"]


def test_helpers_taking_a_connection_refuse_one_outside_a_transaction(store: Store) -> None:
    txn = store.txjournal.begin("deposit")
    with store.db.reading() as conn, pytest.raises(JournalError, match="inside"):
        store.txjournal.record_step_in(conn, txn, "x", None)
    other = sqlite3.connect(store.db.path)
    try:
        with pytest.raises(JournalError, match="inside"):
            store.outbox.enqueue_in(other, "msg", b"")
    finally:
        other.close()


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    s = Store(tmp_path, "T-0001", {"deposit": DEPOSIT})
    s.close()
    with pytest.raises(JournalError, match="closed"):
        s.txjournal.begin("deposit")

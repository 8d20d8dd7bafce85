"""Electronic journal: redaction, the HMAC chain, and tampering by someone with the database."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from branchline.agent.journal.ejournal import (
    GENESIS,
    EJournal,
    EJournalKeyError,
    entry_hash,
    head_mac,
)
from branchline.agent.journal.jsoncodec import DataError, canonical
from branchline.agent.journal.store import Store

PAN = "4012345678909"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path, "T-0001")
    yield s
    s.close()


def filled(store: Store, n: int = 5) -> Store:
    for i in range(1, n + 1):
        store.ejournal.append("event", {"i": i, "text": f"entry {i}"})
    return store


def sql(store: Store, statement: str, *args: object) -> None:
    """What a person with the database file (and not the key) can do."""
    with sqlite3.connect(store.db.path) as conn:
        conn.execute(statement, args)


def test_a_recordings_digest_is_journaled_whole_and_found_again(store: Store) -> None:
    """Its digits may form a Luhn-valid run: masked, the e-journal would no longer name the
    recording, and the spool's check for an entry already written would never match."""
    digest = "db76454a4b5eb60f691194d29564863028942b05f1f0dcefde17b767aca1bb5d"
    store.ejournal.append("recording", {"reference": "TXN-1", "sha256": digest, "note": PAN})
    (entry,) = store.ejournal.find("recording", "TXN-1")
    assert entry.fields()["sha256"] == digest and entry.fields()["note"] == "401234***8909"
    assert store.ejournal.verify().ok


def test_append_show_and_verify(store: Store) -> None:
    assert store.ejournal.verify().ok and store.ejournal.verify().entries == 0
    assert store.ejournal.append("card_inserted", {"amount": Decimal("1.10"), "s": 0.5}) == 1
    filled(store, 4)
    entries = store.ejournal.show()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert entries[0].fields() == {"amount": "1.10", "s": 0.5}
    assert entries[0].at.endswith("Z") and entries[0].kind == "card_inserted"
    report = store.ejournal.verify()
    assert (report.ok, report.entries, report.first_bad_seq, report.reason) == (True, 5, None, "")
    assert [e.seq for e in store.ejournal.show(limit=2)] == [4, 5]
    assert [e.seq for e in store.ejournal.show(since=2, limit=2)] == [2, 3]
    assert store.ejournal.show(since=9) == []


def test_fields_are_redacted_before_they_are_stored(store: Store) -> None:
    store.ejournal.append(
        "card_read",
        {"pan": PAN, "pin_block": "0412AC", "note": f"card {PAN}", "track2": f";{PAN}=2512?"},
    )
    with sqlite3.connect(store.db.path) as conn:
        stored = conn.execute("SELECT fields FROM ejournal").fetchone()[0]
    assert PAN not in stored and "0412AC" not in stored
    assert store.ejournal.show()[0].fields() == {
        "note": "card 401234***8909",
        "pan": "401234***8909",
        "pin_block": "[dropped]",
        "track2": "[dropped]",
    }


def test_bad_input_is_refused(store: Store) -> None:
    with pytest.raises(DataError, match="kind"):
        store.ejournal.append("", {})
    with pytest.raises(DataError, match=r"fields.x: nan is not a finite number"):
        store.ejournal.append("k", {"x": float("nan")})
    with pytest.raises(DataError, match="fields.x: set cannot be stored"):
        store.ejournal.append("k", {"x": {1}})
    with pytest.raises(DataError, match="since"):
        store.ejournal.show(since=0)
    assert store.ejournal.show() == []


def test_the_key_file_is_owner_only_and_guards_the_chain(tmp_path: Path, store: Store) -> None:
    filled(store, 1)
    key_path = tmp_path / "journal.key"
    assert key_path.stat().st_mode & 0o777 == 0o600 and len(key_path.read_bytes()) == 32

    key_path.write_bytes(b"\x00" * 32)  # another key
    fresh = EJournal(store.db, key_path)
    report = fresh.verify()
    assert not report.ok and "does not belong to this e-journal" in report.reason
    with pytest.raises(EJournalKeyError):
        fresh.append("x", {})

    key_path.unlink()
    fresh = EJournal(store.db, key_path)
    report = fresh.verify()
    assert not report.ok and report.first_bad_seq == 1 and "key is missing" in report.reason
    with pytest.raises(EJournalKeyError, match="restore the key file"):
        fresh.append("x", {})
    assert not key_path.exists()  # never silently replaced


def test_modified_entry_is_reported(store: Store) -> None:
    filled(store)
    sql(store, "UPDATE ejournal SET fields = ? WHERE seq = 3", canonical({"i": 3, "text": "ok"}))
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "entry modified" in report.reason and report.entries == 5


def test_corrupted_json_is_reported(store: Store) -> None:
    filled(store)
    sql(store, "UPDATE ejournal SET fields = '{\"i\": 2' WHERE seq = 2")
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "not a valid JSON object" in report.reason


@pytest.mark.parametrize(("seq", "reason"), [(1, "entry 1 is missing"), (3, "entry 3 is missing")])
def test_deleted_entry_is_reported(store: Store, seq: int, reason: str) -> None:
    filled(store)
    sql(store, "DELETE FROM ejournal WHERE seq = ?", seq)
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, seq)
    assert reason in report.reason and "deleted" in report.reason


def test_deleted_middle_entry_renumbered_is_reported(store: Store) -> None:
    filled(store)
    sql(store, "DELETE FROM ejournal WHERE seq = 3")
    sql(store, "UPDATE ejournal SET seq = seq - 1 WHERE seq > 3")
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_truncated_end_is_reported(store: Store) -> None:
    filled(store)
    sql(store, "DELETE FROM ejournal WHERE seq >= 4")
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "entries 4..5 are missing at the end" in report.reason
    # Moving the head back to the last remaining entry needs the key.
    with sqlite3.connect(store.db.path) as conn:
        last = conn.execute("SELECT hash FROM ejournal WHERE seq = 3").fetchone()[0]
        conn.execute("UPDATE ejournal_head SET seq = 3, hash = ?", (last,))
    report = store.ejournal.verify()
    assert not report.ok and "head record was modified" in report.reason


def test_reordered_entries_are_reported(store: Store) -> None:
    filled(store)
    with sqlite3.connect(store.db.path) as conn:
        rows = {r[0]: r[1:] for r in conn.execute("SELECT * FROM ejournal WHERE seq IN (2, 3)")}
        for seq, other in ((2, 3), (3, 2)):
            conn.execute(
                "UPDATE ejournal SET at = ?, kind = ?, fields = ?, prev_hash = ?, hash = ?"
                " WHERE seq = ?",
                (*rows[other], seq),
            )
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "prev_hash" in report.reason


def test_inserted_entry_is_reported_even_with_a_recomputed_plain_sha256(store: Store) -> None:
    filled(store, 3)
    with sqlite3.connect(store.db.path) as conn:
        prev = conn.execute("SELECT hash FROM ejournal WHERE seq = 3").fetchone()[0]
        at, fields = "2025-01-01T00:00:00.000000Z", canonical({"forged": True})
        record = canonical({"seq": 4, "at": at, "kind": "event", "fields": fields, "prev": prev})
        forged = hashlib.sha256(record.encode()).hexdigest()
        conn.execute(
            "INSERT INTO ejournal VALUES (4, ?, 'event', ?, ?, ?)", (at, fields, prev, forged)
        )
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "entry modified" in report.reason
    # With a correct-looking hash (as if computed with the key), the head still gives it away.
    key = store.ejournal.key_path.read_bytes()
    sql(
        store,
        "UPDATE ejournal SET hash = ? WHERE seq = 4",
        entry_hash(key, 4, at, "event", fields, prev),
    )
    report = store.ejournal.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "not appended by the journal" in report.reason


def test_entry_replaced_with_a_valid_mac_breaks_the_next_link(store: Store) -> None:
    filled(store)
    key = store.ejournal.key_path.read_bytes()  # an attacker who also stole the key ...
    entry = store.ejournal.show(since=2, limit=1)[0]
    fields = canonical({"i": 2, "text": "changed"})
    digest = entry_hash(key, 2, entry.at, entry.kind, fields, entry.prev_hash)
    sql(store, "UPDATE ejournal SET fields = ?, hash = ? WHERE seq = 2", fields, digest)
    report = store.ejournal.verify()  # ... must still rewrite every later entry
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "prev_hash does not match the hash of entry 2" in report.reason


def test_head_mac_covers_seq_and_hash() -> None:
    key = b"k" * 32
    assert head_mac(key, 1, "a") != head_mac(key, 2, "a") != head_mac(key, 1, "b")


def test_verify_reads_a_snapshot_and_does_not_wait_for_an_open_write(store: Store) -> None:
    filled(store, 2)
    with store.db.transaction():
        store.ejournal.append("event", {"i": 3})
        report = store.ejournal.verify()  # would deadlock or see half a commit otherwise
    assert (report.ok, report.entries) == (True, 2)
    assert store.ejournal.verify().entries == 3

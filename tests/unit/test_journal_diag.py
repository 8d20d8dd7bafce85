"""``branchline-diag journal verify|show`` and ``outbox``: the RPC functions and the output,
over a real store with a stand-in for the agent's socket."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from branchline.agent import diag
from branchline.agent.journal import rpc
from branchline.agent.journal.diag_cmds import EXIT_TAMPERED, age_text
from branchline.agent.journal.store import Store
from branchline.agent.journal.txjournal import StateMachine
from branchline.common.errors import InvalidArgument
from branchline.v1 import agent_local_pb2 as pb


class Clock:
    t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


class LocalStub:
    """What the agent's servicer answers, without the socket."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def VerifyJournal(self, request: pb.VerifyJournalRequest, timeout: float) -> Any:
        return rpc.verify_journal(self.store)

    def ShowJournal(self, request: pb.ShowJournalRequest, timeout: float) -> Any:
        return rpc.show_journal(self.store, request)

    def ListOutbox(self, request: pb.ListOutboxRequest, timeout: float) -> Any:
        return rpc.list_outbox(self.store, request)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path, "T-0001", now=Clock())
    for i in range(1, 4):
        s.ejournal.append("event", {"i": i})
    yield s
    s.close()


def run(store: Store, *argv: str) -> int:
    args = diag.build_parser().parse_args(list(argv))
    stub: Any = LocalStub(store)
    if args.command == "journal":
        return diag.diag_cmds.run_journal(stub, args, 5.0)
    return diag.diag_cmds.run_outbox(stub, args, 5.0)


def test_verify_ok_and_tampered(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, "journal", "verify") == 0
    assert "e-journal OK: 3 entries" in capsys.readouterr().out
    with sqlite3.connect(store.db.path) as conn:
        conn.execute("""UPDATE ejournal SET fields = '{"i":20}' WHERE seq = 2""")
    assert run(store, "journal", "verify") == EXIT_TAMPERED
    out = capsys.readouterr().out
    assert "TAMPERED at entry 2: hash does not match" in out and '{"i":20}' in out
    assert run(store, "journal", "verify", "--json") == EXIT_TAMPERED
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["entries"], data["first_bad_seq"]) == (False, 3, 2)
    assert data["bad_entry"]["fields"] == {"i": 20}


def test_verify_reports_a_deleted_entry_without_a_bad_entry(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store.db.path) as conn:
        conn.execute("DELETE FROM ejournal WHERE seq = 2")
    assert run(store, "journal", "verify", "--json") == EXIT_TAMPERED
    data = json.loads(capsys.readouterr().out)
    assert data["first_bad_seq"] == 2 and "entry 2 is missing" in data["reason"]
    assert data["bad_entry"] is None


def test_show(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, "journal", "show", "--since", "2", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(e["seq"], e["kind"], e["fields"]) for e in data["entries"]] == [
        (2, "event", {"i": 2}),
        (3, "event", {"i": 3}),
    ]
    assert run(store, "journal", "show", "--limit", "1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].split()[0] == "3"
    with pytest.raises(InvalidArgument, match="limit: at most 1000") as refused:
        rpc.show_journal(store, pb.ShowJournalRequest(limit=5000))
    assert refused.value.field == "limit"


def test_outbox(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(store, "outbox") == 0
    assert "outbox empty" in capsys.readouterr().out
    for n in range(3):
        store.outbox.enqueue("deposit_request", b"x" * n)
    store.outbox.mark_acknowledged(1, b"ok")
    Clock.t += 75
    store.outbox.mark_attempt(2, "UNAVAILABLE")
    assert run(store, "outbox") == 0
    out = capsys.readouterr().out
    assert "2 waiting, oldest 1m15s; 1 acknowledged, last seq 3" in out
    assert "T-0001:2" in out and "UNAVAILABLE" in out and "T-0001:1" not in out
    assert run(store, "outbox", "--json", "--limit", "1") == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["pending"], data["acknowledged"], data["last_seq"]) == (2, 1, 3)
    assert data["messages"] == [
        {
            "seq": 2,
            "key": "T-0001:2",
            "kind": "deposit_request",
            "age_seconds": 75.0,
            "attempts": 1,
            "last_error": "UNAVAILABLE",
            "txn_id": "",
            "size": 1,
        }
    ]


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["journal", "show", "--limit", "0"], ["journal", "show", "--since", "x"]):
        with pytest.raises(SystemExit) as info:
            diag.build_parser().parse_args(argv)
        assert info.value.code == 2
    assert "expected a whole number" in capsys.readouterr().err


def test_age_text() -> None:
    assert [age_text(s) for s in (0.04, 59.9, 61, 3600 * 5 + 120)] == [
        "0.0s",
        "59.9s",
        "1m01s",
        "5h02m",
    ]


def test_outbox_shows_what_the_journal_keeps_until_retention(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the journal retention deletes in time: acknowledged messages and finished
    transactions, with how long ago the oldest was acknowledged / finished."""
    assert run(store, "outbox") == 0
    assert "kept until retention: 0 acknowledged messages; 0 finished transactions" in (
        capsys.readouterr().out
    )
    machine = StateMachine("started", {"started": frozenset({"done"})}, frozenset({"done"}))
    store.txjournal.define("deposit", machine)
    txn = store.txjournal.begin("deposit", {})
    _, seq, _ = store.record_step_and_enqueue(txn, "send", {}, "deposit_request", b"x")
    store.outbox.mark_acknowledged(seq, b"ok")
    store.txjournal.set_state(txn, "done")
    store.txjournal.begin("deposit", {})  # unfinished: not counted
    Clock.t += 3 * 86_400 + 3600
    store.outbox.enqueue("deposit_request", b"y")
    assert run(store, "outbox") == 0
    out = capsys.readouterr().out
    assert (
        "kept until retention: 1 acknowledged messages, oldest acknowledged 3d01h ago; "
        "1 finished transactions, oldest finished 3d01h ago"
    ) in out
    assert run(store, "outbox", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["finished_transactions"] == 1
    assert (
        data["oldest_finished_age_seconds"]
        == data["oldest_acknowledged_age_seconds"]
        == (3 * 86_400 + 3600)
    )
    assert [age_text(s) for s in (47 * 3600 + 60, 48 * 3600, 8 * 86_400 + 7200)] == [
        "47h01m",
        "2d00h",
        "8d02h",
    ]

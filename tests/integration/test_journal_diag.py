"""``branchline-diag journal verify|show`` and ``outbox`` against a real agent process.

The tool's ``main`` runs in the test's process (cli_support): the agent is the process under
test, and a Python start-up per look was most of this test's time."""

from __future__ import annotations

import json
import sqlite3
import subprocess

from branchline.agent.diag import main as diag_main
from branchline.agent.journal.store import Store
from tests.integration.cli_support import run_main
from tests.integration.stack import Stack


def diag(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_main(diag_main, ["--socket", str(stack.agent_socket), *args])


def test_journal_and_outbox_through_a_real_agent(stack: Stack) -> None:
    stack.devices = ()
    stack.required_devices = ()
    stack.start_agent()
    assert diag(stack, "journal", "verify").returncode == 0  # empty: nothing to verify yet

    # Written as the transaction engine would, through a second connection to the same file.
    store = Store(stack.state_dir, stack.terminal_id)
    try:
        for i in range(1, 4):
            store.ejournal.append("event", {"i": i, "pan": "4012345678909"})
        store.outbox.enqueue("deposit_request", b"\x01\x02")
        store.outbox.enqueue("deposit_confirm", b"\x03")
        store.outbox.mark_acknowledged(1, b"ok")
    finally:
        store.close()

    ok = diag(stack, "journal", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 entries" in ok.stdout
    shown = diag(stack, "journal", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)["entries"]
    assert [e["fields"] for e in entries] == [{"i": i, "pan": "401234***8909"} for i in (1, 2, 3)]
    outbox = diag(stack, "outbox", "--json")
    assert outbox.returncode == 0, outbox.stderr
    data = json.loads(outbox.stdout)
    assert data["pending"] == 1 and data["last_seq"] == 2
    assert [(m["seq"], m["key"], m["kind"]) for m in data["messages"]] == [
        (2, "T-0001:2", "deposit_confirm")
    ]

    with sqlite3.connect(stack.state_dir / "journal.db") as conn:
        conn.execute("""UPDATE ejournal SET fields = '{"i":2}' WHERE seq = 2""")
    tampered = diag(stack, "journal", "verify")
    assert tampered.returncode == 4, tampered.stdout + tampered.stderr
    assert "TAMPERED at entry 2" in tampered.stdout and "entry modified" in tampered.stdout
    as_json = json.loads(diag(stack, "journal", "verify", "--json").stdout)
    assert (as_json["ok"], as_json["first_bad_seq"]) == (False, 2)
    refused = diag(stack, "journal", "show", "--limit", "5000")
    assert refused.returncode == 1
    assert "INVALID_ARGUMENT (field limit): limit: at most 1000" in refused.stderr, refused.stderr
    as_json = json.loads(diag(stack, "journal", "show", "--limit", "5000", "--json").stdout)
    assert as_json["error"]["field"] == "limit" and as_json["error"]["reason"] == "out_of_range"

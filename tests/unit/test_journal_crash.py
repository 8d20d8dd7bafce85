"""Crash tests: a child writing journal steps, outbox messages and e-journal entries is killed
with SIGKILL at random points; after each kill the store must hold every committed round
whole, nothing half-written, gapless sequences and an e-journal that verifies."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from branchline.agent.journal.store import Store

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("journal_crash_child.py")
ROUNDS = 10


def spawn(state_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        assert proc.stderr is not None
        raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read()}")
    return line.strip()


def check_store(state_dir: Path, confirmed: set[int]) -> int:
    """Every round in ``confirmed`` is done; any other round is whole or absent."""
    store = Store(state_dir, "T-CRASH")
    try:
        with store.db.reading() as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            txns = conn.execute("SELECT id, state, finished, data FROM txn").fetchall()
            steps: dict[str, list[str]] = {}
            for row in conn.execute("SELECT txn_id, step, name FROM txn_step ORDER BY step"):
                steps.setdefault(row["txn_id"], []).append(row["name"])
            outbox = conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
            counter = conn.execute("SELECT value FROM counters WHERE name = 'outbox'").fetchone()
        rounds = {json.loads(t["data"])["i"]: t for t in txns}
        assert sorted(rounds) == list(range(len(rounds))), "rounds are not gapless"
        messages = {m["txn_id"]: m for m in outbox}
        assert len(messages) == len(outbox), "a step got two messages"
        entries = store.ejournal.show(since=1, limit=1_000_000)
        logged = {e.fields()["txn"]: e for e in entries}
        assert len(logged) == len(entries)

        for i, txn in rounds.items():
            names = steps.get(txn["id"], [])
            assert names in ([], ["send"], ["send", "state"]), (i, names)
            assert (txn["state"] == "done") == (names == ["send", "state"]) == bool(txn["finished"])
            if i in confirmed:
                assert txn["state"] == "done", f"confirmed round {i} lost"
            if "send" in names:  # the step, its message and its entry: all or nothing
                message = messages[txn["id"]]
                assert bytes(message["payload"]) == f"m{i}".encode()
                assert message["key"] == f"T-CRASH:{message['seq']}"
                assert logged[txn["id"]].fields()["i"] == i
                if i % 2 and txn["state"] == "done":
                    assert bytes(message["response"]) == f"r{i}".encode()
            else:
                assert txn["id"] not in messages and txn["id"] not in logged

        assert [m["seq"] for m in outbox] == list(range(1, len(outbox) + 1))
        assert (counter[0] if counter else 0) == len(outbox)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        report = store.ejournal.verify()
        assert report.ok, report
        unfinished = {t.id for t in store.txjournal.unfinished()}
        assert unfinished == {t["id"] for t in txns if t["state"] != "done"}
        return len(rounds)
    finally:
        store.close()


def test_sigkill_at_random_points_leaves_every_commit_whole(tmp_path: Path) -> None:
    rng = random.Random(6_2025)
    confirmed: set[int] = set()
    kills_mid_run = 0
    for round_no in range(ROUNDS):
        proc = spawn(tmp_path)
        try:
            if round_no % 4 == 3:
                # Anywhere from interpreter start-up through opening (and migrating) the store.
                time.sleep(rng.uniform(0.0, 0.2))
            else:
                assert read_line(proc) == "ready"
                for _ in range(rng.randint(0, 20)):
                    confirmed.add(int(read_line(proc)))
                time.sleep(rng.uniform(0.0, 0.005))
                kills_mid_run += 1
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        check_store(tmp_path, confirmed)
    assert kills_mid_run >= ROUNDS // 2 and len(confirmed) > 20

"""Child process for the crash tests: writes to the journal store in a loop until killed.

``python journal_crash_child.py STATE_DIR`` continues from what the store holds. Each round i:

1. ``begin("crash", {"i": i})``
2. one commit: step ``send`` + outbox message ``m<i>`` + e-journal entry ``sent`` {"i": i}
3. every other round, acknowledge the message with ``r<i>``
4. ``set_state(txn, "done")``
5. print ``i`` (so the parent knows round i was committed in full)
"""

from __future__ import annotations

import sys
from pathlib import Path

from branchline.agent.journal.store import Store
from branchline.agent.journal.txjournal import StateMachine

TERMINAL = "T-CRASH"
MACHINE = StateMachine("started", {"started": frozenset({"done"})}, frozenset({"done"}))


def main(state_dir: Path) -> None:
    store = Store(state_dir, TERMINAL, {"crash": MACHINE})
    with store.db.reading() as conn:
        i = int(conn.execute("SELECT COUNT(*) FROM txn").fetchone()[0])
    print("ready", flush=True)
    while True:
        txn = store.txjournal.begin("crash", {"i": i})
        with store.db.transaction():
            _, seq, _ = store.record_step_and_enqueue(
                txn, "send", {"i": i}, "msg", f"m{i}".encode()
            )
            store.ejournal.append("sent", {"i": i, "txn": txn})
        if i % 2:
            store.outbox.mark_acknowledged(seq, f"r{i}".encode())
        store.txjournal.set_state(txn, "done")
        print(i, flush=True)
        i += 1


if __name__ == "__main__":
    main(Path(sys.argv[1]))

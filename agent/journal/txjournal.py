"""Write-ahead journal of transactions: each step is recorded BEFORE it is acted on.

The engine defines one ``StateMachine`` per transaction kind (``define`` or the constructor);
``set_state`` refuses a transition its table does not allow, and reaching a final state marks
the transaction finished. ``unfinished()`` lists what the agent must recover on start.

Data is JSON with Decimal amounts as strings; card secrets are refused (see ``jsoncodec``).
Every state change is also journaled as a step named ``state`` ({"from", "to"}), so the
steps are the whole history.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .db import CorruptRecord, Database, JournalError
from .jsoncodec import DataError, decode_object, encode_txn_data

NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
STATE_STEP = "state"


class UnknownTransaction(JournalError, LookupError):
    pass


class UnknownKind(JournalError, LookupError):
    pass


class TransitionNotAllowed(JournalError):
    pass


class TransactionFinished(JournalError):
    pass


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise DataError(
            f"{what}: {value!r} is not a name (lower-case letter, then letters, digits, "
            "'_', '.', '-'; at most 64)"
        )
    return value


@dataclass(frozen=True)
class StateMachine:
    """``transitions[state]`` = the states it may go to; ``final`` states end the transaction."""

    initial: str
    transitions: Mapping[str, frozenset[str]]
    final: frozenset[str]

    def __post_init__(self) -> None:
        known = set(self.transitions) | set(self.final)
        for state in known:
            check_name(state, "state")
        if self.initial not in known:
            raise ValueError(f"initial state {self.initial!r} is not in the table")
        if self.initial in self.final:
            raise ValueError(f"initial state {self.initial!r} must not be final")
        for state, targets in self.transitions.items():
            if state in self.final and targets:
                raise ValueError(f"final state {state!r} must not have transitions")
            unknown = set(targets) - known
            if unknown:
                raise ValueError(f"{state!r} goes to unknown states {sorted(unknown)}")

    def allows(self, source: str, target: str) -> bool:
        return target in self.transitions.get(source, frozenset())


@dataclass(frozen=True)
class Step:
    number: int
    name: str
    data: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Transaction:
    id: str
    kind: str
    state: str
    finished: bool
    terminal_id: str
    data: dict[str, Any]
    created_at: float
    updated_at: float
    steps: tuple[Step, ...] = ()
    # Set by ``unfinished()`` when a record could not be decoded: recovery must still see it
    # (to hand it to a teller) rather than fail on it.
    problem: str = ""

    @property
    def last_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None


@dataclass
class TxJournal:
    db: Database
    terminal_id: str
    machines: dict[str, StateMachine] = field(default_factory=dict)

    def define(self, kind: str, machine: StateMachine) -> None:
        self.machines[check_name(kind, "kind")] = machine

    def _machine(self, kind: str) -> StateMachine:
        machine = self.machines.get(kind)
        if machine is None:
            known = ", ".join(sorted(self.machines)) or "none"
            raise UnknownKind(f"kind: no state machine for {kind!r} (defined: {known})")
        return machine

    # -- writes ---------------------------------------------------------------------------

    def begin(self, kind: str, data: Mapping[str, Any] | None = None) -> str:
        """A new transaction in its kind's initial state; returns its id."""
        with self.db.transaction() as conn:
            return self.begin_in(conn, kind, data)

    def begin_in(
        self,
        conn: sqlite3.Connection,
        kind: str,
        data: Mapping[str, Any] | None = None,
        txn_id: str | None = None,
    ) -> str:
        """``begin`` inside a transaction the caller holds open, so that the transaction's
        first step and its first outbox message commit with it."""
        self.db.require_transaction(conn)
        machine = self._machine(kind)
        text = encode_txn_data(data, "data")
        # The dashed form: its digit runs are at most 12 long, so the redaction rule (13-19
        # digits passing Luhn) never mistakes an id for a PAN in logs and the e-journal.
        txn_id = txn_id or str(uuid.uuid4())
        now = self.db.now()
        conn.execute(
            "INSERT INTO txn (id, kind, state, finished, terminal_id, data, created_at,"
            " updated_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?)",
            (txn_id, kind, machine.initial, self.terminal_id, text, now, now),
        )
        return txn_id

    def _open_row(self, conn: sqlite3.Connection, txn_id: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT kind, state, finished FROM txn WHERE id = ?", (str(txn_id),)
        ).fetchone()
        if row is None:
            raise UnknownTransaction(f"txn_id: no transaction {txn_id!r}")
        if row["finished"]:
            raise TransactionFinished(
                f"transaction {txn_id} is finished (state {row['state']}); nothing more is journaled"
            )
        return row

    def record_step_in(
        self, conn: sqlite3.Connection, txn_id: str, step: str, data: Mapping[str, Any] | None
    ) -> int:
        """``record_step`` inside a transaction the caller holds open (to join other writes)."""
        self.db.require_transaction(conn)
        check_name(step, "step")
        text = encode_txn_data(data, "data")
        self._open_row(conn, txn_id)
        return self._insert_step(conn, txn_id, step, text)

    def _insert_step(self, conn: sqlite3.Connection, txn_id: str, step: str, text: str) -> int:
        now = self.db.now()
        number = int(
            conn.execute(
                "SELECT COALESCE(MAX(step), 0) + 1 FROM txn_step WHERE txn_id = ?", (txn_id,)
            ).fetchone()[0]
        )
        conn.execute(
            "INSERT INTO txn_step (txn_id, step, name, data, at) VALUES (?, ?, ?, ?, ?)",
            (txn_id, number, step, text, now),
        )
        conn.execute("UPDATE txn SET updated_at = ? WHERE id = ?", (now, txn_id))
        return number

    def record_step(self, txn_id: str, step: str, data: Mapping[str, Any] | None = None) -> int:
        """Journal a step (durable on return); returns its number (1, 2, ... per transaction)."""
        with self.db.transaction() as conn:
            return self.record_step_in(conn, txn_id, step, data)

    def set_state(self, txn_id: str, state: str, data: Mapping[str, Any] | None = None) -> int:
        """Move to ``state`` if the kind's table allows it; journaled as a ``state`` step."""
        with self.db.transaction() as conn:
            return self.set_state_in(conn, txn_id, state, data)

    def set_state_in(
        self,
        conn: sqlite3.Connection,
        txn_id: str,
        state: str,
        data: Mapping[str, Any] | None = None,
    ) -> int:
        """``set_state`` inside a transaction the caller holds open."""
        self.db.require_transaction(conn)
        row = self._open_row(conn, txn_id)
        machine = self._machine(row["kind"])
        source = row["state"]
        if not machine.allows(source, state):
            allowed = ", ".join(sorted(machine.transitions.get(source, ()))) or "none"
            raise TransitionNotAllowed(
                f"state: {row['kind']} transaction {txn_id} cannot go from {source!r} "
                f"to {state!r} (allowed: {allowed})"
            )
        text = encode_txn_data({**(data or {}), "from": source, "to": state}, "data")
        number = self._insert_step(conn, txn_id, STATE_STEP, text)
        conn.execute(
            "UPDATE txn SET state = ?, finished = ? WHERE id = ?",
            (state, int(state in machine.final), txn_id),
        )
        return number

    # -- reads ----------------------------------------------------------------------------

    def _load(self, conn: sqlite3.Connection, row: sqlite3.Row) -> Transaction:
        txn_id = row["id"]
        steps = tuple(
            Step(
                number=s["step"],
                name=s["name"],
                data=decode_object(s["data"], f"transaction {txn_id} step {s['step']} data"),
                at=s["at"],
            )
            for s in conn.execute(
                "SELECT step, name, data, at FROM txn_step WHERE txn_id = ? ORDER BY step",
                (txn_id,),
            )
        )
        for expected, step in enumerate(steps, start=1):
            if step.number != expected:
                raise CorruptRecord(f"transaction {txn_id}: step {expected} is missing")
        return Transaction(
            id=txn_id,
            kind=row["kind"],
            state=row["state"],
            finished=bool(row["finished"]),
            terminal_id=row["terminal_id"],
            data=decode_object(row["data"], f"transaction {txn_id} data"),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            steps=steps,
        )

    def get(self, txn_id: str) -> Transaction:
        """The transaction with its steps; ``CorruptRecord`` if a stored record is damaged."""
        with self.db.reading() as conn:
            row = conn.execute("SELECT * FROM txn WHERE id = ?", (str(txn_id),)).fetchone()
            if row is None:
                raise UnknownTransaction(f"txn_id: no transaction {txn_id!r}")
            return self._load(conn, row)

    def unfinished(self) -> list[Transaction]:
        """Every transaction not in a final state, oldest first (recovery on start).

        A damaged record comes back with ``problem`` set and what could be read, never raises.
        """
        out: list[Transaction] = []
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM txn WHERE finished = 0 ORDER BY created_at, id"
            ).fetchall()
            for row in rows:
                try:
                    out.append(self._load(conn, row))
                except CorruptRecord as exc:
                    out.append(
                        Transaction(
                            id=row["id"],
                            kind=row["kind"],
                            state=row["state"],
                            finished=False,
                            terminal_id=row["terminal_id"],
                            data={},
                            created_at=row["created_at"],
                            updated_at=row["updated_at"],
                            problem=str(exc),
                        )
                    )
        return out

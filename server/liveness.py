"""Liveness of the terminals connected to this replica, kept in memory off the hot path.

Every message a stream receives is a sign of life (``seen``), noted in memory at receipt —
before the message waits for the applier — and so is a message still being applied
(``busy``): a terminal whose messages wait in a saturated queue is alive. A heartbeat is
answered at once and only remembered (``heartbeat``). ``flush`` writes what changed to the
fleet registry in one go (``last_seen_at`` of the terminals seen, and each heartbeat's
service state, with its events); the heartbeat sweep flushes first and never marks offline
a terminal this replica knows to be alive (``alive``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from branchline.server import fleet_registry as registry


@dataclass
class _Seen:
    at: float  # monotonic
    wall: datetime
    state: str | None = None  # the last heartbeat's service state, until flushed
    flushed_state: str | None = None  # the service state last written to the registry
    dirty: bool = True
    busy: int = 0  # messages received and not yet answered


class Liveness:
    def __init__(self) -> None:
        self._terminals: dict[str, _Seen] = {}

    def seen(self, terminal_id: str) -> None:
        """A message from the terminal arrived (any message, now)."""
        entry = self._terminals.get(terminal_id)
        now, wall = time.monotonic(), datetime.now(UTC)
        if entry is None:
            self._terminals[terminal_id] = _Seen(now, wall)
            return
        entry.at, entry.wall, entry.dirty = now, wall, True

    def heartbeat(self, terminal_id: str, service_state: str) -> None:
        self.seen(terminal_id)
        self._terminals[terminal_id].state = service_state

    def begin(self, terminal_id: str) -> None:
        """A message of the terminal is being applied (alive until ``end``)."""
        self.seen(terminal_id)
        self._terminals[terminal_id].busy += 1

    def end(self, terminal_id: str) -> None:
        entry = self._terminals.get(terminal_id)
        if entry is not None and entry.busy > 0:
            entry.busy -= 1

    def forget(self, terminal_id: str) -> None:
        """Its stream ended here."""
        self._terminals.pop(terminal_id, None)

    def alive(self, timeout: float) -> list[str]:
        """Terminals that sent something within ``timeout`` s or have a message in hand."""
        cutoff = time.monotonic() - timeout
        return sorted(t for t, e in self._terminals.items() if e.busy or e.at >= cutoff)

    def take_changes(self) -> tuple[dict[str, str], list[str], datetime]:
        """What to flush: heartbeat states by terminal, the terminals only seen, and the time
        to record (now). A terminal with a message in hand counts as seen now."""
        states: dict[str, str] = {}
        touched: list[str] = []
        now = datetime.now(UTC)
        for terminal_id, entry in self._terminals.items():
            if not (entry.dirty or entry.busy):
                continue
            if entry.state is not None and entry.state != entry.flushed_state:
                states[terminal_id] = entry.state  # a change: written with its event
                entry.flushed_state = entry.state
            else:
                touched.append(terminal_id)  # the same state: last_seen_at only
            entry.state, entry.dirty = None, False
        return states, touched, now

    def restore(self, states: dict[str, str], touched: list[str]) -> None:
        """A flush failed: keep its changes for the next one."""
        for terminal_id, state in states.items():
            entry = self._terminals.get(terminal_id)
            if entry is not None:
                entry.dirty = True
                entry.state = entry.state or state
                entry.flushed_state = None
        for terminal_id in touched:
            entry = self._terminals.get(terminal_id)
            if entry is not None:
                entry.dirty = True


def flush(engine: Engine, states: dict[str, str], touched: list[str], now: datetime) -> None:
    """Write one round of liveness (in the caller's batch, or a transaction of its own)."""
    for terminal_id, state in sorted(states.items()):
        registry.record_heartbeat(engine, terminal_id, state, now)
    if touched:
        registry.touch_terminals(engine, touched, now)

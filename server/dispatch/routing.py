"""Routing decisions, pure: who gets a task, which queued task a free teller takes.

No database and no clock here: the service hands in the candidates it read under locks
and carries out the decision. Unit tests and the benchmark call these directly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from branchline.server.dispatch.model import LEAST_HANDLED, LONGEST_IDLE, RANDOM, STRATEGIES

OFFER = "offer"  # offer the task to one idle teller
LOBBY = "lobby"  # ask a lobby manager of the branch to designate a teller
QUEUE = "queue"  # nobody can take it now: it waits in the branch queue


@dataclass(frozen=True)
class TellerCandidate:
    teller_id: str
    skills: frozenset[str]
    on_duty: bool
    away: bool
    load: int
    idle_since: datetime
    handled: int

    @property
    def free(self) -> bool:
        return self.on_duty and not self.away and self.load == 0


@dataclass(frozen=True)
class ManagerCandidate:
    manager_id: str
    # Tasks of the branch already waiting for this manager's designation.
    pending: int


@dataclass(frozen=True)
class QueuedTask:
    task_id: str
    business_type: str
    created_at: datetime
    # Tellers who rejected the task or let its offer expire: never offered it again.
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    action: str
    teller_id: str | None = None
    manager_id: str | None = None
    # Why, for the task's event log.
    reason: str = ""


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"routing strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    return strategy


def choose_teller(
    candidates: Iterable[TellerCandidate],
    skill: str,
    strategy: str = LONGEST_IDLE,
    excluded: frozenset[str] = frozenset(),
    rng: random.Random | None = None,
) -> TellerCandidate | None:
    """The free teller with ``skill`` that ``strategy`` prefers, None if there is none.

    Ties break on the teller id, so the same inputs always give the same answer
    (except under the random strategy).
    """
    eligible = [
        c for c in candidates if c.free and skill in c.skills and c.teller_id not in excluded
    ]
    if not eligible:
        return None
    if strategy == LONGEST_IDLE:
        return min(eligible, key=lambda c: (c.idle_since, c.teller_id))
    if strategy == LEAST_HANDLED:
        return min(eligible, key=lambda c: (c.handled, c.idle_since, c.teller_id))
    if strategy == RANDOM:
        eligible.sort(key=lambda c: c.teller_id)
        return (rng or random).choice(eligible)
    check_strategy(strategy)
    return None  # unreachable: check_strategy raised


def choose_manager(managers: Sequence[ManagerCandidate]) -> ManagerCandidate | None:
    """The on-duty lobby manager with the fewest tasks already waiting for them."""
    return min(managers, key=lambda m: (m.pending, m.manager_id)) if managers else None


def route(
    skill: str,
    tellers: Iterable[TellerCandidate],
    managers: Sequence[ManagerCandidate],
    strategy: str = LONGEST_IDLE,
    excluded: frozenset[str] = frozenset(),
    rng: random.Random | None = None,
) -> Decision:
    """Where a task with business type ``skill`` goes next."""
    teller = choose_teller(tellers, skill, strategy, excluded, rng)
    if teller is not None:
        return Decision(OFFER, teller_id=teller.teller_id, reason=f"idle teller ({strategy})")
    manager = choose_manager(managers)
    if manager is not None:
        return Decision(
            LOBBY,
            manager_id=manager.manager_id,
            reason=f"no idle teller with skill {skill}: lobby manager designates",
        )
    return Decision(QUEUE, reason=f"no idle teller with skill {skill} and no lobby manager on duty")


def choose_task(queue: Iterable[QueuedTask], teller: TellerCandidate) -> QueuedTask | None:
    """The oldest queued task a free ``teller`` can take, None if none (or not free)."""
    if not teller.free:
        return None
    best: QueuedTask | None = None
    for task in queue:
        if task.business_type not in teller.skills or teller.teller_id in task.excluded:
            continue
        if best is None or (task.created_at, task.task_id) < (best.created_at, best.task_id):
            best = task
    return best

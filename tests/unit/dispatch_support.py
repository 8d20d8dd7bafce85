"""The dispatch service's cast for unit tests: the mobile counter MC-1, tellers T1..T3 and
lobby manager L1 of branch B, a clock the test moves, and the branches and staff populated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from branchline.server.dispatch.model import LOBBY, TELLER, Actor
from branchline.server.dispatch.tasks import DispatchService

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MC = Actor("terminal", "MC-1")
L1 = Actor(LOBBY, "L1")


def teller(teller_id: str) -> Actor:
    return Actor(TELLER, teller_id)


T1, T2, T3 = teller("T1"), teller("T2"), teller("T3")


@dataclass
class Clock:
    now: datetime = T0
    history: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def populate(service: DispatchService, clock: Clock | None = None) -> None:
    """Branch A (the mobile counter's), branch B with tellers T1..T3 and lobby manager L1."""
    service.add_branch("A", "North")
    service.add_branch("B", "South")
    for teller_id in ("T1", "T2", "T3"):
        service.add_teller(teller_id, f"Teller {teller_id}", "B", ["loan", "account_opening"])
    service.add_teller("T9", "Teller T9", "A", ["loan"])
    service.add_lobby_manager("L1", "Lobby L1", "B")
    service.add_lobby_manager("L9", "Lobby L9", "A")

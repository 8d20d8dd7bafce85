"""Routing decisions, pure: no database, no clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from branchline.server.dispatch import routing
from branchline.server.dispatch.routing import (
    ManagerCandidate,
    QueuedTask,
    TellerCandidate,
    choose_task,
    choose_teller,
    route,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def teller(
    teller_id: str,
    idle_minutes: float = 0,
    skills: tuple[str, ...] = ("loan",),
    *,
    on_duty: bool = True,
    away: bool = False,
    load: int = 0,
    handled: int = 0,
) -> TellerCandidate:
    return TellerCandidate(
        teller_id=teller_id,
        skills=frozenset(skills),
        on_duty=on_duty,
        away=away,
        load=load,
        idle_since=T0 - timedelta(minutes=idle_minutes),
        handled=handled,
    )


def test_longest_idle_first() -> None:
    tellers = [teller("A", 5), teller("B", 30), teller("C", 10)]
    chosen = choose_teller(tellers, "loan")
    assert chosen is not None and chosen.teller_id == "B"


def test_only_free_tellers_with_the_skill() -> None:
    tellers = [
        teller("off", 99, on_duty=False),
        teller("away", 98, away=True),
        teller("busy", 97, load=1),
        teller("fx", 96, skills=("fx",)),
        teller("ok", 1),
    ]
    chosen = choose_teller(tellers, "loan")
    assert chosen is not None and chosen.teller_id == "ok"
    assert choose_teller(tellers[:4], "loan") is None


def test_excluded_tellers_are_skipped() -> None:
    tellers = [teller("A", 30), teller("B", 10)]
    chosen = choose_teller(tellers, "loan", excluded=frozenset({"A"}))
    assert chosen is not None and chosen.teller_id == "B"


def test_ties_break_on_id_so_decisions_are_stable() -> None:
    tellers = [teller("B", 10), teller("A", 10)]
    chosen = choose_teller(tellers, "loan")
    assert chosen is not None and chosen.teller_id == "A"


def test_least_handled_strategy() -> None:
    tellers = [teller("A", 60, handled=9), teller("B", 1, handled=2), teller("C", 5, handled=2)]
    chosen = choose_teller(tellers, "loan", "least_handled")
    assert chosen is not None and chosen.teller_id == "C"


def test_random_strategy_picks_among_free_ones() -> None:
    tellers = [teller(f"T{i}", i) for i in range(5)] + [teller("busy", 99, load=1)]
    rng = random.Random(3)
    picked = {choose_teller(tellers, "loan", "random", rng=rng).teller_id for _ in range(200)}  # type: ignore[union-attr]
    assert picked == {f"T{i}" for i in range(5)}


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="routing strategy 'fastest'"):
        choose_teller([teller("A")], "loan", "fastest")


def test_route_offer_lobby_or_queue() -> None:
    decision = route("loan", [teller("A", 3)], [ManagerCandidate("L1", 0)])
    assert decision.action == routing.OFFER and decision.teller_id == "A"
    decision = route(
        "loan", [teller("A", 3, load=1)], [ManagerCandidate("L2", 4), ManagerCandidate("L1", 1)]
    )
    assert decision.action == routing.LOBBY and decision.manager_id == "L1"
    assert "no idle teller with skill loan" in decision.reason
    decision = route("loan", [], [])
    assert decision.action == routing.QUEUE


def test_free_teller_takes_oldest_task_it_can() -> None:
    queue = [
        QueuedTask("t3", "loan", T0 + timedelta(seconds=3)),
        QueuedTask("t1", "fx", T0 + timedelta(seconds=1)),
        QueuedTask("t2", "loan", T0 + timedelta(seconds=2), excluded=frozenset({"A"})),
        QueuedTask("t4", "loan", T0 + timedelta(seconds=4)),
    ]
    chosen = choose_task(queue, teller("A"))
    assert chosen is not None and chosen.task_id == "t3"
    chosen = choose_task(queue, teller("B", skills=("loan", "fx")))
    assert chosen is not None and chosen.task_id == "t1"
    assert choose_task(queue, teller("A", load=1)) is None
    assert choose_task(queue, teller("A", skills=("cards",))) is None

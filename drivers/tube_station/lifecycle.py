"""The life cycle of one tube carrier: a pure transition table plus timeout checks.

The happy path is EMPTY -> LOADED -> SENDING -> IN_TRANSIT -> ARRIVED -> REMOVED -> EMPTY.
Besides it:

- LOADED -> EMPTY: the carrier was taken back out before sending;
- SENDING -> LOADED: the send was aborted before the carrier left;
- SENDING or IN_TRANSIT -> JAMMED; JAMMED -> LOADED (put back) or EMPTY (taken out);
- IN_TRANSIT -> LOST (overdue); LOST -> ARRIVED (turned up late) or EMPTY (written off).

Nothing here reads a clock: every check takes ``now`` (monotonic seconds) from the caller,
so the agent, the simulator and the tests all drive time themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.tube_station.registers import StationState


class CarrierState(StrEnum):
    EMPTY = "empty"
    LOADED = "loaded"
    SENDING = "sending"
    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
    REMOVED = "removed"
    JAMMED = "jammed"
    LOST = "lost"


TRANSITIONS: dict[CarrierState, frozenset[CarrierState]] = {
    CarrierState.EMPTY: frozenset({CarrierState.LOADED}),
    CarrierState.LOADED: frozenset({CarrierState.SENDING, CarrierState.EMPTY}),
    CarrierState.SENDING: frozenset(
        {CarrierState.IN_TRANSIT, CarrierState.JAMMED, CarrierState.LOADED}
    ),
    CarrierState.IN_TRANSIT: frozenset(
        {CarrierState.ARRIVED, CarrierState.JAMMED, CarrierState.LOST}
    ),
    CarrierState.ARRIVED: frozenset({CarrierState.REMOVED}),
    CarrierState.REMOVED: frozenset({CarrierState.EMPTY}),
    CarrierState.JAMMED: frozenset({CarrierState.LOADED, CarrierState.EMPTY}),
    CarrierState.LOST: frozenset({CarrierState.ARRIVED, CarrierState.EMPTY}),
}


class IllegalTransition(DeviceError):
    """The requested move is not in the table; the carrier keeps its state."""

    def __init__(self, current: CarrierState, target: CarrierState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing"
        super().__init__(
            Completion.SEQUENCE_ERROR,
            "illegal_transition",
            f"carrier cannot go from {current} to {target}; from {current} it may go to {allowed}",
        )
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Carrier:
    carrier_id: int
    state: CarrierState
    since: float  # monotonic seconds when ``state`` was entered


def can_move(current: CarrierState, target: CarrierState) -> bool:
    return target in TRANSITIONS[current]


def advance(carrier: Carrier, target: CarrierState, now: float) -> Carrier:
    """The carrier in ``target`` from ``now``; raises IllegalTransition when not allowed."""
    if not can_move(carrier.state, target):
        raise IllegalTransition(carrier.state, target)
    return Carrier(carrier.carrier_id, target, now)


@dataclass(frozen=True)
class Limits:
    """How long each waiting state may last before someone should act (seconds)."""

    loaded: float = 600.0  # loaded but never sent
    sending: float = 15.0  # blower on but the carrier has not left
    in_transit: float = 180.0  # longest route of a branch plus margin
    arrived: float = 900.0  # arrived but nobody took it out


@dataclass(frozen=True)
class Overdue:
    state: CarrierState
    elapsed: float
    limit: float
    suggested: CarrierState | None  # the state to move to, None when only a person can act
    message: str


DEFAULT_LIMITS = Limits()


def check_timeout(carrier: Carrier, now: float, limits: Limits = DEFAULT_LIMITS) -> Overdue | None:
    """Whether ``carrier`` has stayed too long in its state as of ``now``."""
    rules: dict[CarrierState, tuple[float, CarrierState | None, str]] = {
        CarrierState.LOADED: (limits.loaded, None, "carrier loaded but not sent"),
        CarrierState.SENDING: (limits.sending, CarrierState.JAMMED, "carrier did not leave"),
        CarrierState.IN_TRANSIT: (limits.in_transit, CarrierState.LOST, "carrier did not arrive"),
        CarrierState.ARRIVED: (limits.arrived, None, "arrived carrier not collected"),
    }
    rule = rules.get(carrier.state)
    if rule is None:
        return None
    limit, suggested, what = rule
    elapsed = now - carrier.since
    if elapsed <= limit:
        return None
    return Overdue(carrier.state, elapsed, limit, suggested, f"{what} after {elapsed:.0f} s")


# How a controller state reads as a carrier state; READY_TO_RECEIVE and a door fault say
# nothing about a carrier in this station, so they map to None and leave it as it was.
FROM_STATION: dict[StationState, CarrierState | None] = {
    StationState.EMPTY: CarrierState.EMPTY,
    StationState.LOADED: CarrierState.LOADED,
    StationState.SENDING: CarrierState.SENDING,
    StationState.IN_TRANSIT: CarrierState.IN_TRANSIT,
    StationState.ARRIVED: CarrierState.ARRIVED,
    StationState.REMOVED: CarrierState.REMOVED,
    StationState.JAMMED: CarrierState.JAMMED,
    StationState.DOOR_FAULT: None,
    StationState.READY_TO_RECEIVE: None,
}

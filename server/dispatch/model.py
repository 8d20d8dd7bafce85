"""Plain records of the dispatch core. Its operations raise the errors of
``branchline.common.errors`` (the field path and the rule as data).

States and kinds are short strings (stored as such); the gRPC layer maps them to enums.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Task states.
QUEUED = "queued"  # no teller free and no lobby manager on duty: waits in the branch queue
AT_LOBBY = "at_lobby"  # a lobby manager is asked to designate a teller
OFFERED = "offered"  # offered to one teller, who has until offer_expires_at to answer
WAITING = "waiting"  # the teller holds it and asked the origin to wait (with an estimate)
ACCEPTED = "accepted"  # the teller is working on it
DONE = "done"  # a result went back to the origin
CANCELLED = "cancelled"  # the origin withdrew it
TASK_STATES = (QUEUED, AT_LOBBY, OFFERED, WAITING, ACCEPTED, DONE, CANCELLED)
# States in which a teller holds the task (and it counts in the teller's load).
HELD_STATES = (OFFERED, WAITING, ACCEPTED)
# States in which the task waits in its branch for someone to take it.
UNASSIGNED_STATES = (QUEUED, AT_LOBBY)
OPEN_STATES = (QUEUED, AT_LOBBY, OFFERED, WAITING, ACCEPTED)

# Answers to an offer.
ACCEPT = "accept"
WAIT = "wait"
REJECT = "reject"
ANSWERS = (ACCEPT, WAIT, REJECT)

# Routing strategies: which of several idle tellers gets a task.
LONGEST_IDLE = "longest_idle"
LEAST_HANDLED = "least_handled"
RANDOM = "random"
STRATEGIES = (LONGEST_IDLE, LEAST_HANDLED, RANDOM)

# Result outcomes.
SUCCESS = "success"
FAILURE = "failure"

# Teller presence, derived from duty, away and load.
IDLE = "idle"
BUSY = "busy"
AWAY = "away"
OFF_DUTY = "off_duty"

TELLER = "teller"
LOBBY = "lobby"


@dataclass(frozen=True)
class Actor:
    """Who acts: ``role`` is teller, lobby, operator or terminal; ``id`` their id."""

    role: str
    id: str

    def __str__(self) -> str:
        return f"{'lobby manager' if self.role == LOBBY else self.role} {self.id}"


@dataclass(frozen=True)
class Branch:
    branch_id: str
    name: str
    routing_strategy: str | None
    created_at: datetime


@dataclass(frozen=True)
class Teller:
    teller_id: str
    name: str
    branch_id: str
    skills: tuple[str, ...]
    on_duty: bool
    away: bool
    load: int
    idle_since: datetime
    handled: int

    @property
    def presence(self) -> str:
        if not self.on_duty:
            return OFF_DUTY
        if self.away:
            return AWAY
        return BUSY if self.load > 0 else IDLE


@dataclass(frozen=True)
class LobbyManager:
    manager_id: str
    name: str
    branch_id: str
    on_duty: bool


@dataclass(frozen=True)
class Material:
    name: str
    content_type: str
    sha256: str
    size: int
    uploaded_at: datetime
    # When the retention deleted its bytes (None: still held).
    deleted_at: datetime | None = None
    # The image type its bytes are, sniffed (common/image_types.py); "" if none or deleted.
    image_type: str = ""


@dataclass(frozen=True)
class Offer:
    offer_id: int
    teller_id: str
    via: str
    offered_by: str
    offered_at: datetime
    expires_at: datetime
    answer: str | None
    answered_at: datetime | None
    reason: str


@dataclass(frozen=True)
class DispatchEvent:
    event_id: int
    task_id: str | None
    branch: str
    origin_terminal: str | None
    teller_id: str | None
    kind: str
    state: str
    detail: str
    at: datetime


@dataclass(frozen=True)
class Task:
    task_id: str
    request_id: str
    origin_terminal: str
    origin_branch: str
    target_branch: str
    business_type: str
    title: str
    fields: dict[str, str]
    note: str
    customer_ref: str
    state: str
    teller_id: str | None
    offer_id: int | None
    offer_expires_at: datetime | None
    lobby_manager_id: str | None
    wait_estimate_seconds: int | None
    result_outcome: str | None
    result_reason: str | None
    created_at: datetime
    updated_at: datetime
    # Filled by get_task only.
    materials: tuple[Material, ...] = ()
    offers: tuple[Offer, ...] = ()
    events: tuple[DispatchEvent, ...] = ()

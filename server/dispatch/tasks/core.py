"""What every task operation works with: the database, the clock, the routing settings and
the extension points the calls package plugs into.

The operations are plain functions taking this ``Core`` first (``roster``, ``duty``,
``offers``, ``lifecycle``, ``materials``, ``reads``, ``sweep``); ``DispatchService`` binds
them as its methods.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row

from branchline.server.dispatch import routing, store
from branchline.server.dispatch.model import (
    LONGEST_IDLE,
)

OPERATOR = "operator"
TERMINAL = "terminal"
DEFAULT_OFFER_TIMEOUT = 60.0
DEFAULT_MAX_MATERIAL_BYTES = 4 * 1024 * 1024
# How long a task's materials are kept once it ended (the server's --material-retention-days).
DEFAULT_MATERIAL_RETENTION = timedelta(days=90)
EXPIRE_BATCH = 100
LIST_LIMIT = 500
OFF_DUTY_RETRIES = 5

# Run first when a teller becomes free, with the teller's row (locked) and skills; one
# returning True gave the teller work.
PullHook = Callable[[store.Tx, Row[Any], tuple[str, ...]], bool]
# Run before a teller goes off duty; each raises to refuse.
OffDutyCheck = Callable[[Connection, str], None]


@dataclass(frozen=True)
class EventScope:
    """Which events a watcher sees: any field left None does not filter."""

    origin_terminal: str | None = None
    teller_id: str | None = None
    branch: str | None = None
    task_id: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Core:
    def __init__(
        self,
        engine: Engine,
        *,
        offer_timeout: float = DEFAULT_OFFER_TIMEOUT,
        strategy: str = LONGEST_IDLE,
        max_material_bytes: int = DEFAULT_MAX_MATERIAL_BYTES,
        material_retention: timedelta = DEFAULT_MATERIAL_RETENTION,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.offer_timeout = offer_timeout
        self.strategy = routing.check_strategy(strategy)
        self.max_material_bytes = max_material_bytes
        self.material_retention = material_retention
        self.clock = clock
        self.rng = rng or random.Random()
        # A free teller takes a video call before a queued task: the calls package adds
        # its pull here (calls are answered before queued tasks).
        self.pull_hooks: list[PullHook] = []
        # A teller on a call may not go off duty: the calls package adds that check here.
        self.off_duty_checks: list[OffDutyCheck] = []

    def tx(self) -> AbstractContextManager[store.Tx]:
        """One write transaction at the clock's time."""
        return store.transaction(self.engine, self.clock())

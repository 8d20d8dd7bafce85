"""What every call operation works with: the dispatch core whose tellers calls share, the
PIN translator, the ring timeout and the clock."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Engine

from branchline.server.dispatch import store
from branchline.server.dispatch.calls.model import DEFAULT_RING_SECONDS, PinTranslator, utcnow
from branchline.server.dispatch.tasks.service import DispatchService


class CallCore:
    def __init__(
        self,
        dispatch: DispatchService,
        *,
        translate_pin: PinTranslator | None = None,
        ring_timeout: float = DEFAULT_RING_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.dispatch = dispatch
        self.ring_timeout = ring_timeout
        self.engine: Engine = dispatch.engine
        self.translate_pin = translate_pin
        self.clock = clock

    def tx(self) -> AbstractContextManager[store.Tx]:
        """One write transaction at the clock's time."""
        return store.transaction(self.engine, self.clock())

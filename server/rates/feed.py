"""The FX rate feed: every connected terminal holds the current rate table.

Rates may be set by any process sharing the database (the ledger CLI, another replica).
``set_rates`` signals the delivery bus's ``rates`` topic in its transaction (PostgreSQL
NOTIFY, from any process), which wakes every replica's feed at once; each replica also
checks the current version — one indexed ``max(version_id)`` — every ``poll_seconds`` as
the backstop (on PostgreSQL at least the bus's backstop), and when it moved, loads the
table and broadcasts it to the terminals connected to it. A terminal gets the current
table right after each registration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import Engine, func, select

from branchline.common.errors import InvalidArgument
from branchline.common.logs import log_event
from branchline.server.convert import timestamp
from branchline.server.delivery.bus import TOPIC_RATES, LocalBus, wait_for_change
from branchline.server.ledger.fx import RateTable, current_rates
from branchline.server.ledger.schema import fx_rate_versions
from branchline.server.link import PushRefused
from branchline.server.storage.engine import connect
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import terminal_link_pb2 as pb

log = logging.getLogger("branchline.server.rates.feed")


def rate_table_to_pb(table: RateTable) -> info_pb.RateTable:
    return info_pb.RateTable(
        version=table.version_id,
        as_of=timestamp(table.effective_at),
        base_currency=table.base,
        source=table.source,
        rates=[
            info_pb.RateEntry(currency=code, bid=str(rate.bid), ask=str(rate.ask))
            for code, rate in sorted(table.rates.items())
        ],
    )


def latest_version(engine: Engine) -> int:
    """The current rate version, 0 when no rates were ever set (the poll's one query)."""
    with connect(engine) as conn:
        found = conn.execute(select(func.max(fx_rate_versions.c.version_id))).scalar()
    return int(found) if found is not None else 0


class RateFeed:
    """Polls the rate version and pushes new tables through the TerminalLink servicer."""

    def __init__(
        self,
        engine: Engine,
        broadcast: Callable[[pb.ServerMessage], int],
        push: Callable[[str, pb.ServerMessage], None],
        poll_seconds: float = 1.0,
        bus: LocalBus | None = None,
    ) -> None:
        if poll_seconds <= 0:
            raise InvalidArgument("poll_seconds", f"must be more than zero, not {poll_seconds}")
        self._engine = engine
        self._broadcast = broadcast
        self._push = push
        self.poll_seconds = poll_seconds
        self._bus = bus
        self.version = 0
        self._message: pb.ServerMessage | None = None
        # The poll and a connect hook may check at once: one broadcast per version.
        self._checking = asyncio.Lock()

    async def check(self) -> bool:
        """Load and broadcast the table when its version moved; True when it did."""
        async with self._checking:
            return await self._check()

    async def _check(self) -> bool:
        version = await asyncio.to_thread(latest_version, self._engine)
        if version == self.version:
            return False
        table = await asyncio.to_thread(current_rates, self._engine)
        if table is None:
            return False
        self._message = pb.ServerMessage(
            rate_update=info_pb.RateUpdate(table=rate_table_to_pb(table))
        )
        self.version = table.version_id
        sent = self._broadcast(self._message)
        log_event(log, "rates_broadcast", version=table.version_id, terminals=sent)
        return True

    async def on_connect(self, terminal_id: str, branch: str) -> None:
        """The TerminalLink connect hook: the new terminal gets the current table at once."""
        if self._message is None:
            try:
                await self.check()
            except Exception as exc:  # never fail the terminal's registration over rates
                log_event(log, "rate_poll_failed", logging.WARNING, error=str(exc))
        if self._message is None:
            return  # no rates set yet; the terminal gets the first table when it is set
        try:
            self._push(terminal_id, self._message)
        except PushRefused as exc:
            log_event(log, "rates_not_sent", logging.WARNING, terminal_id=terminal_id, why=str(exc))

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # the database may be briefly unreachable; keep polling
                log_event(log, "rate_poll_failed", logging.WARNING, error=str(exc))
            await wait_for_change(self._bus, TOPIC_RATES, self.poll_seconds)

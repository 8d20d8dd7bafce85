"""The terminal's FX rate book: the latest table the server pushed, for display.

The table is kept in ``rates.json`` under the state dir (written atomically), so after a
restart the kiosk still shows the last known rates — flagged stale until the server sends
its current table again (it does on every registration), and stale whenever the link to the
server is down. Rates shown are for display; a posting is quoted by the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from branchline.common.logs import log_event
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import terminal_link_pb2 as link_pb2

log = logging.getLogger("branchline.agent.rates")

FILE_NAME = "rates.json"


class BadRateTable(ValueError):
    """A table that cannot be shown: the message names the field."""


@dataclass(frozen=True)
class RateLine:
    currency: str
    bid: str  # decimal string
    ask: str


@dataclass(frozen=True)
class RateSnapshot:
    version: int
    as_of: datetime
    base_currency: str
    source: str
    rates: tuple[RateLine, ...]
    received_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "as_of": self.as_of.isoformat(),
            "base_currency": self.base_currency,
            "source": self.source,
            "rates": [{"currency": r.currency, "bid": r.bid, "ask": r.ask} for r in self.rates],
            "received_at": self.received_at.isoformat(),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> RateSnapshot:
        return RateSnapshot(
            version=int(data["version"]),
            as_of=datetime.fromisoformat(data["as_of"]),
            base_currency=str(data["base_currency"]),
            source=str(data["source"]),
            rates=tuple(
                RateLine(str(r["currency"]), str(r["bid"]), str(r["ask"])) for r in data["rates"]
            ),
            received_at=datetime.fromisoformat(data["received_at"]),
        )


def _decimal(text: str, field: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadRateTable(f"{field}: {text[:20]!r} is not a decimal") from None
    if not value.is_finite() or value <= 0:
        raise BadRateTable(f"{field}: {text[:20]!r} must be a positive decimal")
    return text


def snapshot_from_pb(table: info_pb.RateTable, received_at: datetime) -> RateSnapshot:
    if table.version <= 0:
        raise BadRateTable("rate_update.table.version: must be positive")
    lines = []
    for i, entry in enumerate(table.rates):
        if not entry.currency:
            raise BadRateTable(f"rate_update.table.rates[{i}].currency: must not be empty")
        where = f"rate_update.table.rates[{entry.currency}]"
        lines.append(
            RateLine(
                entry.currency,
                _decimal(entry.bid, f"{where}.bid"),
                _decimal(entry.ask, f"{where}.ask"),
            )
        )
    return RateSnapshot(
        version=table.version,
        as_of=table.as_of.ToDatetime(tzinfo=UTC),
        base_currency=table.base_currency,
        source=table.source,
        rates=tuple(lines),
        received_at=received_at,
    )


def snapshot_to_pb(snapshot: RateSnapshot) -> info_pb.RateTable:
    table = info_pb.RateTable(
        version=snapshot.version,
        base_currency=snapshot.base_currency,
        source=snapshot.source,
        rates=[
            info_pb.RateEntry(currency=r.currency, bid=r.bid, ask=r.ask) for r in snapshot.rates
        ],
    )
    table.as_of.FromDatetime(snapshot.as_of)
    return table


class RateBook:
    """The latest rate table; ``stale`` until the server confirms it on a live link."""

    def __init__(self, state_dir: Path, connected: Callable[[], bool] = lambda: True) -> None:
        self._path = state_dir / FILE_NAME
        self._connected = connected
        self._confirmed = False
        self._changed = asyncio.Condition()
        self.current: RateSnapshot | None = self._load()

    @property
    def stale(self) -> bool:
        return self.current is None or not self._confirmed or not self._connected()

    def _load(self) -> RateSnapshot | None:
        try:
            return RateSnapshot.from_json(json.loads(self._path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log_event(
                log, "rates_file_unreadable", logging.WARNING, path=str(self._path), error=str(exc)
            )
            return None

    def _save(self, snapshot: RateSnapshot) -> None:
        partial = self._path.with_name(f".{FILE_NAME}.tmp")
        with open(partial, "w") as out:
            json.dump(snapshot.to_json(), out)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self._path)

    async def accept(self, table: info_pb.RateTable, now: datetime | None = None) -> RateSnapshot:
        """Take a table from the server: it is current (confirmed) from now on."""
        snapshot = snapshot_from_pb(table, now or datetime.now(UTC))
        older = self.current is not None and snapshot.version < self.current.version
        if not older:
            # A replica that has not yet seen the newest version must not roll rates back.
            if self.current is None or snapshot.version != self.current.version:
                try:
                    await asyncio.to_thread(self._save, snapshot)
                except OSError as exc:  # shown anyway; only a restart would lose it
                    log_event(log, "rates_not_saved", logging.ERROR, error=str(exc))
            self.current = snapshot
        self._confirmed = True
        log_event(log, "rates_received", version=snapshot.version, ignored_as_older=older)
        async with self._changed:
            self._changed.notify_all()
        return self.current or snapshot

    async def on_push(self, message: link_pb2.ServerMessage) -> None:
        """The uplink's handler for ``rate_update``."""
        try:
            await self.accept(message.rate_update.table)
        except BadRateTable as exc:
            log_event(log, "rates_refused", logging.WARNING, error=str(exc))

    async def wait_change(self, timeout: float) -> None:
        """Return after the next accepted table, or after ``timeout`` seconds."""
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):  # cancelable as it wakes (common/waiting.py)
                    await self._changed.wait()
            except TimeoutError:
                pass

    def view(self) -> info_pb.RatesView:
        snapshot = self.current
        if snapshot is None:
            return info_pb.RatesView(known=False, stale=True)
        view = info_pb.RatesView(known=True, stale=self.stale, table=snapshot_to_pb(snapshot))
        view.received_at.FromDatetime(snapshot.received_at)
        return view

"""Phone pairing on the TerminalLink stream: what each terminal's screen shows.

Server -> terminal: ``pairing_update`` (130), pushed (ack_seq 0) whenever the terminal's QR
rotates or its pairing starts or ends. The replica holding a terminal's stream drives its
rotation: it reads the terminal's pairing state from the database (where a phone may have
paired or canceled through any replica) and pushes what changed — at once when the
delivery bus's ``pairing`` topic (a pairing opened or ended, on any replica) or ``fleet``
topic (a service state changed) wakes it, when a terminal registers here, and otherwise
every ``interval`` (on PostgreSQL the bus's backstop, at most ``ROUND_AT_LEAST`` — the QR
rotates every 30 s and an ended pairing's notice lasts 10 s).

Terminal -> server: ``pairing_cancel`` (130) ends the live pairing from the terminal's
screen; ``pairing_query`` (131) asks what to show now. Both are answered with
``pairing_update`` (ack_seq = the message's seq).

The update never carries the phone's session token: only the handle and short code (which
are on screen anyway), the URL, the pairing id and the matching code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from branchline.common.logs import log_event
from branchline.server import fleet_registry as registry
from branchline.server.delivery.bus import (
    TOPIC_FLEET,
    TOPIC_PAIRING,
    LocalBus,
    mark,
    wait_or_sleep,
)
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.server.mobile import pairing, pairing_round
from branchline.server.mobile.services import IN_SERVICE
from branchline.server.writes import apply_write
from branchline.v1 import mobile_pb2 as pb
from branchline.v1 import terminal_link_pb2 as link_pb

log = logging.getLogger("branchline.server.mobile.link")

PUSH_INTERVAL = 0.5
# The longest a round waits on PostgreSQL, whatever the bus's backstop (time-driven changes:
# rotation, expiry, the end notice).
ROUND_AT_LEAST = 5.0
# How long after a pairing ended the terminal is told how it ended.
END_NOTICE = timedelta(seconds=10)

OFFERING = "offering"
PAIRED = "paired"
IDLE = "idle"


def _now() -> datetime:
    return datetime.now(UTC)


def pairing_url(base_url: str, handle: str) -> str:
    """The short URL the QR encodes: ``<gateway>/p/<handle>``."""
    return f"{base_url.rstrip('/')}/p/{handle}"


def current_update(
    engine: Engine, terminal_id: str, base_url: str, now: datetime
) -> pb.PairingUpdate:
    """What ``terminal_id`` should show now, rotating its handle when due. A terminal that
    is not in service shows no QR (a live pairing still shows, so it can be canceled)."""
    terminal = registry.get_terminal(engine, terminal_id)
    serving = terminal is not None and terminal.online and terminal.service_state == IN_SERVICE
    if serving:
        shown = pairing.rotate(engine, terminal_id, now)
    else:
        shown = pairing.terminal_pairing(engine, terminal_id, now)
    last = ""
    if shown.pairing is None:
        ended = pairing.last_ended(engine, terminal_id, now - END_NOTICE)
        last = ended.end_reason if ended is not None else ""
    return build_update(base_url, serving, shown, last)


def build_update(
    base_url: str, serving: bool, shown: pairing.TerminalPairing, last_end_reason: str
) -> pb.PairingUpdate:
    """The update for what the terminal shows (``last_end_reason``: how its last pairing
    ended, within ``END_NOTICE``; only said while no pairing is live)."""
    if shown.pairing is not None:
        return pb.PairingUpdate(
            state=PAIRED,
            pairing_id=shown.pairing.pairing_id,
            matching_code=shown.pairing.matching_code,
        )
    if shown.offer is None or not serving:
        return pb.PairingUpdate(state=IDLE, last_end_reason=last_end_reason)
    update = pb.PairingUpdate(
        state=OFFERING,
        url=pairing_url(base_url, shown.offer.handle),
        handle=shown.offer.handle,
        short_code=pairing.format_short_code(shown.offer.short_code),
        last_end_reason=last_end_reason,
    )
    update.expires_at.FromDatetime(shown.offer.expires_at)
    return update


class PairingPusher:
    """Pushes each connected terminal's pairing state when it changes."""

    def __init__(
        self,
        engine: Engine,
        link: TerminalLinkServicer,
        base_url: str,
        clock: Callable[[], datetime] = _now,
        bus: LocalBus | None = None,
    ) -> None:
        self._engine = engine
        self._link = link
        self._base_url = base_url
        self._bus = bus
        # Rotations and endings join the link's group-commit batches (server/writes.py).
        self._applier = getattr(link, "applier", None)
        self._clock = clock
        self._shown: dict[str, pb.PairingUpdate] = {}

    def current(self, terminal_id: str) -> pb.PairingUpdate:
        return current_update(self._engine, terminal_id, self._base_url, self._clock())

    def current_all(self, terminal_ids: list[str]) -> list[tuple[str, pb.PairingUpdate]]:
        """Every terminal's update, in two queries (``pairing_round``), not five each."""
        now = self._clock()
        return pairing_round.updates(
            self._engine,
            terminal_ids,
            now,
            END_NOTICE,
            lambda serving, shown, last: build_update(self._base_url, serving, shown, last),
            lambda terminal_id: current_update(self._engine, terminal_id, self._base_url, now),
        )

    async def run(self, interval: float = PUSH_INTERVAL) -> None:
        topics = (TOPIC_PAIRING, TOPIC_FLEET)
        while True:
            # A phone pairing while this round reads is looked at right after it.
            since = mark(self._bus, topics)
            try:
                await self.push_once()
            except Exception:  # the database may be briefly unreachable; keep going
                log.exception("pairing push failed")
            poll = interval
            if self._bus is not None and self._bus.shared:
                poll = min(max(interval, self._bus.backstop), ROUND_AT_LEAST)
            await wait_or_sleep(self._bus, topics, poll, since)

    async def push_once(self) -> None:
        connected = self._link.connected_terminals()
        for gone in set(self._shown) - set(connected):
            del self._shown[gone]
        for terminal_id, update in await self._updates(connected):
            if self._shown.get(terminal_id) == update:
                continue
            try:
                self._link.push(terminal_id, link_pb.ServerMessage(pairing_update=update))
            except PushRefused as exc:
                log_event(
                    log,
                    "pairing_push_dropped",
                    logging.DEBUG,
                    terminal_id=terminal_id,
                    why=str(exc),
                )
                continue
            self._shown[terminal_id] = update

    async def _updates(self, connected: list[str]) -> list[tuple[str, pb.PairingUpdate]]:
        """Every connected terminal's update: one unit of the link's group-commit applier
        for the whole round (its reads on one connection, its handle rotations in one
        commit), not a thread and a transaction per terminal beside it."""
        if not connected:
            return []
        if self._applier is None:
            return await asyncio.to_thread(self.current_all, connected)
        result: list[tuple[str, pb.PairingUpdate]] = await self._applier.apply(
            lambda: self.current_all(connected), priority=True
        )
        return result

    async def forget(self, terminal_id: str, _branch: str) -> None:
        """A (re)connected terminal gets its state pushed afresh, at once."""
        self._shown.pop(terminal_id, None)
        if self._bus is not None:
            self._bus.wake(TOPIC_PAIRING)

    async def on_cancel(
        self, terminal_id: str, message: link_pb.TerminalMessage
    ) -> link_pb.ServerMessage:
        ended = await apply_write(
            self._applier, pairing.cancel_by_terminal, self._engine, terminal_id, self._clock()
        )
        if ended is not None:
            log_event(log, "pairing_canceled", terminal_id=terminal_id, by="terminal")
        return await self._reply(terminal_id, message)

    async def on_query(
        self, terminal_id: str, message: link_pb.TerminalMessage
    ) -> link_pb.ServerMessage:
        return await self._reply(terminal_id, message)

    async def _reply(
        self, terminal_id: str, message: link_pb.TerminalMessage
    ) -> link_pb.ServerMessage:
        update = await apply_write(self._applier, self.current, terminal_id)
        self._shown[terminal_id] = update
        return link_pb.ServerMessage(ack_seq=message.seq, pairing_update=update)


async def purge_forever(engine: Engine, interval: float = 3600.0) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await asyncio.to_thread(pairing.purge, engine, _now())
        except Exception:
            log.exception("pairing purge failed")
            continue
        if removed:
            log_event(log, "pairings_purged", count=removed)

"""Phone pairing on the TerminalLink stream: what each terminal's screen shows.

Server -> terminal: ``pairing_update`` (130), pushed (ack_seq 0) whenever the terminal's QR
rotates or its pairing starts or ends. The replica holding a terminal's stream drives its
rotation: every ``interval`` it reads the terminal's pairing state from the database (where
a phone may have paired or canceled through any replica) and pushes what changed.

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
from branchline.server.link import PushRefused, TerminalLinkServicer
from branchline.server.mobile import pairing
from branchline.server.mobile.services import IN_SERVICE
from branchline.server.mobile.wakeup import Wakeup
from branchline.v1 import mobile_pb2 as pb
from branchline.v1 import terminal_link_pb2 as link_pb

log = logging.getLogger("branchline.server.mobile.link")

PUSH_INTERVAL = 0.5
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
    if shown.pairing is not None:
        return pb.PairingUpdate(
            state=PAIRED,
            pairing_id=shown.pairing.pairing_id,
            matching_code=shown.pairing.matching_code,
        )
    ended = pairing.last_ended(engine, terminal_id, now - END_NOTICE)
    last = ended.end_reason if ended is not None else ""
    if shown.offer is None or not serving:
        return pb.PairingUpdate(state=IDLE, last_end_reason=last)
    update = pb.PairingUpdate(
        state=OFFERING,
        url=pairing_url(base_url, shown.offer.handle),
        handle=shown.offer.handle,
        short_code=pairing.format_short_code(shown.offer.short_code),
        last_end_reason=last,
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
    ) -> None:
        self._engine = engine
        self._link = link
        self._base_url = base_url
        self._clock = clock
        self._shown: dict[str, pb.PairingUpdate] = {}
        # Set by the Mobile API when a phone pairs or cancels through this replica.
        self.wakeup = Wakeup()

    def current(self, terminal_id: str) -> pb.PairingUpdate:
        return current_update(self._engine, terminal_id, self._base_url, self._clock())

    async def run(self, interval: float = PUSH_INTERVAL) -> None:
        while True:
            try:
                await self.push_once()
            except Exception:  # the database may be briefly unreachable; keep going
                log.exception("pairing push failed")
            await self.wakeup.sleep(interval)

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
        applier = getattr(self._link, "applier", None)
        if applier is None:
            return [(t, await asyncio.to_thread(self.current, t)) for t in connected]
        result: list[tuple[str, pb.PairingUpdate]] = await applier.apply(
            lambda: [(t, self.current(t)) for t in connected], priority=True
        )
        return result

    async def forget(self, terminal_id: str, _branch: str) -> None:
        """A (re)connected terminal gets its state pushed afresh."""
        self._shown.pop(terminal_id, None)

    async def on_cancel(
        self, terminal_id: str, message: link_pb.TerminalMessage
    ) -> link_pb.ServerMessage:
        ended = await asyncio.to_thread(
            pairing.cancel_by_terminal, self._engine, terminal_id, self._clock()
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
        update = await asyncio.to_thread(self.current, terminal_id)
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

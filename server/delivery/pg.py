"""The delivery bus across replicas sharing one PostgreSQL database: LISTEN/NOTIFY.

Every replica LISTENs on one channel (named after the database schema, so replicas of
different installations — or parallel tests — in one database never hear each other).

- ``send``: the message goes into ``link_deliveries`` and, in the same transaction,
  ``NOTIFY`` carries ``p <row id> <terminal id>`` (small, whatever the message's size: far
  under NOTIFY's 8000-byte limit). Each replica that holds the terminal's stream claims the
  row — ``UPDATE ... SET delivered_at WHERE delivered_at IS NULL RETURNING body`` — and
  queues the message: one stream gets it once.
- ``signal``: ``NOTIFY`` with ``s <topic> <replica>``, no row (watchers catch up from the
  database themselves).
- Nothing is lost when a notification is: on every (re)connection of the listener, every
  ``SWEEP_SECONDS``, and whenever a terminal registers, the replica claims the unclaimed
  rows of the terminals it holds (younger than ``RETENTION``). A row whose terminal is
  connected nowhere just then waits for its next registration.

Publishing runs in one background task that writes queued messages in batches (one
transaction, many rows); ``send`` itself never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg2
from sqlalchemy import Engine, and_, delete, event, or_, text, update

from branchline.common.logs import log_event
from branchline.server.delivery.bus import (
    CHANNEL_INFO_KEY,
    DEFAULT_BACKSTOP_SECONDS,
    LocalBus,
    channel_name,
)
from branchline.server.delivery.schema import link_deliveries
from branchline.server.storage.engine import write_transaction
from branchline.v1 import terminal_link_pb2 as pb

log = logging.getLogger("branchline.server.delivery")

T = TypeVar("T")

# Messages waiting to be written before ``send`` refuses (the database is away).
OUTGOING_LIMIT = 10_000
BATCH = 500
RECONNECT_SECONDS = 1.0
# The backstop: how often a replica claims what it may have missed.
SWEEP_SECONDS = 2.0
# How long an unclaimed push waits for its terminal; older rows are purged.
RETENTION = timedelta(minutes=10)
PURGE_EVERY = 30  # sweeps


def _now() -> datetime:
    return datetime.now(UTC)


def parse_payload(payload: str) -> tuple[str, str, str] | None:
    """``p <id> <terminal>`` or ``s <topic> <replica>`` as (kind, first, rest); None if
    malformed."""
    kind, _, rest = payload.partition(" ")
    first, _, second = rest.partition(" ")
    if kind == "p" and first.isdigit() and second:
        return kind, first, second
    if kind == "s" and first:
        return kind, first, second
    return None


class PgBus(LocalBus):
    """Pushes and signals between the replicas sharing one PostgreSQL database."""

    shared = True

    def __init__(
        self, engine: Engine, replica: str, backstop: float = DEFAULT_BACKSTOP_SECONDS
    ) -> None:
        super().__init__(backstop)
        self._engine = engine
        self._replica = replica
        with engine.connect() as conn:
            schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        self.channel = channel_name(schema)
        # Stores signal in their own transactions (signal_in_transaction) on this channel.
        event.listen(engine, "checkout", self._mark_connection)
        self._outgoing: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue(OUTGOING_LIMIT)
        self._wanted: dict[int, str] = {}
        self._sweep: set[str] = set()
        self._sweep_all = False
        self._work = asyncio.Event()
        # One thread publishes while another claims (and a third listens or purges).
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="delivery")
        # What happened, for tests and operations' logs.
        self.counts = {"sent": 0, "notified": 0, "delivered": 0, "swept": 0, "listens": 0}

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """Database work on the bus's own threads: never queued behind request handlers in
        the default executor, which a loaded replica keeps busy."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _mark_connection(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info[CHANNEL_INFO_KEY] = self.channel

    # -- what the link and the capabilities call -----------------------------------------
    def send(self, terminal_id: str, message: pb.ServerMessage) -> bool:
        try:
            self._outgoing.put_nowait(("p", terminal_id, message.SerializeToString()))
        except asyncio.QueueFull:
            return False
        return True

    def signal(self, topic: str) -> None:
        self._wake(topic)
        try:
            self._outgoing.put_nowait(("s", topic, b""))
        except asyncio.QueueFull:
            pass  # watchers still poll

    async def catch_up(self, terminal_id: str, _branch: str = "") -> None:
        self._sweep.add(terminal_id)
        self._work.set()

    # -- background ----------------------------------------------------------------------
    async def run(self) -> None:
        workers = [
            asyncio.create_task(self._publish_forever(), name="delivery.publish"),
            asyncio.create_task(self._claim_forever(), name="delivery.claim"),
        ]
        try:
            while True:
                try:
                    conn = await self._run(self._listen_connect)
                except Exception as exc:
                    log_event(log, "bus_listen_failed", logging.WARNING, error=str(exc))
                    await asyncio.sleep(RECONNECT_SECONDS)
                    continue
                try:
                    await self._listen(conn)
                except Exception as exc:  # the database went away: listen again
                    log_event(log, "bus_listen_lost", logging.WARNING, error=str(exc))
                finally:
                    conn.close()
                await asyncio.sleep(RECONNECT_SECONDS)
        finally:
            for worker in workers:
                worker.cancel()

    def _listen_connect(self) -> Any:
        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        conn = psycopg2.connect(*args, **kwargs)
        conn.set_session(autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute(f'LISTEN "{self.channel}"')
        return conn

    async def _listen(self, conn: Any) -> None:
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                conn.poll()
            except Exception as exc:
                loop.remove_reader(fd)
                if not lost.done():
                    lost.set_exception(exc)
                return
            while conn.notifies:
                self._on_notify(conn.notifies.pop(0).payload)

        fd = conn.fileno()
        loop.add_reader(fd, readable)
        self.counts["listens"] += 1
        log_event(log, "bus_listening", channel=self.channel, replica=self._replica)
        sweeps = 0
        try:
            while True:
                # Whatever was sent while nobody listened (and, every so often, the backstop).
                self._sweep_all = True
                self._work.set()
                sweeps += 1
                if sweeps % PURGE_EVERY == 0:
                    await self._run(self._purge)
                done, _ = await asyncio.wait({lost}, timeout=SWEEP_SECONDS)
                if done:
                    lost.result()
        finally:
            loop.remove_reader(fd)

    def _on_notify(self, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is None:
            log_event(log, "bus_payload_malformed", logging.WARNING, payload=payload[:80])
            return
        kind, first, rest = parsed
        if kind == "s":
            if rest != self._replica:
                self._wake(first)
            return
        self.counts["notified"] += 1
        if self._holds is not None and self._holds(rest):
            self._wanted[int(first)] = rest
            self._work.set()

    # -- publishing ----------------------------------------------------------------------
    async def _publish_forever(self) -> None:
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < BATCH:
                batch.append(self._outgoing.get_nowait())
            while True:
                try:
                    await self._run(self._publish, batch)
                    break
                except Exception as exc:  # the database is away: keep them and retry
                    log_event(log, "bus_publish_failed", logging.WARNING, error=str(exc))
                    await asyncio.sleep(RECONNECT_SECONDS)
            self.counts["sent"] += sum(1 for kind, _, _ in batch if kind == "p")

    def _publish(self, batch: list[tuple[str, str, bytes]]) -> None:
        now = _now()
        payloads: list[str] = []
        with write_transaction(self._engine) as conn:
            for kind, key, body in batch:
                if kind == "p":
                    row_id = conn.execute(
                        link_deliveries.insert()
                        .values(terminal_id=key, body=body, created_at=now)
                        .returning(link_deliveries.c.id)
                    ).scalar_one()
                    payloads.append(f"p {row_id} {key}")
                else:
                    payload = f"s {key} {self._replica}"
                    if payload not in payloads:
                        payloads.append(payload)
            for payload in payloads:
                # Delivered at commit, after the rows are visible.
                conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": self.channel, "payload": payload},
                )

    # -- claiming and delivering ---------------------------------------------------------
    async def _claim_forever(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            wanted, self._wanted = self._wanted, {}
            terminals, self._sweep = self._sweep, set()
            if self._sweep_all and self._holds is not None:
                terminals |= set(self._held())
            swept, self._sweep_all = self._sweep_all, False
            if not wanted and not terminals:
                continue
            try:
                rows = await self._run(self._claim, list(wanted), sorted(terminals))
            except Exception as exc:
                log_event(log, "bus_claim_failed", logging.WARNING, error=str(exc))
                self._wanted.update(wanted)
                self._sweep |= terminals
                await asyncio.sleep(RECONNECT_SECONDS)
                self._work.set()
                continue
            if swept:
                self.counts["swept"] += 1
            await self._deliver_rows(rows)

    def _held(self) -> list[str]:
        return list(self._held_terminals()) if self._held_terminals is not None else []

    async def _deliver_rows(self, rows: Iterable[tuple[int, str, bytes]]) -> None:
        undelivered = []
        for row_id, terminal_id, body in sorted(rows):
            message = pb.ServerMessage.FromString(body)
            if self._deliver is not None and self._deliver(terminal_id, message):
                self.counts["delivered"] += 1
                log_event(log, "bus_delivered", logging.DEBUG, terminal_id=terminal_id, row=row_id)
            else:
                undelivered.append(row_id)
        if undelivered:  # the stream ended meanwhile: the next holder takes them
            await self._run(self._unclaim, undelivered)

    def _claim(self, ids: list[int], terminals: list[str]) -> list[tuple[int, str, bytes]]:
        now = _now()
        which = []
        if ids:
            which.append(link_deliveries.c.id.in_(ids))
        if terminals:
            which.append(link_deliveries.c.terminal_id.in_(terminals))
        with write_transaction(self._engine) as conn:
            rows = conn.execute(
                update(link_deliveries)
                .where(
                    and_(
                        link_deliveries.c.delivered_at.is_(None),
                        link_deliveries.c.created_at > now - RETENTION,
                        or_(*which),
                    )
                )
                .values(delivered_at=now, delivered_by=self._replica)
                .returning(
                    link_deliveries.c.id, link_deliveries.c.terminal_id, link_deliveries.c.body
                )
            ).all()
        return [(int(r.id), str(r.terminal_id), bytes(r.body)) for r in rows]

    def _unclaim(self, ids: list[int]) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                update(link_deliveries)
                .where(link_deliveries.c.id.in_(ids))
                .values(delivered_at=None, delivered_by=None)
            )

    def _purge(self) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                delete(link_deliveries).where(link_deliveries.c.created_at < _now() - RETENTION)
            )

    def close(self) -> None:
        super().close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if event.contains(self._engine, "checkout", self._mark_connection):
            event.remove(self._engine, "checkout", self._mark_connection)

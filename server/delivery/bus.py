"""The delivery bus: how a push reaches a terminal whose stream is on another replica, and
how watch streams on every replica learn that something changed.

Two things travel on it:

- **pushes** for one terminal (``send``): a TerminalLink ``ServerMessage`` the link could
  not queue because the terminal's stream is not on this replica. On PostgreSQL
  (``PgBus``) the message is stored in ``link_deliveries`` and a NOTIFY carries its row id;
  the replica holding the stream claims the row and queues the message. A row nobody holds
  yet waits for the terminal's next registration (the connect hook ``catch_up``).
- **signals** (``signal(topic)``): "something of ``topic`` changed" (``tube``, ``calls``),
  no payload. Watch loops that poll the database ``wait(topic, poll)`` instead of sleeping,
  so a change made through any replica wakes them at once; the poll stays as the backstop.

On SQLite the server is one process: ``LocalBus`` keeps both in memory, and a push for a
terminal that is not connected is refused, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, text

from branchline.v1 import terminal_link_pb2 as pb

# Queues a message on a terminal's stream on this replica; False if the stream is not here.
DeliverLocal = Callable[[str, pb.ServerMessage], bool]
# Whether this replica holds the terminal's stream.
HoldsTerminal = Callable[[str], bool]
# Every terminal whose stream is on this replica.
HeldTerminals = Callable[[], list[str]]

TOPIC_TUBE = "tube"
TOPIC_CALLS = "calls"
TOPIC_DISPATCH = "dispatch"
# A new FX rate table (set by any process: the ledger CLI, a replica).
TOPIC_RATES = "rates"
# A phone's job stored for a terminal (the gateway reached any replica).
TOPIC_JOBS = "jobs"
# A pairing opened, canceled or ended (a phone through the gateway, a terminal).
TOPIC_PAIRING = "pairing"
# The back office's video signal for a terminal (TubeDesk.SendDeskSignal).
TOPIC_DESK = "desk"
# A row appended to ``fleet_events`` (registration, disconnection, state, device, timeout).
TOPIC_FLEET = "fleet"
TOPICS = (
    TOPIC_TUBE,
    TOPIC_CALLS,
    TOPIC_DISPATCH,
    TOPIC_RATES,
    TOPIC_JOBS,
    TOPIC_PAIRING,
    TOPIC_DESK,
    TOPIC_FLEET,
)

# Where a pooled PostgreSQL connection keeps the bus's NOTIFY channel (``Connection.info``,
# set by PgBus on every checkout), so a store can signal inside its own transaction.
CHANNEL_INFO_KEY = "branchline_bus_channel"
# How long a pusher woken by the bus waits at most when no signal comes (PostgreSQL): the
# backstop for a lost notification. ``--bus-backstop-seconds`` sets it.
DEFAULT_BACKSTOP_SECONDS = 2.0


def channel_name(schema: str) -> str:
    """The NOTIFY channel of one schema: a plain lower-case identifier under 63 bytes."""
    clean = re.sub(r"[^a-z0-9_]", "_", schema.lower())[:32]
    digest = hashlib.sha256(schema.encode()).hexdigest()[:8]
    return f"branchline_bus_{clean}_{digest}"


def signal_in_transaction(conn: Connection, topic: str) -> None:
    """Signal ``topic`` on every replica when ``conn``'s transaction commits (PostgreSQL
    NOTIFY is sent at commit; nothing on a rollback). On PostgreSQL this works from any
    process (a CLI has no bus: the channel is derived from the schema, as the replicas
    derive it); on SQLite there is one server process and nothing to tell."""
    if conn.dialect.name != "postgresql":
        return
    channel = conn.info.get(CHANNEL_INFO_KEY)
    if not channel:
        schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
        channel = conn.info[CHANNEL_INFO_KEY] = channel_name(schema)
    conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": channel, "payload": f"s {topic} -"},
    )


class LocalBus:
    """The in-process bus of a single server (SQLite)."""

    shared = False

    def __init__(self, backstop: float = DEFAULT_BACKSTOP_SECONDS) -> None:
        # See DEFAULT_BACKSTOP_SECONDS; used only when the bus is shared.
        self.backstop = backstop
        self._deliver: DeliverLocal | None = None
        self._holds: HoldsTerminal | None = None
        self._held_terminals: HeldTerminals | None = None
        self._events: dict[str, asyncio.Event] = {}
        # Signals so far, by topic: a watch loop that marks before it reads the database
        # is woken by a signal that came while it was reading (not lost until the poll).
        self._signals: dict[str, int] = {}

    def attach(self, deliver: DeliverLocal, holds: HoldsTerminal, held: HeldTerminals) -> None:
        """Called once by the TerminalLink servicer that owns the streams."""
        self._deliver = deliver
        self._holds = holds
        self._held_terminals = held

    def send(self, terminal_id: str, message: pb.ServerMessage) -> bool:
        """Deliver to a terminal not connected here; False when that cannot be done (one
        process: it is connected nowhere)."""
        return False

    def signal(self, topic: str) -> None:
        """Wake every ``wait(topic)`` on this replica (and, when shared, on the others)."""
        self._wake(topic)

    def mark(self, topic: str | tuple[str, ...]) -> tuple[int, ...]:
        """Where the signals of ``topic`` are now: give it to ``wait(since=)``."""
        topics = (topic,) if isinstance(topic, str) else topic
        return tuple(self._signals.get(name, 0) for name in topics)

    def wake(self, topic: str) -> None:
        """Wake ``topic``'s waiters on this replica only (a local event: a terminal
        registered here, so its pushers should look at once)."""
        self._wake(topic)

    def wake_on_connect(self, topic: str) -> Callable[[str, str], Awaitable[None]]:
        """A TerminalLink connect hook: a terminal registered here, so ``topic``'s pusher
        looks at once (its wait may be the bus's backstop)."""

        async def hook(_terminal_id: str, _branch: str) -> None:
            self.wake(topic)

        return hook

    def _wake(self, topic: str) -> None:
        self._signals[topic] = self._signals.get(topic, 0) + 1
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def wait(
        self, topic: str | tuple[str, ...], timeout: float, since: tuple[int, ...] | None = None
    ) -> bool:
        """Sleep until ``topic`` (or any of several) is signalled or ``timeout`` passes;
        True when signalled. ``since``: a ``mark`` — signalled since then returns at once."""
        if since is not None and self.mark(topic) != since:
            return True
        topics = (topic,) if isinstance(topic, str) else topic
        events = []
        for name in topics:
            event = self._events.get(name)
            if event is None:
                event = self._events[name] = asyncio.Event()
            events.append(event)
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        return bool(done)

    def signal_threadsafe(self, loop: asyncio.AbstractEventLoop | None, topic: str) -> None:
        """``signal`` from a worker thread (service code runs in ``asyncio.to_thread``)."""
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.signal, topic)

    async def catch_up(self, terminal_id: str, _branch: str = "") -> None:
        """The connect hook: deliver what waited for this terminal (nothing in one process)."""

    async def run(self) -> None:
        """The bus's background work (none in one process)."""
        await asyncio.Event().wait()

    def close(self) -> None:
        self._events.clear()


async def wait_or_sleep(
    bus: LocalBus | None,
    topic: str | tuple[str, ...],
    timeout: float,
    since: tuple[int, ...] | None = None,
) -> None:
    """A watch loop's pause: woken early by ``topic`` when a bus is there (at once when it
    was signalled after the ``since`` mark)."""
    if bus is None:
        await asyncio.sleep(timeout)
    else:
        await bus.wait(topic, timeout, since)


def mark(bus: LocalBus | None, topic: str | tuple[str, ...]) -> tuple[int, ...] | None:
    """``bus.mark(topic)``, None without a bus."""
    return None if bus is None else bus.mark(topic)


async def wait_for_change(
    bus: LocalBus | None,
    topic: str | tuple[str, ...],
    poll: float,
    since: tuple[int, ...] | None = None,
) -> None:
    """The pause of a pusher or watch whose every writer signals ``topic``: on a shared bus
    (PostgreSQL) the signal is what wakes it, and ``poll`` stretches to the bus's backstop
    (a lost notification costs that long) instead of every replica querying the database
    for every terminal every ``poll``. In one process (SQLite) writers in worker threads
    do not signal, so it polls every ``poll`` as before."""
    if bus is None:
        await asyncio.sleep(poll)
    elif bus.shared:
        await bus.wait(topic, max(poll, bus.backstop), since)
    else:
        await bus.wait(topic, poll, since)


def wake_local(bus: LocalBus | None, topic: str) -> Callable[[], None]:
    """A callback (from the event loop's thread) waking ``topic``'s waiters on this replica:
    a phone acted through this replica's Mobile API, so its pushers look at once."""
    if bus is None:
        return lambda: None
    return lambda: bus.wake(topic)

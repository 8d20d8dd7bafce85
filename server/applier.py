"""Group commit: TerminalLink work from many streams applied in batches, one commit each.

Each stream hands its message's work (a plain function that reads and writes through
``storage.engine.write_transaction`` / ``connect``) to ``Applier.apply`` and awaits it. One
thread takes whatever is queued (up to ``max_batch``), opens ONE write transaction
(``batch_transaction``), runs each unit in a SAVEPOINT of its own, in arrival order, and
commits once: one fsync of the log for the whole batch instead of one per write. Only after
that commit are the callers told their results, so a terminal never hears "applied" for
something a crash could take back; if the commit fails, every unit of the batch gets the
commit's exception (nothing of it happened) and its caller answers "unavailable".

A unit that raises is rolled back to its savepoint alone (its neighbours are untouched) and
its caller gets the exception. Work that needs to happen only once the change is durable
(pushes to other parties) registers with ``after_commit``; it runs after the batch commits
and is dropped with the unit when the unit is rolled back.

Ordering: one applier thread; requests are applied in the order they were handed in, so
one terminal's units keep their order (a stream hands in its next message only after its
previous answer anyway). The server's own housekeeping (``priority``: liveness flushes,
the heartbeat sweep, registrations, the back office's changes) goes into the next batch
ahead of waiting requests, so a long queue never delays it by more than one batch.

Backpressure: ``apply`` refuses at once with ``ResourceExhausted`` (reason ``server_busy``,
``retry_after`` seconds suggested) when ``queue_limit`` units are already waiting, instead
of queueing without bound; the terminal's sender retries later with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from branchline.common.errors import ResourceExhausted
from branchline.common.logs import log_event
from branchline.server.storage.engine import batch_transaction, in_batch, savepoint

log = logging.getLogger("branchline.server.applier")

T = TypeVar("T")

# Units applied in one transaction at most: bounds how long the write lock is held.
DEFAULT_MAX_BATCH = 200
# Units waiting before new ones are refused (server_busy).
DEFAULT_QUEUE_LIMIT = 1000
# What a refusal suggests the terminal waits before sending again.
DEFAULT_RETRY_AFTER = 0.5
BUSY_REASON = "server_busy"

_hooks = threading.local()


def after_commit(engine: Engine, hook: Callable[[], None]) -> None:
    """Run ``hook`` once the current change is durable: at once outside a batch (the
    caller's own transaction has committed), after the batch's commit inside one."""
    pending: list[Callable[[], None]] | None = getattr(_hooks, "pending", None)
    if pending is None or not in_batch(engine):
        hook()
        return
    pending.append(hook)


class ServerBusy(ResourceExhausted):
    """The applier's queue is full: send again after ``retry_after`` seconds."""

    def __init__(self, waiting: int, retry_after: float) -> None:
        super().__init__(
            f"the server is saturated ({waiting} messages waiting to be applied); send it "
            f"again in {retry_after:g} s",
            reason=BUSY_REASON,
        )
        self.retry_after = retry_after


@dataclass
class _Unit(Generic[T]):
    work: Callable[[], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    queued_at: float = field(default_factory=time.perf_counter)
    result: Any = None
    error: BaseException | None = None
    hooks: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class ApplierStats:
    """What the applier has done, for tests and metrics."""

    batches: int = 0
    units: int = 0
    failed_units: int = 0
    failed_commits: int = 0
    refused: int = 0
    largest_batch: int = 0


class Applier:
    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        retry_after: float = DEFAULT_RETRY_AFTER,
    ) -> None:
        if max_batch < 1 or queue_limit < 1:
            raise ValueError("max_batch and queue_limit must be at least 1")
        self._engine = engine
        self.max_batch = max_batch
        self.queue_limit = queue_limit
        self.retry_after = retry_after
        # (0 for the server's housekeeping, 1 for requests; arrival number; the unit or None
        # to stop): housekeeping goes into the next batch, requests in arrival order.
        self._queue: queue.PriorityQueue[tuple[int, int, _Unit[Any] | None]] = queue.PriorityQueue()
        self._arrivals = itertools.count()
        self._waiting = 0  # units handed in and not yet taken into a batch
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stats = ApplierStats()

    @property
    def waiting(self) -> int:
        return self._waiting

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="applier", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Apply what is queued, then end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put((2, next(self._arrivals), None))
        thread.join(timeout)
        self._thread = None

    async def apply(self, work: Callable[[], T], *, priority: bool = False) -> T:
        """``work()`` applied in a batch; returns (or raises) once the batch has committed.

        Raises ``ServerBusy`` at once when the queue is full. ``priority``: the server's own
        housekeeping (liveness, sweeps, registrations, the back office), never refused and
        taken into the next batch ahead of the requests waiting."""
        self.start()
        with self._lock:
            if not priority and self._waiting >= self.queue_limit:
                self.stats.refused += 1
                raise ServerBusy(self._waiting, self.retry_after)
            self._waiting += 1
        loop = asyncio.get_running_loop()
        unit: _Unit[T] = _Unit(work, loop, loop.create_future())
        self._queue.put((0 if priority else 1, next(self._arrivals), unit))
        return await unit.future

    # -- the applier thread ------------------------------------------------------------------

    def _take(self) -> tuple[list[_Unit[Any]], bool]:
        """The next batch (blocking for its first unit); True when told to stop."""
        first = self._queue.get()[2]
        if first is None:
            return [], True
        units = [first]
        stop = False
        while len(units) < self.max_batch:
            try:
                unit = self._queue.get_nowait()[2]
            except queue.Empty:
                break
            if unit is None:
                stop = True
                break
            units.append(unit)
        with self._lock:
            self._waiting -= len(units)
        return units, stop

    def _run(self) -> None:
        while True:
            units, stop = self._take()
            if units:
                self._apply_batch(units)
            if stop:
                return

    def _apply_batch(self, units: list[_Unit[Any]]) -> None:
        try:
            with batch_transaction(self._engine) as conn:
                for unit in units:
                    self._apply_one(conn, unit)
        except Exception as exc:  # the commit failed: none of the batch happened
            self.stats.failed_commits += 1
            log_event(log, "batch_commit_failed", logging.ERROR, units=len(units), error=repr(exc))
            for unit in units:
                unit.error, unit.result, unit.hooks = exc, None, []
        self.stats.batches += 1
        self.stats.units += len(units)
        self.stats.largest_batch = max(self.stats.largest_batch, len(units))
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit[Any]]] = {}
        for unit in units:
            for hook in unit.hooks:
                try:
                    hook()
                except Exception:  # a hook's trouble never undoes a committed change
                    log.exception("after-commit hook failed")
            by_loop.setdefault(unit.loop, []).append(unit)
        # One wake-up per event loop for the whole batch (each call_soon_threadsafe writes
        # to the loop's self-pipe: ~13 us a unit on the applier thread).
        for loop, resolved in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, resolved)
            except RuntimeError:  # its event loop has closed: nobody is waiting
                continue

    def _apply_one(self, conn: Any, unit: _Unit[Any]) -> None:
        _hooks.pending = unit.hooks
        try:
            with savepoint(conn):
                unit.result = unit.work()
        except Exception as exc:  # rolled back to its savepoint; the others go on
            self.stats.failed_units += 1
            unit.error = exc
            unit.hooks.clear()
        finally:
            _hooks.pending = None


def _resolve_all(units: list[_Unit[Any]]) -> None:
    for unit in units:
        if unit.future.done():  # the caller gave up (its stream ended)
            continue
        if unit.error is not None:
            unit.future.set_exception(unit.error)
        else:
            unit.future.set_result(unit.result)

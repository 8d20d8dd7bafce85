"""One owner per device: the only code that touches its driver.

Each owner runs its driver on a dedicated thread (drivers block on their transports), takes
commands from a queue one at a time with a timeout and cancel, polls the device for status
changes, and when the device disappears closes the driver and reopens it with jittered
exponential backoff, so a pulled cable recovers without restarting the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from branchline.agent.config import DeviceConfig
from branchline.common.logs import log_event
from branchline.drivers.base import (
    CancelToken,
    Completion,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    SelfTestResult,
    StatusReport,
)

log = logging.getLogger("branchline.agent.device")

SELF_TEST = "self_test"
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class DeviceSnapshot:
    name: str
    driver: str
    status: DeviceStatus
    detail: str
    facts: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, str] = field(default_factory=dict)
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class SpyChunk:
    direction: str
    data: bytes
    monotonic: float


class SpyHub:
    """Fans a device's traffic out to live ``spy`` sessions; free when nobody listens."""

    MAX_BACKLOG = 1000

    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[SpyChunk]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def tap(self, direction: str, data: bytes) -> None:
        """Called from the driver's thread."""
        if not self._listeners or self._loop is None:
            return
        chunk = SpyChunk(direction, bytes(data), time.monotonic())
        self._loop.call_soon_threadsafe(self._deliver, chunk)

    def _deliver(self, chunk: SpyChunk) -> None:
        for queue in self._listeners:
            if queue.qsize() < self.MAX_BACKLOG:  # a slow viewer loses chunks, never the device
                queue.put_nowait(chunk)

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Queue[SpyChunk]]:
        queue: asyncio.Queue[SpyChunk] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)


@dataclass
class _Command:
    name: str
    params: dict[str, Any]
    timeout: float
    future: asyncio.Future[Any]
    cancel: CancelToken = field(default_factory=CancelToken)


class DeviceOwner:
    def __init__(
        self,
        config: DeviceConfig,
        context: DriverContext,
        on_change: Callable[[DeviceSnapshot], None],
    ) -> None:
        self.config = config
        self.name = config.name
        self._context = context
        self._on_change = on_change
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dev-{self.name}")
        self._queue: asyncio.Queue[_Command] = asyncio.Queue()
        self._driver: Driver | None = None
        self._current: _Command | None = None
        self._stopping = False
        self._opened_once = asyncio.Event()
        self._capabilities: dict[str, str] = {}
        self.spy = SpyHub()
        self.snapshot = DeviceSnapshot(
            self.name, config.driver_name, DeviceStatus.OFFLINE, "starting"
        )

    # -- state -------------------------------------------------------------------------

    def _set(self, status: DeviceStatus, detail: str, facts: dict[str, str] | None = None) -> None:
        new = replace(
            self.snapshot,
            status=status,
            detail=detail,
            facts=dict(facts) if facts is not None else self.snapshot.facts,
            capabilities=dict(self._capabilities),
        )
        if (new.status, new.detail, new.facts, new.capabilities) == (
            self.snapshot.status,
            self.snapshot.detail,
            self.snapshot.facts,
            self.snapshot.capabilities,
        ):
            return
        self.snapshot = replace(new, updated_at=datetime.now(UTC))
        log_event(log, "device_status", device=self.name, status=status.value, detail=detail)
        self._on_change(self.snapshot)

    async def wait_first_attempt(self) -> None:
        """Returns once the first open attempt has finished, successful or not."""
        await self._opened_once.wait()

    # -- running -----------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _open(self) -> bool:
        try:
            driver = self.config.driver_class(self._context, self.config.options)
            self.spy.bind(asyncio.get_running_loop())
            driver.tap = self.spy.tap
            await self._in_thread(driver.open)
            self._capabilities = await self._in_thread(driver.capabilities)
            report: StatusReport = await self._in_thread(driver.poll)
        except DeviceGone as exc:
            self._set(DeviceStatus.NO_DEVICE, exc.message)
            return False
        except DeviceError as exc:
            self._set(DeviceStatus.HARDWARE_ERROR, str(exc))
            with contextlib.suppress(Exception):
                await self._in_thread(driver.close)
            return False
        self._driver = driver
        log_event(log, "device_opened", device=self.name, driver=self.config.driver_name)
        self._set(report.status, report.detail, report.facts)
        return True

    async def _close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            await self._in_thread(driver.close)

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        try:
            while not self._stopping:
                if self._driver is None:
                    opened = await self._open()
                    self._opened_once.set()
                    if not opened:
                        await self._fail_queued_while_absent()
                        await self._sleep_or_command(backoff * random.uniform(0.8, 1.2))
                        backoff = min(backoff * 2, BACKOFF_MAX)
                        continue
                    backoff = BACKOFF_FIRST
                command = await self._next_command(self.config.poll_interval)
                try:
                    if command is None:
                        await self._poll()
                    else:
                        await self._execute(command)
                except DeviceGone as exc:
                    log_event(
                        log, "device_gone", logging.WARNING, device=self.name, detail=exc.message
                    )
                    await self._close()
                    self._set(DeviceStatus.NO_DEVICE, exc.message)
                except DeviceError as exc:
                    self._set(DeviceStatus.HARDWARE_ERROR, str(exc))
                except Exception as exc:
                    # A driver bug must not leave the device unowned: report it, start afresh.
                    log.error(
                        "driver failed unexpectedly; reopening",
                        exc_info=exc,
                        extra={"branchline_fields": {"device": self.name}},
                    )
                    with contextlib.suppress(Exception):
                        await self._close()
                    self._set(DeviceStatus.HARDWARE_ERROR, f"driver fault: {type(exc).__name__}")
        finally:
            await self._close()
            self._executor.shutdown(wait=False)

    async def _sleep_or_command(self, seconds: float) -> None:
        # While the device is absent, a queued command must fail promptly, not wait for it.
        command = await self._next_command(seconds)
        if command is not None:
            self._finish(
                command, DeviceGone(f"{self.name} is not connected: {self.snapshot.detail}")
            )

    async def _fail_queued_while_absent(self) -> None:
        while not self._queue.empty():
            command = self._queue.get_nowait()
            self._finish(
                command, DeviceGone(f"{self.name} is not connected: {self.snapshot.detail}")
            )

    async def _next_command(self, timeout: float) -> _Command | None:
        # asyncio.timeout, not wait_for: a cancel in the turn a command arrives goes through
        # (common/waiting.py); the command then stays queued.
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def _poll(self) -> None:
        assert self._driver is not None
        report: StatusReport = await self._in_thread(self._driver.poll)
        self._set(report.status, report.detail, report.facts)

    # long: one command's whole life (timeout, cancel, device gone, fault) in one place so no path skips the status report
    async def _execute(self, command: _Command) -> None:
        driver = self._driver
        assert driver is not None
        if command.future.done():  # canceled while queued
            return
        if command.name == SELF_TEST:
            fn: Callable[..., Any] = lambda: driver.self_test(command.cancel)  # noqa: E731
        else:
            handler = driver.commands().get(command.name)
            if handler is None:
                self._finish(
                    command,
                    DeviceError(
                        Completion.UNSUPPORTED,
                        "unknown_command",
                        f"{self.name} has no command {command.name!r}",
                    ),
                )
                return
            fn = lambda: handler(command.params, command.cancel)  # noqa: E731
        self._current = command
        previous = self.snapshot
        self._set(DeviceStatus.BUSY, f"running {command.name}")
        work = asyncio.ensure_future(self._in_thread(fn))
        try:
            done, _ = await asyncio.wait({work}, timeout=command.timeout)
            if not done:
                # The thread cannot be killed: tell the driver to stop and wait for it to notice.
                command.cancel.cancel(f"{command.name} timed out after {command.timeout:.0f} s")
                await asyncio.wait({work})
                self._finish(
                    command,
                    DeviceError(
                        Completion.TIMEOUT,
                        "timeout",
                        f"{self.name} {command.name} timed out after {command.timeout:.0f} s",
                    ),
                )
            else:
                exc = work.exception()
                if isinstance(exc, DeviceGone):
                    self._finish(command, exc)
                    raise exc
                if exc is not None and not isinstance(exc, DeviceError):
                    log.error(
                        "driver raised unexpectedly",
                        exc_info=exc,
                        extra={"branchline_fields": {"device": self.name}},
                    )
                    exc = DeviceError(
                        Completion.HARDWARE_ERROR,
                        "driver_fault",
                        f"{self.name} {command.name} failed: {type(exc).__name__}",
                    )
                self._finish(command, exc if exc is not None else work.result())
        finally:
            self._current = None
            if self._driver is not None:
                self._set(previous.status, previous.detail)
                with contextlib.suppress(DeviceError):
                    await self._poll()

    @staticmethod
    def _finish(command: _Command, outcome: Any) -> None:
        if command.future.done():
            return
        if isinstance(outcome, BaseException):
            command.future.set_exception(outcome)
        else:
            command.future.set_result(outcome)

    # -- API used by the rest of the agent ------------------------------------------------

    async def submit(
        self, name: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Queue a command; returns its result or raises DeviceError."""
        if self._stopping:
            raise DeviceError(Completion.DEVICE_NOT_READY, "shutting_down", "agent is stopping")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        command = _Command(name, params or {}, timeout or self.config.command_timeout, future)
        await self._queue.put(command)
        try:
            return await future
        except asyncio.CancelledError:
            command.cancel.cancel("caller went away")
            raise

    async def self_test(self) -> tuple[SelfTestResult, Completion, float]:
        start = time.monotonic()
        try:
            result: SelfTestResult = await self.submit(SELF_TEST)
            return result, Completion.SUCCESS, time.monotonic() - start
        except DeviceError as exc:
            return SelfTestResult(False, str(exc)), exc.completion, time.monotonic() - start

    async def run_command(
        self, name: str, params: dict[str, Any], timeout: float | None = None
    ) -> tuple[Completion, str, str, dict[str, Any], float]:
        """(completion, code, detail, result, seconds) for one command; never raises DeviceError."""
        start = time.monotonic()
        try:
            result = await self.submit(name, params, timeout)
        except DeviceError as exc:
            return exc.completion, exc.code, exc.message, {}, time.monotonic() - start
        if not isinstance(result, dict):
            result = {"result": result}
        return Completion.SUCCESS, "", "", result, time.monotonic() - start

    def cancel_current(self, reason: str = "canceled") -> None:
        if self._current is not None:
            self._current.cancel.cancel(reason)

    async def stop(self, grace: float) -> None:
        """Finish the command in flight within ``grace`` seconds, else cancel it; then close."""
        self._stopping = True
        await self._fail_queued_while_absent()
        current = self._current
        if current is not None:
            await asyncio.wait({current.future}, timeout=grace)
        self.cancel_current("agent stopping")

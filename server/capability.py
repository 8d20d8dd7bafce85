"""The one contract every server capability plugs in through.

A capability (fleet, dispatch tasks, calls, tube, ledger, rate feed, PIN verification, ...)
is a package exposing an object with a ``name`` and ``setup(hub)``. In ``setup`` it registers,
through the hub and nowhere else:

- gRPC servicers (``hub.add_servicer``), with the full service names for health/reflection;
- TerminalLink message handlers for its bodies (``hub.handle``) and connect hooks
  (``hub.on_connect``);
- background tasks (``hub.background``), started after the server listens and cancelled in
  reverse order on shutdown;
- shutdown callbacks (``hub.on_stop``), run in reverse order of registration;
- objects other capabilities need (``hub.provide`` / ``hub.require``), e.g. the PIN
  verifier the tube and statements use.

Start-up runs ``setup`` for each capability of ``server.capabilities.CAPABILITIES`` in order;
a new capability touches its own package and one line of that list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc
from sqlalchemy import Engine

from branchline.common.logs import log_event

log = logging.getLogger("branchline.server.capability")

T = TypeVar("T")

MessageHandler = Callable[[str, Any], Awaitable[Any]]
# (terminal id, branch), after each registration on the TerminalLink stream.
ConnectHook = Callable[[str, str], Awaitable[None]]
TaskFactory = Callable[[], Coroutine[Any, Any, None]]
StopCallback = Callable[[], Any]


class StartupError(Exception):
    """The server cannot start with these settings; the message names the option."""


class Capability(Protocol):
    name: str

    def setup(self, hub: Hub) -> None: ...


@dataclass
class Hub:
    """What a capability sees of the server while it sets up."""

    server: grpc.aio.Server
    engine: Engine
    auth: Any  # branchline.server.auth.Authorizer
    link: Any  # branchline.server.link.TerminalLinkServicer
    settings: Any  # branchline.server.app.ServerSettings
    service_names: list[str] = field(default_factory=list)
    # The capabilities set up so far, in order.
    capabilities: list[str] = field(default_factory=list)
    _tasks: list[tuple[str, TaskFactory]] = field(default_factory=list)
    _running: list[tuple[str, asyncio.Task[None]]] = field(default_factory=list)
    _stops: list[tuple[str, StopCallback]] = field(default_factory=list)
    _provided: dict[str, Any] = field(default_factory=dict)
    _current: str = ""

    # -- registration ------------------------------------------------------------------
    def add_servicer(
        self, add_to_server: Callable[[Any, grpc.aio.Server], None], servicer: Any, *names: str
    ) -> None:
        """``add_to_server`` is the generated ``add_XServicer_to_server``; ``names`` the full
        service names (``branchline.v1.Fleet``) reported by health and reflection."""
        add_to_server(servicer, self.server)
        self.service_names.extend(names)

    def handle(self, body: str, handler: MessageHandler) -> None:
        """Answer the TerminalMessage body ``body`` (its oneof field name)."""
        self.link.add_handler(body, handler)

    def on_connect(self, hook: ConnectHook) -> None:
        self.link.on_connect(hook)

    def background(self, name: str, factory: TaskFactory) -> None:
        self._tasks.append((f"{self._current}.{name}", factory))

    def on_stop(self, callback: StopCallback) -> None:
        self._stops.append((self._current, callback))

    def provide(self, key: str, value: Any) -> None:
        if key in self._provided:
            raise ValueError(f"{key!r} is already provided by another capability")
        self._provided[key] = value

    def require(self, key: str) -> Any:
        """An object an earlier capability provided (None when it is not configured, e.g.
        no HSM)."""
        if key not in self._provided:
            raise LookupError(
                f"capability {self._current!r} needs {key!r}, which no earlier capability "
                "provides; check the order of CAPABILITIES"
            )
        return self._provided[key]

    def optional(self, key: str) -> Any:
        return self._provided.get(key)

    # -- lifecycle (used by the app) -----------------------------------------------------
    def setup_all(self, capabilities: Sequence[Capability]) -> None:
        for capability in capabilities:
            self._current = capability.name
            capability.setup(self)
            self.capabilities.append(capability.name)
        self._current = ""

    def start_background(self) -> None:
        for name, factory in self._tasks:
            self._running.append((name, asyncio.create_task(factory(), name=name)))

    async def stop_all(self) -> None:
        """Undo in reverse: background tasks, then stop callbacks."""
        for name, task in reversed(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log_event(log, "background_task_stopped", logging.DEBUG, task=name)
        self._running.clear()
        for owner, callback in reversed(self._stops):
            try:
                result = callback()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # one capability failing to stop must not block the rest
                log.exception("stop callback of %s failed", owner)
        self._stops.clear()

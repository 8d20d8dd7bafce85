"""Start a stack's independent processes side by side (each start waits for its process to
be up; one after another, the waits added up)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tests.integration.stack import Stack


class Background:
    """``start()`` in a thread; ``join()`` waits for it and raises what it raised."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self._error: BaseException | None = None
        self._start = start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._start()
        except BaseException as exc:  # noqa: BLE001 - handed to join()
            self._error = exc

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self._start!r} still starting after {timeout} s")
        if self._error is not None:
            raise self._error


def together(*starts: Callable[[], Any]) -> None:
    """Run every start at once and wait for all of them (the first failure is raised)."""
    running = [Background(start) for start in starts]
    for each in running:
        each.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_and_agent(
    stack: Stack,
    server_extra: Sequence[str] = (),
    start_agent: Callable[[], Any] | None = None,
    after: Background | None = None,
) -> None:
    """The server and the agent (``start_agent``, by default ``stack.start_agent``) start at
    once: the server on a port chosen here, so the agent's config can name it before the
    server listens (the agent connects once it does). ``after``: what the agent waits for
    first (the simulator whose devices it opens)."""
    port = free_port()
    stack.server_port = port

    def agent() -> None:
        if after is not None:
            after.join()
        (start_agent or stack.start_agent)()

    together(
        lambda: stack.start_server(extra=[*server_extra, "--listen", f"127.0.0.1:{port}"]), agent
    )

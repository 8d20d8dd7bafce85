"""Start a stack's independent processes side by side (each start waits for its process to
be up; one after another, the waits added up)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


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

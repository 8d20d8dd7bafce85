"""The one resumable watch of ``branchline-teller`` (dispatch events, tube events, call
signalling and device outcomes).

A watch asks for the items after a position; each item carries its own position. When the
stream is lost to a transient status (the server restarted, a replica went away) the watch
reconnects after a jittered pause that doubles up to a cap (and starts over after an item
arrives), and resumes after the last item it showed: nothing twice, nothing skipped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from branchline.server.teller.output import notice

T = TypeVar("T")

# Statuses after which a watch reconnects: the server restarted or a replica went away.
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@dataclass
class Backoff:
    """Jittered pauses (seconds) doubling from ``first`` up to ``cap``."""

    first: float = 0.2
    cap: float = 3.0

    def __post_init__(self) -> None:
        self._next = self.first

    def reset(self) -> None:
        self._next = self.first

    def pause(self) -> float:
        delay = self._next * random.uniform(0.5, 1.0)
        self._next = min(self._next * 2, self.cap)
        return delay


def follow(
    open_stream: Callable[[int], Iterable[T]],
    position: Callable[[T], int],
    show: Callable[[T], None],
    *,
    after: int = 0,
    count: int = 0,
    reconnect_on_end: bool = True,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show each item of ``open_stream(after)``; resume after the last one shown when the
    stream is lost (and, with ``reconnect_on_end``, when the server ends it). Stops after
    ``count`` items (0: never) and returns 0; a status that is not transient is raised."""
    last, seen = after, 0
    pauses = backoff or Backoff()
    while True:
        try:
            for item in open_stream(last):
                pauses.reset()
                last = max(last, position(item))
                show(item)
                seen += 1
                if count and seen >= count:
                    return 0
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]  # a failed call is a grpc.Call
            if code not in TRANSIENT:
                raise
            delay = pauses.pause()
            notice(f"stream lost ({code.name}); resuming after {last} in {delay:.1f} s")
            sleep(delay)
            continue
        if not reconnect_on_end:
            return 0
        sleep(pauses.pause())

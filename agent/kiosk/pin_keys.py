"""Digit counts from the PIN pad, read off its (already redacted) wire traffic.

The PIN pad reports each key as a KEY_EVENT holding only the count of digits entered; the
driver's ``read_pin`` waits for the final result and does not pass the events on, so the
kiosk listens to the pad owner's spy feed while an entry runs and decodes those events
itself. Digit values never leave the pad: the count is all there is to read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from branchline.agent.device_owner import SpyChunk
from branchline.drivers.pin_pad import protocol as p


class KeyCounter:
    """Feeds received bytes through the pad's frame decoder; calls ``on_count`` per key."""

    def __init__(self, on_count: Callable[[int, str], None]) -> None:
        self._on_count = on_count
        self._decoder = p.FrameDecoder()

    def feed(self, chunk: SpyChunk) -> None:
        if chunk.direction != "rx":
            return
        for item in self._decoder.feed(chunk.data):
            if not isinstance(item, p.Frame):
                continue
            message = p.decode_device_message(item)
            if isinstance(message, p.KeyEvent):
                self._on_count(message.count, message.kind.value)


async def follow_keys(queue: asyncio.Queue[SpyChunk], on_count: Callable[[int, str], None]) -> None:
    """Until canceled: every key the pad reports on ``queue`` becomes ``on_count(count, kind)``."""
    counter = KeyCounter(on_count)
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            counter.feed(await queue.get())

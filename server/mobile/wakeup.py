"""A poll loop's sleep that something happening in this process cuts short.

The pushers (``link.PairingPusher``, ``job_link.JobPusher``) poll the database because a
phone may act through any replica; when it acts through this one (a job submitted, a
handle opened, a pairing canceled) the Mobile API wakes them, so the terminal hears of it
at once instead of up to one interval later. The poll stays for the other replicas.
"""

from __future__ import annotations

import asyncio


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the loop (from the event loop's thread: the servicer's async methods)."""
        self._event.set()

    async def sleep(self, interval: float) -> None:
        """Up to ``interval`` seconds, less when woken."""
        try:
            await asyncio.wait_for(self._event.wait(), interval)
        except TimeoutError:
            pass
        self._event.clear()

"""Waiting for an ``asyncio.Event`` with a time limit, in a way the waiter can always be
canceled.

``asyncio.wait_for(event.wait(), t)`` of Python 3.11 runs the wait as a task of its own; when
the caller is canceled in the turn of the loop that finishes that task (the event set just
before the ``cancel()``), it returns the result and drops the cancel (CPython gh-86296, fixed
in 3.12). A loop that waits so — the outbox sender, a transaction's runner — then carries on
after ``cancel()``, and whoever awaits it (the agent's shutdown) waits for ever.
``asyncio.timeout`` waits in the caller's own task and tells its own cancel from another's.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Until ``event`` is set (True) or ``seconds`` pass (False); a cancel always goes up."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        # Set in the very turn the time ran out: still an answer worth giving.
        return event.is_set()
    return True

"""Service calls that write, run as units of the TerminalLink's group-commit applier.

On SQLite the applier's batch holds the only write lock for as long as a batch runs: a
write on a thread of its own (``asyncio.to_thread`` around a ``write_transaction``) waits
behind it and, under load, fails with "database is locked". Joined to the batch (a
SAVEPOINT of its own, ``server/applier.py``) it never waits on the lock, and on PostgreSQL
it shares the batch's commit. Reads the call makes run on the batch's connection too.

``priority=True`` (the default): staff consoles, the phone gateway, sweeps and pushers —
never refused, ahead of waiting terminal requests. Terminal requests pass ``priority=False``
and so meet the applier's backpressure (``ServerBusy``, code ``server_busy`` with
``retry_after``), as the tube's do.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from branchline.server.applier import Applier

T = TypeVar("T")


async def apply_write(
    applier: Applier | None,
    fn: Callable[..., T],
    *args: Any,
    priority: bool = True,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)`` in the applier's next batch (a thread of its own without an
    applier: unit tests that build a servicer alone); its result or its refusal once
    committed."""
    if applier is None:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return await applier.apply(functools.partial(fn, *args, **kwargs), priority=priority)

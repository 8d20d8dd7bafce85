"""Failpoints: kill the process at a named point, so crash recovery can be tested for real.

``BRANCHLINE_FAILPOINTS`` holds comma-separated ``name=N`` entries; ``hit(name, n)`` sends
SIGKILL to this very process when an entry names it with that ``n`` (e.g.
``tube_deposit.after=5``: right after the fifth journaled step of a tube deposit is durable,
before it is acted on). Unset — as in production — every ``hit`` is one dictionary lookup.
The crash tests set it on the agent's process only.
"""

from __future__ import annotations

import os
import signal
import sys

VARIABLE = "BRANCHLINE_FAILPOINTS"


class BadFailpoints(ValueError):
    pass


def parse(text: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, number = item.partition("=")
        if not sep or not name or not number.isdigit():
            raise BadFailpoints(f"{VARIABLE}: {item!r} is not name=N")
        points[name] = int(number)
    return points


_POINTS = parse(os.environ.get(VARIABLE, ""))


def active() -> dict[str, int]:
    return dict(_POINTS)


def hit(name: str, n: int) -> None:
    if _POINTS.get(name) == n:
        # Say where we died on stderr (the test reads it), then die as a power cut would:
        # no cleanup, no flush of anything but this line.
        sys.stderr.write(f"failpoint {name}={n}: SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

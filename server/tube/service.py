"""``TubeService``: the tube transactions' rules, as plain methods (no gRPC here).

The terminal's side (``terminal.TerminalSide``: open, events, query, each exactly once) and
the back office's (``backoffice.BackOffice``: receive, count, send, incidents, the stale
sweep; ``desk_video.DeskVideo`` on top: the back office's video signalling) share one
database, one core banking and one list of listeners told about every changed transaction
after its commit (the TerminalLink pusher is one).
"""

from __future__ import annotations

from branchline.server.tube.core import DEFAULT_STALE_AFTER, Listener
from branchline.server.tube.desk_video import DeskVideo
from branchline.server.tube.terminal import TerminalSide

__all__ = ["DEFAULT_STALE_AFTER", "Listener", "TubeService"]


class TubeService(TerminalSide, DeskVideo):
    """Construct with (engine, ledger, sessions, clock=..., notify=..., settings=...,
    stale_after=...); see ``core.TubeCore``."""

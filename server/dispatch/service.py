"""The dispatch core's service at the import path ``server/app.py`` and the first
``dispatch/capability.py`` used; the operations live in the ``tasks`` package, one module
per role, and ``tasks`` is where new code imports them from."""

from branchline.server.dispatch.model import ACCEPT, CANCELLED, DONE, REJECT, WAIT
from branchline.server.dispatch.tasks.core import OPERATOR, TERMINAL, EventScope
from branchline.server.dispatch.tasks.service import DispatchService

__all__ = [
    "ACCEPT",
    "CANCELLED",
    "DONE",
    "OPERATOR",
    "REJECT",
    "TERMINAL",
    "WAIT",
    "DispatchService",
    "EventScope",
]

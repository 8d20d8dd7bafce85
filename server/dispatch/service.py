"""The dispatch core's service, where ``server/app.py`` has always imported it from; the
operations live in the ``tasks`` package, one module per role."""

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

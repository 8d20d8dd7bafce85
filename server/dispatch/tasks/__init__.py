"""Cross-branch tasks: one module per role over a shared ``Core``.

``core`` (settings, clock, extension points), ``sql`` (statements), ``checks`` (who may act
on which task), ``roster`` (branches and staff records), ``duty`` (duty and presence),
``offers`` (routing and offers inside a transaction), ``lifecycle`` (send, answer,
reassign, cancel, complete), ``materials`` (with ``material_audit``
and ``retention``), ``reads`` (tasks and the event feed), ``sweep``
(expired offers, missed matches); ``service.DispatchService`` binds them as methods.
"""

from branchline.server.dispatch.tasks.core import EventScope
from branchline.server.dispatch.tasks.service import DispatchService

__all__ = ["DispatchService", "EventScope"]

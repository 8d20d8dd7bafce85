"""Video-teller calls: queue, routing by skill, answer and hang-up, signalling relay,
remote-peripheral commands and the customer's signature. Each operation is one
transaction; nothing lives only in memory, so a restart or another replica loses nothing.

A call takes a teller exactly as a task does: the teller row's ``load`` moves with a
conditional UPDATE (on duty, present, load 0), so a teller never holds two calls (nor a
call and a task) whatever runs concurrently on whichever replica. A teller who becomes
free takes the oldest queued call of their branch and skills before any queued task.

One module per role over a shared ``CallCore``: ``model`` (states, limits, records),
``sql`` (statements; the queue head from the shared ``dispatch.queue``), ``access`` (who may
act on which call), ``queueing`` (request, leave, answer, end), ``position`` (queue position
and wait), ``ringing`` (routing calls to tellers, the sweep), ``signalling``,
``peripherals`` (device commands, PIN translation, signatures); ``service.CallService``
binds them as methods.
"""

from branchline.server.dispatch.calls.model import (
    CallView,
    CommandView,
    Outcome,
    PinTranslator,
    SignalView,
    TranslationFailed,
    estimated_wait,
)
from branchline.server.dispatch.calls.service import CallService

__all__ = [
    "CallService",
    "CallView",
    "CommandView",
    "Outcome",
    "PinTranslator",
    "SignalView",
    "TranslationFailed",
    "estimated_wait",
]

"""Every server capability, in start-up order (shutdown undoes them in reverse).

A capability may ``hub.require`` only what an earlier one provides: ``metrics`` provides
the instruments (None without ``--metrics-listen``); ``delivery`` the bus pushes and
change signals cross replicas on; ``pin`` provides the
HSM, the PIN verifier and translator; ``ledger`` the embedded ledger; ``dispatch`` the
queue calls are routed through. A new capability is its own package with a
``capability.py`` and one line here.
"""

from __future__ import annotations

from branchline.server.assistant.capability import ASSISTANT
from branchline.server.capability import Capability
from branchline.server.cheques.capability import CHEQUES
from branchline.server.delivery.capability import DELIVERY
from branchline.server.dispatch.capability import CALLS, DISPATCH_TASKS
from branchline.server.fleet.capability import FLEET
from branchline.server.ledger.capability import LEDGER
from branchline.server.metrics.capability import METRICS
from branchline.server.mobile.capability import MOBILE
from branchline.server.pin.capability import PIN
from branchline.server.rates.capability import RATES
from branchline.server.recordings.capability import RECORDINGS
from branchline.server.tube.capability import TUBE

CAPABILITIES: list[Capability] = [
    METRICS,
    DELIVERY,
    PIN,
    FLEET,
    RATES,
    LEDGER,
    TUBE,
    CHEQUES,
    DISPATCH_TASKS,
    CALLS,
    RECORDINGS,
    MOBILE,
    ASSISTANT,
]

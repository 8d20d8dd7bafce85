"""Names of tube transactions (kinds, states, events, assets).

Refusals are the errors of ``branchline.common.errors``; their reasons (``wrong_state``,
``not_found``, ``txn_id_reused`` ...) are stable.

States and kinds are stored as short lower-case strings; ``convert`` maps them to the enums
of tube.proto.
"""

from __future__ import annotations

from types import MappingProxyType

DEPOSIT = "deposit"
WITHDRAWAL = "withdrawal"
KINDS = (DEPOSIT, WITHDRAWAL)

OPEN = "open"
IN_TRANSIT = "in_transit"
RECEIVED = "received"
COUNTED = "counted"
DISPATCHED = "dispatched"
DELIVERED = "delivered"
DISPUTED = "disputed"
RETURNING = "returning"
POSTED = "posted"
RETURNED = "returned"
REVERSED = "reversed"
CANCELED = "canceled"
HANDED_TO_TELLER = "handed_to_teller"
STATES = (
    OPEN,
    IN_TRANSIT,
    RECEIVED,
    COUNTED,
    DISPATCHED,
    DELIVERED,
    DISPUTED,
    RETURNING,
    POSTED,
    RETURNED,
    REVERSED,
    CANCELED,
    HANDED_TO_TELLER,
)
FINAL = frozenset({POSTED, RETURNED, REVERSED, CANCELED, HANDED_TO_TELLER})
ACTIVE = tuple(s for s in STATES if s not in FINAL)

# Terminal events (TubeEventKind), by name.
CARRIER_SENT = "carrier_sent"
CARRIER_ARRIVED = "carrier_arrived"
CARRIER_TAKEN = "carrier_taken"
CONFIRM = "confirm"
DISPUTE = "dispute"
CANCEL = "cancel"
REVERSE = "reverse"
HANDOVER = "handover"

# What goes through the tube, and the kind of account each goes into or comes out of.
CASH = "cash"
METAL = "metal"
BILL = "bill"
ACCOUNT_KIND = MappingProxyType({CASH: "cash", METAL: "metal", BILL: "bills"})

# The dispute reasons a terminal sends with DISPUTE.
DISPUTE_RETURN = "dispute_return"
DISPUTE_TELLER = "dispute_teller"

# Tellers with this skill work the tube at the back office.
BACK_OFFICE_SKILL = "back_office"

TERMINAL_ACTOR = "terminal"
TELLER_ACTOR = "teller"
SERVER_ACTOR = "server"
# Who a change is by (``actor``: ``terminal:T-0001``, ``teller:BO-1``, ``server``).
ACTORS = (TERMINAL_ACTOR, TELLER_ACTOR, SERVER_ACTOR)

# Events of the record that are not a terminal's event kind or a state's name.
ARRIVED = "arrived"
TAKEN = "taken"
INCIDENT_OPENED = "incident_opened"
INCIDENT_RESOLVED = "incident_resolved"

# What a tube_events row records (``Tx.event`` refuses any other: the staff console names
# each of these in words, and its catalogue test reads this list).
EVENTS = (
    OPEN,
    CARRIER_SENT,
    ARRIVED,
    TAKEN,
    RECEIVED,
    COUNTED,
    DISPATCHED,
    RETURNING,
    DISPUTED,
    RETURNED,
    POSTED,
    REVERSED,
    CANCELED,
    HANDED_TO_TELLER,
    INCIDENT_OPENED,
    INCIDENT_RESOLVED,
)

STALE_INCIDENT = "stale"
WRONG_CARRIER_INCIDENT = "wrong_carrier"
DISPUTE_INCIDENT = "dispute"
# The server's own incident kinds; a terminal's reverse or handover opens one named by its
# reason (free text).
INCIDENTS = (STALE_INCIDENT, WRONG_CARRIER_INCIDENT, DISPUTE_INCIDENT)


def actor(role: str, ident: str = "") -> str:
    return f"{role}:{ident}" if ident else role

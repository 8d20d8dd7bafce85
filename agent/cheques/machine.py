"""The journal's state table for a cheque-book purchase, and what each stage means.

Every state is a step the terminal journals BEFORE it acts on it, so each names the action
that comes next; recovery runs the action of the state a purchase was left in, and every
action is safe to run again: server messages go through the outbox under one idempotency key,
device actions look at the device first (a leaf's print job is found by its name, a present
the printer refuses because it already happened reads the presenter's state).

    starting -> awaiting_id -> checking_id -> awaiting_face -> checking_face
      -> awaiting_order -> ordering -> printing (one step per leaf) -> presenting (per book)
      -> ... -> finishing -> completed
    a refusal at checking_id / checking_face / ordering goes back to the customer's stage
    (the code says why); the third failed face ends it locked (the server closed it);
    a fault while printing or a book not taken: faulted (leaf outcomes) -> failing -> failed;
    the customer cancels, times out, or the agent restarted while waiting for them:
    canceling -> canceled; the server refused the start: refused.
    the journal refusing a stage's data for good (agent/cheques/ending.py): before the order
    canceling (starting -> canceling too), from the order on failing (ordering, printing,
    presenting -> failing too): the server voids the rest, refunds, opens an incident.
"""

from __future__ import annotations

from types import MappingProxyType

from branchline.agent.journal.txjournal import StateMachine

KIND = "cheque_purchase"

COMPLETED = "completed"
CANCELED = "canceled"
FAILED = "failed"
LOCKED = "locked"
REFUSED = "refused"
FINAL = frozenset({COMPLETED, CANCELED, FAILED, LOCKED, REFUSED})

STARTING = "starting"
AWAITING_ID = "awaiting_id"
CHECKING_ID = "checking_id"
AWAITING_FACE = "awaiting_face"
CHECKING_FACE = "checking_face"
AWAITING_ORDER = "awaiting_order"
ORDERING = "ordering"
PRINTING = "printing"
PRESENTING = "presenting"
FAULTED = "faulted"
FAILING = "failing"
FINISHING = "finishing"
CANCELING = "canceling"

# Stages where the customer acts (a restart of the agent cancels these: the screen is gone).
CUSTOMER_STAGES = frozenset({AWAITING_ID, AWAITING_FACE, AWAITING_ORDER})
# Stages that only wait for the server's answer (the customer's call waits them out).
SERVER_STAGES = frozenset({STARTING, CHECKING_ID, CHECKING_FACE, ORDERING})
# Stages after which a cancel is still possible (nothing printed yet).
CANCELABLE = CUSTOMER_STAGES

MACHINE = StateMachine(
    initial=STARTING,
    transitions=MappingProxyType(
        {
            state: frozenset(targets)
            for state, targets in {
                STARTING: {AWAITING_ID, REFUSED, CANCELING},
                AWAITING_ID: {CHECKING_ID, CANCELING},
                CHECKING_ID: {AWAITING_FACE, AWAITING_ID, CANCELING},
                AWAITING_FACE: {CHECKING_FACE, CANCELING},
                CHECKING_FACE: {AWAITING_ORDER, AWAITING_FACE, LOCKED, CANCELING},
                AWAITING_ORDER: {ORDERING, CANCELING},
                ORDERING: {PRINTING, AWAITING_ORDER, CANCELING, FAILING},
                PRINTING: {PRINTING, PRESENTING, FAULTED, FAILING},
                PRESENTING: {PRINTING, FINISHING, FAULTED, FAILING},
                FAULTED: {FAILING},
                FAILING: {FAILED},
                FINISHING: {COMPLETED},
                CANCELING: {CANCELED},
                **{state: set() for state in FINAL},
            }.items()
        }
    ),
    final=FINAL,
)

# The screen each stage shows on the kiosk page (agent/kiosk/flows/cheque.py).
SCREENS = MappingProxyType(
    {
        STARTING: "wait",
        AWAITING_ID: "id",
        CHECKING_ID: "wait",
        AWAITING_FACE: "face",
        CHECKING_FACE: "wait",
        AWAITING_ORDER: "order",
        ORDERING: "wait",
        PRINTING: "printing",
        PRESENTING: "take",
        FAULTED: "wait",
        FAILING: "wait",
        FINISHING: "wait",
        CANCELING: "wait",
        **{state: "result" for state in FINAL},
    }
)

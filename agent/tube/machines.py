"""The journal's state tables for tube transactions, and what each stage means to a customer.

Every state is a step the terminal journals BEFORE it acts on it, so each names the action
that comes next (``sending``: the carrier is about to be, or is being, sent). Recovery runs
the action of the state a transaction was left in; every action is safe to run again: device
actions look at the device first, and server messages go through the outbox under one
idempotency key.

Deposit:   opening -> awaiting_carrier -> sending -> sent -> counted -> confirming -> posted
           -> completed; counted -> disputing -> awaiting_return -> return_arrived
           -> return_taken -> returned (or -> handed_to_teller)
Withdrawal: authorising -> awaiting_delivery -> arrived -> taken -> capturing -> posted
           -> completed; or -> reversing -> reversed (lost, not taken, never sent)
Either:    -> canceling -> canceled (nothing moved), -> handing_over -> handed_to_teller.
The journal refusing a stage's data for good ends it early (agent/tube/ending.py): the
withdrawal's hold reversed (authorising -> reversing too), the carrier handed over (taken ->
handing_over too), a deposit opened with the server canceled (opening -> canceling too).
"""

from __future__ import annotations

from types import MappingProxyType

from branchline.agent.journal.txjournal import StateMachine
from branchline.v1 import tube_pb2 as pb

DEPOSIT = "tube_deposit"
WITHDRAWAL = "tube_withdrawal"

# Final states and what the customer is told the transaction came to.
COMPLETED = "completed"
RETURNED = "returned"
REVERSED = "reversed"
CANCELED = "canceled"
HANDED_TO_TELLER = "handed_to_teller"
FINAL = frozenset({COMPLETED, RETURNED, REVERSED, CANCELED, HANDED_TO_TELLER})

# Closing states: the server is being told how it ended; then a receipt, then final.
CANCELING = "canceling"
REVERSING = "reversing"
HANDING_OVER = "handing_over"
POSTED = "posted"
RETURN_TAKEN = "return_taken"
CLOSING_TO_FINAL = MappingProxyType(
    {
        CANCELING: CANCELED,
        REVERSING: REVERSED,
        HANDING_OVER: HANDED_TO_TELLER,
        POSTED: COMPLETED,
        RETURN_TAKEN: RETURNED,
    }
)


def _table(edges: dict[str, set[str]]) -> MappingProxyType[str, frozenset[str]]:
    return MappingProxyType({state: frozenset(targets) for state, targets in edges.items()})


DEPOSIT_MACHINE = StateMachine(
    initial="opening",
    transitions=_table(
        {
            "opening": {"awaiting_carrier", CANCELED, CANCELING},
            "awaiting_carrier": {"sending", CANCELING, HANDING_OVER},
            "sending": {"sent", "awaiting_carrier", HANDING_OVER},
            "sent": {"counted", HANDING_OVER},
            "counted": {"confirming", "disputing", HANDING_OVER},
            "confirming": {POSTED, HANDING_OVER},
            "disputing": {"awaiting_return", HANDING_OVER},
            "awaiting_return": {"return_arrived", HANDING_OVER},
            "return_arrived": {RETURN_TAKEN, HANDING_OVER},
            POSTED: {COMPLETED},
            RETURN_TAKEN: {RETURNED},
            CANCELING: {CANCELED, HANDED_TO_TELLER},
            HANDING_OVER: {HANDED_TO_TELLER},
            **{state: set() for state in FINAL},
        }
    ),
    final=FINAL,
)

WITHDRAWAL_MACHINE = StateMachine(
    initial="authorising",
    transitions=_table(
        {
            "authorising": {"awaiting_delivery", CANCELED, REVERSING},
            "awaiting_delivery": {"arrived", CANCELING, REVERSING, HANDING_OVER},
            "arrived": {"taken", REVERSING, HANDING_OVER},
            "taken": {"capturing", HANDING_OVER},
            "capturing": {POSTED, HANDING_OVER},
            POSTED: {COMPLETED},
            CANCELING: {CANCELED, HANDED_TO_TELLER},
            REVERSING: {REVERSED, HANDED_TO_TELLER},
            HANDING_OVER: {HANDED_TO_TELLER},
            **{state: set() for state in FINAL},
        }
    ),
    final=FINAL,
)

MACHINES = MappingProxyType({DEPOSIT: DEPOSIT_MACHINE, WITHDRAWAL: WITHDRAWAL_MACHINE})
KIND_TO_PB = MappingProxyType({DEPOSIT: pb.TUBE_KIND_DEPOSIT, WITHDRAWAL: pb.TUBE_KIND_WITHDRAWAL})

S = pb.CustomerStep
# What the customer does in each stage, and what the screen says.
STAGES: MappingProxyType[str, tuple[int, str]] = MappingProxyType(
    {
        "opening": (S.CUSTOMER_STEP_WAIT, "Opening your deposit with the bank"),
        "awaiting_carrier": (
            S.CUSTOMER_STEP_LOAD_CARRIER,
            "Put your items in the carrier, place it in the station, close the door, "
            "then press Send",
        ),
        "sending": (S.CUSTOMER_STEP_WAIT, "Sending the carrier to the back office"),
        "sent": (S.CUSTOMER_STEP_WAIT, "The back office is counting your deposit"),
        "counted": (
            S.CUSTOMER_STEP_DECIDE,
            "Check what the back office counted, then confirm or dispute",
        ),
        "confirming": (S.CUSTOMER_STEP_WAIT, "Crediting your account"),
        "disputing": (S.CUSTOMER_STEP_WAIT, "Recording your dispute"),
        "awaiting_return": (
            S.CUSTOMER_STEP_WAIT,
            "The back office is sending your carrier back",
        ),
        "return_arrived": (S.CUSTOMER_STEP_TAKE_CARRIER, "Take your carrier out of the station"),
        "authorising": (S.CUSTOMER_STEP_WAIT, "Checking your balance"),
        "awaiting_delivery": (
            S.CUSTOMER_STEP_WAIT,
            "The back office is preparing your withdrawal",
        ),
        "arrived": (S.CUSTOMER_STEP_TAKE_CARRIER, "Your carrier has arrived: take it out"),
        "taken": (S.CUSTOMER_STEP_CONFIRM_RECEIPT, "Confirm that you received your withdrawal"),
        "capturing": (S.CUSTOMER_STEP_WAIT, "Recording your withdrawal"),
        POSTED: (S.CUSTOMER_STEP_WAIT, "Printing your receipt"),
        RETURN_TAKEN: (S.CUSTOMER_STEP_WAIT, "Printing your receipt"),
        CANCELING: (S.CUSTOMER_STEP_WAIT, "Canceling"),
        REVERSING: (S.CUSTOMER_STEP_WAIT, "Canceling your withdrawal"),
        HANDING_OVER: (S.CUSTOMER_STEP_WAIT, "A teller will help you"),
        COMPLETED: (S.CUSTOMER_STEP_NONE, "Done: take your receipt"),
        RETURNED: (S.CUSTOMER_STEP_NONE, "Your carrier was returned; nothing was posted"),
        REVERSED: (
            S.CUSTOMER_STEP_NONE,
            "Your withdrawal was canceled: nothing was taken from your account",
        ),
        CANCELED: (S.CUSTOMER_STEP_NONE, "Canceled: nothing was posted"),
        HANDED_TO_TELLER: (S.CUSTOMER_STEP_NONE, "A teller will help you: please see the counter"),
    }
)

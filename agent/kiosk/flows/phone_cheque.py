"""A cheque book ordered on the phone, carried out by the terminal's cheque sale (issue 15's
engine, ``agent/cheques/``), never around it.

The job only pre-fills what the customer chose on the phone: the account that pays and the
number of leaves (the offer with that many leaves per book gets one book on the order form).
The sale's own rules all still apply: the registered purchaser's ID card and face, the
server's allocation and the fee; the customer still presses order on the terminal once the
fee is shown. The phone learns the end: done with the purchase's reference (``BLCQ:...``),
or failed with the sale's refusal code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from branchline.agent.cheques import customer as cheque_customer
from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeRefused, Live
from branchline.agent.kiosk.flows import cheque, deposit
from branchline.agent.kiosk.flows.phone_job_state import (
    account_for,
    end_job,
    follow_transaction,
    intend_transaction,
    jobs_of,
)
from branchline.v1 import mobile_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

# session.scratch: the leaves per book the phone asked for (the order form's pre-fill).
LEAVES = "phone_cheque_leaves"


def prefill(session: KioskSession, offers: list[dict[str, Any]]) -> dict[str, int]:
    """Books per book type on the order form: one of the offer with the phone's leaves."""
    leaves = session.scratch.get(LEAVES)
    if not leaves:
        return {}
    for offer in offers:
        if offer["leaves"] == leaves and not offer["refused_rule"]:
            return {offer["book_type"]: 1}
    return {}


async def run(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> None:
    """Start the sale for the signed-in customer's account and follow it to its end."""
    customer = deposit.signed_in(session)
    session.scratch[LEAVES] = int(offer.cheque_leaves)
    await intend_transaction(session, offer, "cheque")
    try:
        live = await cheque_customer.start_card(
            session.agent.cheques, customer, account_for(session)
        )
    except ChequeRefused as exc:
        session.scratch.pop(LEAVES, None)
        raise cheque.refusal(exc) from None
    cheque.follow(session, live)
    await follow_transaction(session, offer, "cheque", live.purchase_id)
    session.spawn(_follow(session, offer, live), "phone_job_follow", "")


async def _follow(session: KioskSession, offer: mobile_pb2.PhoneJobOffer, live: Live) -> None:
    while not live.finished:
        changed = live.changed
        await changed.wait()
    view = cheque_customer.view(session.agent.cheques, live)
    completed = live.stage == m.COMPLETED
    session.scratch.pop(LEAVES, None)
    jobs_of(session).clear()
    await end_job(
        session,
        offer.job_id,
        "done" if completed else "failed",
        offer.service,
        reason="" if completed else (live.code or live.stage),
        receipt_reference=view["reference"] if completed else "",
    )

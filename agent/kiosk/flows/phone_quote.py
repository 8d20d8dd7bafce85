"""The rate of a withdrawal ordered on the phone, checked at the terminal before anything
is released (issue 16; docs/mobile.md "Jobs").

The phone showed a quote on rate version V (``/api/quote``) and the job carries V. Rates
move; what the bank wants is that nobody is paid out at a rate they have not seen. The
withdrawal always waits for the customer's confirmation on this terminal's screen, so that
screen shows the rate the terminal will post now (the quote as the kiosk's own withdrawal
makes it, ``withdrawal.make_quote``) and, when that is not V, says the rate changed: the
customer's confirmation there is their consent to the new rate (re-confirm, not a silent
repost). Should the rates change again while the confirm screen is up, the confirmation is
refused (``rates_changed``, field ``rate_version``) and the screen shows the new rate to
confirm again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import i18n
from branchline.agent.kiosk.flows import withdrawal
from branchline.agent.kiosk.flows.phone_job_state import account_for
from branchline.common.errors import FailedPrecondition
from branchline.v1 import mobile_pb2

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession


def confirm_data(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> dict[str, Any]:
    """The confirm screen's rate lines (none without a conversion or for other services)."""
    if offer.service != "tube_withdrawal":
        return {}
    quote = withdrawal.make_quote(
        session,
        {"account_id": account_for(session), "currency": offer.currency, "amount": offer.amount},
    )
    version = int(quote["rate_version"])
    if not version:
        return {"rate_version": 0}
    return {
        "rate": quote["rate"],
        "rate_version": version,
        "quoted_rate_version": int(offer.rate_version),
        "rate_changed": version != offer.rate_version,
        "equivalent": i18n.format_amount(
            session.lang, quote["equivalent"], quote["account_currency"]
        ),
    }


def still_shown(session: KioskSession, offer: mobile_pb2.PhoneJobOffer) -> dict[str, Any]:
    """At confirm: ``{}`` when the rate on screen is the rate the terminal posts now, else
    the new rate lines (the caller shows them and refuses this confirmation)."""
    fresh = confirm_data(session, offer)
    if fresh.get("rate_version", 0) == session.data.get("rate_version", 0):
        return {}
    return fresh


def changed_error() -> FailedPrecondition:
    return FailedPrecondition(
        "rate_version: the rate changed while the screen was up; check the new rate and "
        "confirm again",
        field="rate_version",
        reason="rates_changed",
    )

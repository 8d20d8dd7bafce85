"""One module per customer flow; this table routes each screen to its flow.

``HANDLERS``: the screen's action handler. ``RELABEL``: re-formats a screen's values after a
language switch. ``LIVE``: re-derives a screen that shows live state (every session tick).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk.flows import (
    assistant,
    attract,
    card_pin,
    cheque,
    deposit,
    menu,
    phone_job,
    rates,
    recordings,
    statement,
    tube,
    video,
    withdrawal,
)

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

Handler = Callable[["KioskSession", str, dict[str, Any]], Awaitable[None]]
Refresh = Callable[["KioskSession"], None]

HANDLERS: dict[str, Handler] = {
    "attract": attract.on_action,
    "card": card_pin.on_card,
    "pin": card_pin.on_pin,
    "pin_failed": card_pin.on_pin_failed,
    "auth_error": card_pin.on_ok,
    "card_retained": card_pin.on_ok,
    "menu": menu.on_action,
    "deposit_form": deposit.on_action,
    "withdrawal_form": withdrawal.on_form,
    "withdrawal_quote": withdrawal.on_quote,
    "tube": tube.on_action,
    "statement": statement.on_action,
    "rates": rates.on_action,
    "video": video.on_action,
    "cheque_method": cheque.on_method,
    "cheque_code": cheque.on_code,
    "cheque": cheque.on_action,
    "assistant": assistant.on_action,
    "my_recordings": recordings.on_action,
    "phone_job": phone_job.on_ready,
    "phone_job_confirm": phone_job.on_confirm,
}
RELABEL: dict[str, Refresh] = {
    "menu": menu.refresh,
    "deposit_form": deposit.relabel,
    "withdrawal_form": withdrawal.relabel_form,
    "withdrawal_quote": withdrawal.relabel_quote,
    "tube": tube.relabel,
    "statement": statement.relabel,
    "rates": rates.refresh,
    "video": video.refresh,
    "cheque_method": cheque.relabel_method,
    "cheque": cheque.relabel,
    "assistant": assistant.refresh,
}
LIVE: dict[str, Refresh] = {
    "attract": attract.refresh,
    "out_of_service": attract.refresh,
    "menu": menu.refresh,
    "rates": rates.refresh,
    "video": video.refresh,
    "withdrawal_form": withdrawal.relabel_form,
    "statement": statement.refresh,
}
ENTER: dict[str, Refresh] = {
    "menu": menu.show_menu,
    "deposit": deposit.show,
    "withdrawal": withdrawal.show,
    "statement": lambda session: statement.show(session),
    "rates": rates.show,
    "video": video.show,
    "cheque": cheque.show,
    "assistant": assistant.show,
    "recordings": lambda session: recordings.show(session),
    "phone_job": phone_job.after_sign_in,
}


def enter(session: KioskSession, service: str) -> None:
    """Open ``service``'s first screen (``menu`` for the signed-in menu)."""
    ENTER[service](session)

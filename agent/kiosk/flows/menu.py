"""The signed-in menu: the customer's accounts and the services, or finish (card back)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import i18n, services
from branchline.common.errors import FailedPrecondition

if TYPE_CHECKING:
    from branchline.agent.customer.session import AccountView
    from branchline.agent.kiosk.session import KioskSession


def account_json(lang: str, account: AccountView) -> dict[str, str]:
    return {
        "account_id": account.account_id,
        "kind": account.kind,
        "currency": account.currency,
        "currency_name": i18n.currency_name(lang, account.currency),
        "balance": i18n.format_amount(lang, account.balance, account.currency),
        "available": i18n.format_amount(lang, account.available, account.currency),
    }


def _data(session: KioskSession) -> dict[str, Any]:
    customer = session.customer
    assert customer is not None
    live = services.live_from_agent(session.agent)
    return {
        "pan_masked": customer.pan_masked,
        "services": [o.to_json() for o in services.offers(live)],
        "notices": services.notices(live),
        "accounts": [account_json(session.lang, a) for a in customer.accounts],
    }


def show_menu(session: KioskSession) -> None:
    session.show("menu", **_data(session))


def refresh(session: KioskSession) -> None:
    if session.customer is not None:
        session.update(**_data(session))


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    from branchline.agent.kiosk.flows import attract, enter

    if action == "finish":
        session.run(session.end("finished"), "finish")
    elif action == "start":
        chosen = attract.offer(session, data.get("service"))
        enter(session, chosen.id)
    else:
        raise FailedPrecondition(
            f"action: the menu takes start or finish, not {action[:32]!r}", reason="wrong_screen"
        )

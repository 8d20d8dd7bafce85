"""The FX rates board: the agent's latest table, marked stale when it is."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import i18n
from branchline.common.errors import FailedPrecondition

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession


def board(session: KioskSession) -> dict[str, Any]:
    book = session.agent.rates
    snapshot = book.current
    if snapshot is None:
        return {"known": False, "stale": True, "as_of": "", "base": "", "rates": []}
    lang = session.lang
    return {
        "known": True,
        "stale": book.stale,
        "as_of": i18n.format_datetime(lang, snapshot.as_of.astimezone(UTC)),
        "version": snapshot.version,
        "base": snapshot.base_currency,
        "base_name": i18n.currency_name(lang, snapshot.base_currency),
        "rates": [
            {
                "currency": line.currency,
                "name": i18n.currency_name(lang, line.currency),
                "bid": line.bid,
                "ask": line.ask,
            }
            for line in snapshot.rates
        ],
    }


def show(session: KioskSession) -> None:
    session.show("rates", **board(session))


def refresh(session: KioskSession) -> None:
    session.update(**board(session))


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action != "back":
        raise FailedPrecondition(
            f"action: rates takes back, not {action[:32]!r}", reason="wrong_screen"
        )
    session.home()

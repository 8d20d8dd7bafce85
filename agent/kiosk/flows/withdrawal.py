"""Tube withdrawal: account and amount, then a quote that shows the rate the bank will post
(the agent's current rate version, which the withdrawal carries), then the engine's steps.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk import i18n
from branchline.agent.kiosk.flows import deposit, menu
from branchline.agent.tube import machines as m
from branchline.common.errors import FailedPrecondition, InvalidArgument, Unavailable
from branchline.v1 import tube_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

RATE_PLACES = Decimal("0.00000001")
WITHDRAWABLE = ("cash", "metal")


def form_data(session: KioskSession) -> dict[str, Any]:
    customer = deposit.signed_in(session)
    lang = session.lang
    snapshot = session.agent.rates.current
    currencies = []
    if snapshot is not None and not session.agent.rates.stale:
        currencies = [
            {"currency": r.currency, "name": i18n.currency_name(lang, r.currency), "ask": r.ask}
            for r in snapshot.rates
        ]
    return {
        "accounts": [
            menu.account_json(lang, a) for a in customer.accounts if a.kind in WITHDRAWABLE
        ],
        "currencies": currencies,
        "rates_stale": session.agent.rates.stale,
    }


def show(session: KioskSession) -> None:
    session.show("withdrawal_form", **form_data(session))


def relabel_form(session: KioskSession) -> None:
    session.update(**form_data(session))


def _rate(session: KioskSession, currency: str, account_currency: str) -> tuple[Decimal, int]:
    """(account-currency units per unit of ``currency``, rate version) as the bank posts a
    withdrawal: the customer receives ``currency`` at its ask and pays at the account's bid."""
    book = session.agent.rates
    snapshot = book.current
    if snapshot is None or book.stale:
        raise Unavailable(
            f"currency: {currency} needs current FX rates, and the terminal has none right now",
            field="currency",
            reason="rates_unavailable",
        )
    table = {r.currency: r for r in snapshot.rates}

    def side(code: str, which: str) -> Decimal:
        if code == snapshot.base_currency:
            return Decimal(1)
        line = table.get(code)
        if line is None:
            raise InvalidArgument(
                "currency", f"the bank quotes no rate for {code}", reason="no_rate"
            )
        return Decimal(line.ask if which == "ask" else line.bid)

    return side(currency, "ask") / side(account_currency, "bid"), snapshot.version


def plain(value: Decimal) -> str:
    """A rate as the bank writes it: 8 places at most, no exponent, no trailing zeros."""
    return format(value.quantize(RATE_PLACES).normalize(), "f")


def quote_data(session: KioskSession) -> dict[str, Any]:
    quote = session.scratch["quote"]
    lang = session.lang
    return {
        "account_id": quote["account_id"],
        "amount": i18n.format_amount(lang, quote["amount"], quote["currency"]),
        "currency": quote["currency"],
        "rate": quote["rate"],
        "rate_version": quote["rate_version"],
        "equivalent": i18n.format_amount(lang, quote["equivalent"], quote["account_currency"]),
        "rates_stale": session.agent.rates.stale,
        "busy": False,
    }


def relabel_quote(session: KioskSession) -> None:
    session.update(**{k: v for k, v in quote_data(session).items() if k != "busy"})


def make_quote(session: KioskSession, data: dict[str, Any]) -> dict[str, Any]:
    customer = deposit.signed_in(session)
    account_id = data.get("account_id", "")
    account = next((a for a in customer.accounts if a.account_id == account_id), None)
    if account is None or account.kind not in WITHDRAWABLE:
        raise InvalidArgument(
            "account_id", "choose one of your accounts", reason="not_your_account"
        )
    currency = str(data.get("currency") or account.currency).strip().upper()[:8]
    amount_text = str(data.get("amount", "")).strip()[:40]
    try:
        amount = Decimal(amount_text)
    except InvalidOperation:
        raise InvalidArgument(
            "amount", "enter an amount such as 100", reason="invalid_amount"
        ) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidArgument("amount", "must be more than zero", reason="invalid_amount")
    if account.kind == "metal" and currency != account.currency:
        raise InvalidArgument(
            "currency", f"a metal account gives {account.currency} only", reason="invalid_argument"
        )
    rate_text, version, equivalent = "", 0, amount
    if currency != account.currency:
        rate, version = _rate(session, currency, account.currency)
        rate_text = plain(rate)
        equivalent = (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {
        "account_id": account.account_id,
        "account_currency": account.currency,
        "kind": "metal" if account.kind == "metal" else "cash",
        "currency": currency,
        "amount": amount_text,
        "rate": rate_text,
        "rate_version": version,
        "equivalent": str(equivalent),
    }


async def on_form(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    if action == "back":
        session.home()
        return
    if action != "quote":
        raise FailedPrecondition(
            f"action: the withdrawal form takes quote or back, not {action[:32]!r}",
            reason="wrong_screen",
        )
    session.scratch["quote"] = make_quote(session, data)
    session.show("withdrawal_quote", **quote_data(session))


async def on_quote(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    customer = deposit.signed_in(session)
    if action == "back":
        show(session)
        return
    if action != "submit":
        raise FailedPrecondition(
            f"action: the quote takes submit or back, not {action[:32]!r}", reason="wrong_screen"
        )
    if session.data.get("busy"):
        raise FailedPrecondition("action: your withdrawal is being opened", reason="busy")
    quote = session.scratch["quote"]
    if quote["rate_version"]:
        current = session.agent.rates.current
        if current is None or current.version != quote["rate_version"] or session.agent.rates.stale:
            # The rate shown must be the rate posted: show the new one and ask again.
            session.scratch["quote"] = make_quote(session, quote)
            session.show("withdrawal_quote", **quote_data(session))
            raise FailedPrecondition(
                "rate: the bank's rates changed; check the new rate",
                field="rate",
                reason="rates_changed",
            )
    asset = pb.TubeAsset(
        kind=pb.ASSET_KIND_METAL if quote["kind"] == "metal" else pb.ASSET_KIND_CASH,
        currency=quote["currency"],
        amount=quote["amount"],
    )
    request = pb.StartTubeRequest(
        session_id=customer.session_id, account_id=quote["account_id"], asset=asset
    )
    session.update(busy=True)
    receipt = deposit.read_receipt(data)
    session.run(deposit.open_tube(session, request, m.WITHDRAWAL, receipt), "withdrawal")

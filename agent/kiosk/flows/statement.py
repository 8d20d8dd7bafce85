"""Statement: recent postings and balances on screen; printed on request when the printer
can (otherwise shown with a notice). The agent's own statement functions do the work."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.statement import StatementError, fetch_statement, statement_job
from branchline.agent.kiosk import i18n, services
from branchline.agent.kiosk.flows import deposit, menu
from branchline.agent.receipts import print_job, record
from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from branchline.drivers.base import DeviceError
from branchline.v1 import customer_info_pb2 as info_pb

if TYPE_CHECKING:
    from branchline.agent.kiosk.session import KioskSession

LINES = 10


def _error(exc: StatementError) -> Exception:
    if exc.kind == "invalid":
        return InvalidArgument("account_id", exc.message, reason=exc.code)
    if exc.kind == "not_found":
        return NotFound(exc.message, reason=exc.code)
    if exc.kind == "unavailable":
        return Unavailable(exc.message, reason=exc.code)
    return FailedPrecondition(exc.message, reason=exc.code)


def statement_data(session: KioskSession) -> dict[str, Any]:
    customer = deposit.signed_in(session)
    lang = session.lang
    live = services.live_from_agent(session.agent)
    can_print = services.can_print(live)
    out: dict[str, Any] = {
        "accounts": [menu.account_json(lang, a) for a in customer.accounts],
        "can_print": can_print,
        "notice": "" if can_print else "notice.printer_unavailable",
        "printed": session.scratch.get("printed", ""),
        "print_failed": session.scratch.get("print_failed", False),
        "loading": "statement" not in session.scratch,
        "account": None,
        "lines": [],
        "balances": [],
    }
    raw = session.scratch.get("statement")
    if raw is None:
        return out
    statement = info_pb.Statement.FromString(raw)
    currency = statement.account.currency

    def money(text: str) -> str:
        return i18n.format_amount(lang, text, currency)

    out.update(
        account={
            "account_id": statement.account.account_id,
            "currency": currency,
            "currency_name": i18n.currency_name(lang, currency),
        },
        opening=money(statement.opening_balance),
        balance=money(statement.account.balance),
        available=money(statement.account.available),
        generated=i18n.format_datetime(lang, statement.generated_at.ToDatetime(tzinfo=UTC)),
        balances=[
            {
                "account_id": other.account_id,
                "balance": i18n.format_amount(lang, other.balance, other.currency),
                "available": i18n.format_amount(lang, other.available, other.currency),
            }
            for other in statement.balances
        ],
        lines=[
            {
                "date": i18n.format_datetime(lang, line.posted_at.ToDatetime(tzinfo=UTC)),
                "description": line.description,
                "amount": money(line.amount),
                "balance": money(line.balance_after),
            }
            for line in statement.lines
        ],
    )
    return out


def show(session: KioskSession, account_id: str = "") -> None:
    customer = deposit.signed_in(session)
    if not account_id:
        account_id = customer.accounts[0].account_id if customer.accounts else ""
    for key in ("statement", "printed", "print_failed"):
        session.scratch.pop(key, None)
    session.show("statement", **statement_data(session))
    session.run(_load(session, account_id), "statement")


def relabel(session: KioskSession) -> None:
    session.update(**statement_data(session))


def refresh(session: KioskSession) -> None:
    if session.customer is not None:
        session.update(**statement_data(session))


async def _load(session: KioskSession, account_id: str) -> None:
    customer = deposit.signed_in(session)
    try:
        statement, _ = await fetch_statement(session.agent, customer.session_id, account_id, LINES)
    except StatementError as exc:
        session.scratch["statement"] = info_pb.Statement().SerializeToString()
        session.update(**statement_data(session))
        raise _error(exc) from None
    session.scratch["statement"] = statement.SerializeToString()
    session.scratch["account_id"] = account_id
    session.update(**statement_data(session))


async def _print(session: KioskSession) -> None:
    customer = deposit.signed_in(session)
    statement = info_pb.Statement.FromString(session.scratch["statement"])
    terminal = session.agent.config.terminal
    job, reference = statement_job(
        statement, terminal.terminal_id, terminal.branch, customer.pan_masked
    )
    fields = {
        "reference": reference,
        "customer_id": statement.customer_id,
        "account_id": statement.account.account_id,
    }
    try:
        with session.device_operation():
            await print_job(session.agent, job)
    except DeviceError as exc:
        await record(session.agent, "statement_not_printed", {**fields, "code": exc.code})
        session.scratch["print_failed"] = True
        session.update(**statement_data(session))
        return
    await record(session.agent, "statement_printed", fields)
    session.scratch["printed"] = reference
    session.update(**statement_data(session))


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    customer = deposit.signed_in(session)
    if action == "back":
        session.home()
    elif action == "account":
        account_id = data.get("account_id")
        if not any(a.account_id == account_id for a in customer.accounts):
            raise InvalidArgument(
                "account_id", "choose one of your accounts", reason="not_your_account"
            )
        show(session, str(account_id))
    elif action == "print":
        if not session.data.get("account"):
            raise FailedPrecondition("print: the statement is still loading", reason="busy")
        if not session.data.get("can_print"):
            raise FailedPrecondition(
                "print: the printer cannot print right now", reason="printer_unavailable"
            )
        session.run(_print(session), "print")
    else:
        raise FailedPrecondition(
            f"action: the statement takes account, print or back, not {action[:32]!r}",
            reason="wrong_screen",
        )

"""Self-service statements: the signed-in customer's recent postings and balances.

The agent presents the customer session's server token (it never leaves the agent) in a
``statement_request`` on TerminalLink; the server checks the session and that the account is
the customer's own. ``statement_job`` lays the answer out for the receipt printer, with a QR
code naming terminal, account and the last entry shown.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from branchline.agent.customer.session import SessionUnknown
from branchline.agent.refusal import domain_error
from branchline.agent.uplink import UplinkUnavailable
from branchline.common.errors import DomainError
from branchline.drivers.printer import escpos
from branchline.v1 import customer_info_pb2 as info_pb

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

MAX_LIMIT = 100
WIDTH = 48
STATEMENT_PREFIX = "BLST"


class StatementError(Exception):
    """Why no statement: ``kind`` is invalid, not_found, refused or unavailable."""

    def __init__(self, kind: str, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field  # the request field's path when one field was wrong

    def as_domain(self) -> DomainError:
        return domain_error(self.kind, self.code, self.message, self.field)


async def fetch_statement(
    agent: Agent, session_id: str, account_id: str, limit: int
) -> tuple[info_pb.Statement, str]:
    """(statement, the card's masked PAN) for the session's customer."""
    if not account_id:
        raise StatementError(
            "invalid", "invalid_argument", "account_id: must not be empty", field="account_id"
        )
    if limit > MAX_LIMIT:
        raise StatementError(
            "invalid", "invalid_argument", f"limit: {limit} is over {MAX_LIMIT}", field="limit"
        )
    try:
        session = agent.sessions.get(session_id)
    except SessionUnknown as exc:
        raise StatementError("not_found", "session_unknown", str(exc), "session_id") from None
    try:
        reply = await agent.uplink.request(
            statement_request=info_pb.StatementRequest(
                session_token=session.token, account_id=account_id, limit=limit
            )
        )
    except UplinkUnavailable as exc:
        raise StatementError(
            "unavailable", "server_unavailable", f"the bank cannot be reached: {exc}"
        ) from None
    if reply.HasField("error"):
        kind = "invalid" if reply.error.code == "invalid_argument" else "refused"
        raise StatementError(kind, reply.error.code, reply.error.message, reply.error.field)
    if not reply.HasField("statement"):
        raise StatementError("unavailable", "bad_reply", "the server answered without a statement")
    return reply.statement, session.pan_masked


def statement_reference(terminal_id: str, statement: info_pb.Statement) -> str:
    last = statement.lines[-1].entry_id if statement.lines else 0
    return f"{STATEMENT_PREFIX}:{terminal_id}:{statement.account.account_id}:{last}"


def statement_job(
    statement: info_pb.Statement,
    terminal_id: str,
    branch: str,
    pan_masked: str,
    width: int = WIDTH,
) -> tuple[bytes, str]:
    """(ESC/POS job, the reference in its QR code)."""
    account = statement.account
    page = escpos.Receipt(width=width)
    page.title("STATEMENT")
    generated = statement.generated_at.ToDatetime(tzinfo=UTC)
    page.line(f"{generated:%Y-%m-%d %H:%M:%S} UTC")
    page.key_value("Terminal", terminal_id)
    page.key_value("Branch", branch)
    if pan_masked:
        page.key_value("Card", pan_masked)
    page.key_value("Account", f"{account.account_id} ({account.currency})")
    page.line("-" * width)
    page.key_value("Opening balance", statement.opening_balance)
    for line in statement.lines:
        at = line.posted_at.ToDatetime(tzinfo=UTC)
        page.line(f"{at:%Y-%m-%d %H:%M} {line.description}"[:width])
        page.key_value(f"  #{line.entry_id}", f"{line.amount}  = {line.balance_after}")
    page.line("-" * width)
    page.key_value("Balance", account.balance)
    page.key_value("Available", account.available)
    others = [a for a in statement.balances if a.account_id != account.account_id]
    if others:
        page.line("Your other accounts", bold=True)
        for other in others:
            page.key_value(f"{other.account_id} ({other.currency})", other.balance)
    reference = statement_reference(terminal_id, statement)
    page.qr(reference)
    page.line(reference, align=escpos.Alignment.CENTER)
    page.cut(feed=3)
    return page.to_bytes(), reference

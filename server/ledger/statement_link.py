"""Self-service statements over TerminalLink: ``statement_request`` -> ``statement``.

The request carries the customer session the terminal got from a verified card + PIN. The
session is checked (signature, expiry, bound to this very terminal) and the statement is
given only for an account of the session's own customer; anything else is refused with a
DomainError naming the field, which the link answers as a ``RequestError``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import Engine

from branchline.common.errors import (
    MAX_ID,
    DomainError,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
    check_text,
    echo,
)
from branchline.common.field_paths import mapped
from branchline.common.logs import log_event
from branchline.server.convert import timestamp
from branchline.server.ledger import statements
from branchline.server.ledger.accounts import Account
from branchline.server.ledger.pin_service import PinVerifier
from branchline.server.ledger.sessions import CustomerSessions, SessionRefused
from branchline.server.link import MessageHandler
from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import terminal_link_pb2 as pb

log = logging.getLogger("branchline.server.statements")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def account_to_pb(account: Account) -> info_pb.StatementAccount:
    return info_pb.StatementAccount(
        account_id=account.account_id,
        kind=account.kind,
        currency=account.currency,
        balance=str(account.balance),
        available=str(account.available),
    )


def build_statement(
    engine: Engine,
    sessions: CustomerSessions,
    terminal_id: str,
    request: info_pb.StatementRequest,
    now: datetime,
) -> info_pb.Statement:
    """The statement the session's customer may see; raises a DomainError naming the field
    otherwise."""
    try:
        claims = sessions.check(request.session_token, terminal_id, now)
    except SessionRefused as exc:
        raise SessionRefused(
            exc.reason, f"statement_request.{exc.message}", field=f"statement_request.{exc.field}"
        ) from None
    check_text("statement_request.account_id", request.account_id, max_len=MAX_ID)
    if request.limit > MAX_LIMIT:
        raise InvalidArgument("statement_request.limit", f"{request.limit} is over {MAX_LIMIT}")
    try:
        own = statements.balances(engine, claims.customer_id)
        if request.account_id not in {a.account_id for a in own}:
            # An account of someone else and no account at all read the same.
            raise PermissionDenied(
                f"statement_request.account_id: {echo(request.account_id)} is not an account "
                "of the signed-in customer",
                rule="not_your_account",
                field="statement_request.account_id",
            )
        found = statements.statement(engine, request.account_id, request.limit or DEFAULT_LIMIT)
    except DomainError as exc:
        if exc.field.startswith("statement_request."):
            raise
        # The ledger's own refusal (its field and reason kept), named for this request.
        raise mapped(exc, {}, "statement_request") from None
    return info_pb.Statement(
        customer_id=claims.customer_id,
        account=account_to_pb(found.account),
        opening_balance=str(found.opening_balance),
        lines=[
            info_pb.StatementLine(
                entry_id=row.entry_id,
                posted_at=timestamp(row.at),
                kind=row.kind,
                description=row.description,
                amount=str(row.amount),
                balance_after=str(row.balance_after),
            )
            for row in found.rows
        ],
        balances=[account_to_pb(a) for a in own],
        generated_at=timestamp(now),
    )


def statement_handler(engine: Engine, pin_verifier: PinVerifier | None) -> MessageHandler:
    """The handler answering ``statement_request`` on the TerminalLink stream."""

    async def handle(terminal_id: str, message: pb.TerminalMessage) -> pb.ServerMessage:
        if pin_verifier is None:
            raise Unavailable(
                "statement_request: this server verifies no PINs (no --hsm), so it has no "
                "customer sessions",
                reason="sessions_unavailable",
            )
        found = await asyncio.to_thread(
            build_statement,
            engine,
            pin_verifier.sessions,
            terminal_id,
            message.statement_request,
            datetime.now(UTC),
        )
        log_event(
            log,
            "statement_given",
            terminal_id=terminal_id,
            customer_id=found.customer_id,
            account_id=found.account.account_id,
            lines=len(found.lines),
        )
        return pb.ServerMessage(ack_seq=message.seq, statement=found)

    return handle

"""PIN verification for the embedded core banking.

The PIN block goes to the HSM with the card's verification data; the HSM answers only
verified / not verified, so the clear PIN never leaves it. Wrong PINs are counted per card
and lock it after ``try_limit``; a repeat of the same request gets the first answer.
What the customer is told never says more than "incorrect PIN" and the attempts left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from branchline.common.errors import InvalidArgument, NotFound, Unavailable, check_text
from branchline.common.redaction import mask_pan
from branchline.server.applier import Applier
from branchline.server.ledger import cards as card_store
from branchline.server.ledger.accounts import Account, card_accounts_of
from branchline.server.ledger.cards import CardRecord
from branchline.server.ledger.idempotency import store_response, stored_response
from branchline.server.ledger.pan_token import PanTokenizer, validate_pan
from branchline.server.ledger.sessions import LABEL as SESSION_LABEL
from branchline.server.ledger.sessions import CustomerSessions
from branchline.server.storage import write_transaction
from branchline.server.writes import apply_write
from branchline.v1 import terminal_link_pb2 as pb

# (card, pan, pin_block, ksn, pin_block_format) -> verified
HsmVerify = Callable[[CardRecord, str, bytes, bytes, int], bool]

KIND = "pin_verify"
MAX_REQUEST_ID = 128
# PIN block format -> (PIN block bytes, KSN bytes, the DUKPT scheme they come from).
BLOCK_SIZES = {0: (8, 10, "TDES DUKPT"), 4: (16, 12, "AES DUKPT")}


class HsmFailure(Unavailable):
    """The HSM could not answer (down, misconfigured key); never a PIN mismatch."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="hsm_unavailable")


@dataclass(frozen=True)
class PinSettings:
    try_limit: int


def validate_request(request: pb.PinVerifyRequest) -> None:
    """Raise InvalidArgument naming the first unsound field (never echoing PAN digits)."""
    check_text("pin_verify.request_id", request.request_id, max_len=MAX_REQUEST_ID)
    problem = validate_pan(request.pan)
    if problem:
        raise InvalidArgument("pin_verify.pan", problem.removeprefix("pan: "))
    if request.pin_block_format not in BLOCK_SIZES:
        raise InvalidArgument(
            "pin_verify.pin_block_format", f"{request.pin_block_format} is not 0 or 4"
        )
    block_bytes, ksn_bytes, scheme = BLOCK_SIZES[request.pin_block_format]
    for name, value, size in (
        ("pin_block", request.pin_block, block_bytes),
        ("ksn", request.ksn, ksn_bytes),
    ):
        if len(value) != size:
            raise InvalidArgument(
                f"pin_verify.{name}",
                f"format {request.pin_block_format} needs a PIN block of {block_bytes} bytes and "
                f"a KSN of {ksn_bytes} bytes ({scheme}); got {len(value)} bytes",
            )


def customer_message(result: pb.PinVerifyResult) -> str:
    if result.verified:
        return "PIN accepted"
    if result.locked:
        return "incorrect PIN; the card is locked"
    return f"incorrect PIN; {result.attempts_left} attempt(s) left"


def verify_pin(
    engine: Engine,
    tokenizer: PanTokenizer,
    hsm_verify: HsmVerify,
    settings: PinSettings,
    terminal_id: str,
    request: pb.PinVerifyRequest,
    now: datetime,
) -> pb.PinVerifyResult:
    checked = check_pin(engine, tokenizer, hsm_verify, request)
    return record_pin(engine, settings, terminal_id, request, checked, now)


@dataclass(frozen=True)
class CheckedPin:
    """The HSM's answer for one request, before it is recorded."""

    token: str
    card: CardRecord
    verified: bool


def check_pin(
    engine: Engine, tokenizer: PanTokenizer, hsm_verify: HsmVerify, request: pb.PinVerifyRequest
) -> CheckedPin:
    """Validate, find the card, ask the HSM: no write, no transaction held meanwhile."""
    validate_request(request)
    token = tokenizer.token(request.pan)
    card = card_store.get_card(engine, token)
    if card is None:
        raise NotFound(
            f"card {mask_pan(request.pan)} is not known to the bank",
            field="pin_verify.pan",
            reason="unknown_card",
        )
    # The HSM call happens outside the transaction; its answer depends only on its inputs.
    verified = (
        False
        if card.locked
        else hsm_verify(
            card,
            request.pan,
            bytes(request.pin_block),
            bytes(request.ksn),
            request.pin_block_format,
        )
    )
    return CheckedPin(token, card, verified)


def record_pin(
    engine: Engine,
    settings: PinSettings,
    terminal_id: str,
    request: pb.PinVerifyRequest,
    checked: CheckedPin,
    now: datetime,
) -> pb.PinVerifyResult:
    """Count the attempt on the card and store the answer (a repeat gets the first one):
    the write, a unit of the link's applier on the server."""
    with write_transaction(engine) as conn:
        card_store.lock_card_row(conn, checked.token)
        first = stored_response(conn, terminal_id, request.request_id)
        if first is not None:
            return pb.PinVerifyResult.FromString(first)
        outcome = card_store.record_pin_result(
            conn, checked.token, checked.verified, settings.try_limit, now
        )
        result = pb.PinVerifyResult(
            request_id=request.request_id,
            verified=outcome.verified,
            attempts_left=outcome.attempts_left,
            locked=outcome.locked,
            pan_masked=checked.card.pan_masked,
        )
        result.message = customer_message(result)
        store_response(conn, terminal_id, request.request_id, KIND, result.SerializeToString(), now)
    return result


def account_summary(account: Account) -> pb.AccountSummary:
    return pb.AccountSummary(
        account_id=account.account_id,
        kind=account.kind,
        currency=account.currency,
        balance=str(account.balance),
        available=str(account.available),
    )


class PinVerifier:
    """What the TerminalLink servicer holds: verify_pin with its dependencies bound.

    A verified PIN opens a customer session: the answer carries its token, the customer and
    the card's accounts. The token is issued afresh on each answer, replays included, so it
    is never stored with the idempotent response.
    """

    def __init__(
        self,
        engine: Engine,
        tokenizer: PanTokenizer,
        hsm_verify: HsmVerify,
        settings: PinSettings,
        sessions: CustomerSessions | None = None,
    ) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        self._hsm_verify = hsm_verify
        self._settings = settings
        self.sessions = sessions or CustomerSessions(tokenizer.derive_key(SESSION_LABEL))

    def verify(
        self, terminal_id: str, request: pb.PinVerifyRequest, now: datetime
    ) -> pb.PinVerifyResult:
        return self._with_session(
            terminal_id, request, self._verify(terminal_id, request, now), now
        )

    async def verify_through(
        self,
        applier: Applier | None,
        terminal_id: str,
        request: pb.PinVerifyRequest,
        now: datetime,
    ) -> pb.PinVerifyResult:
        """``verify`` on the server: the HSM asked on a thread of its own, the attempt
        recorded as a unit of the link's applier (server/writes.py), never a write beside
        its batch."""
        checked = await asyncio.to_thread(
            check_pin, self._engine, self._tokenizer, self._hsm_verify, request
        )
        result = await apply_write(
            applier, record_pin, self._engine, self._settings, terminal_id, request, checked, now
        )
        return await asyncio.to_thread(self._with_session, terminal_id, request, result, now)

    def _with_session(
        self,
        terminal_id: str,
        request: pb.PinVerifyRequest,
        result: pb.PinVerifyResult,
        now: datetime,
    ) -> pb.PinVerifyResult:
        if result.verified:
            card = card_store.get_card(self._engine, self._tokenizer.token(request.pan))
            assert card is not None  # verified a moment ago; cards are never deleted
            result.session_token = self.sessions.issue(
                terminal_id, card.card_token, card.customer_id, now
            )
            result.customer_id = card.customer_id
            result.accounts.extend(
                account_summary(a) for a in card_accounts_of(self._engine, card.card_token)
            )
        return result

    def _verify(
        self, terminal_id: str, request: pb.PinVerifyRequest, now: datetime
    ) -> pb.PinVerifyResult:
        return verify_pin(
            self._engine,
            self._tokenizer,
            self._hsm_verify,
            self._settings,
            terminal_id,
            request,
            now,
        )

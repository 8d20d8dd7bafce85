"""What a customer asks of the tube: start a deposit or withdrawal, send, decide, confirm.

Plain functions over the engine, used by the local TubeCustomer API (the kiosk page and
scripted customers). Checks here are the ones the terminal can make for itself — a signed-in
session, the customer's own account, a well-formed amount, fresh FX rates, a free tube —
and each refusal names the field; the server checks the rest (limits, balances) and its
refusal comes back in the view's ``code``.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from branchline.agent.customer.session import CustomerSession, SessionUnknown
from branchline.agent.service_state import ServiceState
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import (
    STATION,
    Intent,
    Live,
    TubeEngine,
    TubeRefused,
    asset_to_dict,
)
from branchline.common.txref import make_reference
from branchline.v1 import tube_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.customer.session import AccountView

CURRENCY = re.compile(r"[A-Z]{3}")
MAX_AMOUNT_TEXT = 40
BILL_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Which account kind takes which asset.
ACCOUNT_KIND = {
    pb.ASSET_KIND_CASH: "cash",
    pb.ASSET_KIND_METAL: "metal",
    pb.ASSET_KIND_BILL: "bills",
}


def _session(engine: TubeEngine, session_id: str) -> CustomerSession:
    if not session_id:
        raise TubeRefused(
            "invalid", "invalid_argument", "session_id: must not be empty", field="session_id"
        )
    try:
        return engine.agent.sessions.get(session_id)
    except SessionUnknown as exc:
        raise TubeRefused("not_found", "session_unknown", str(exc), "session_id") from None


def _check_asset(asset: pb.TubeAsset, withdrawal: bool, account: AccountView) -> None:
    if asset.kind not in ACCOUNT_KIND:
        raise TubeRefused(
            "invalid",
            "invalid_argument",
            "asset.kind: cash, metal or bill is required",
            field="asset.kind",
        )
    wanted = ACCOUNT_KIND[asset.kind]
    if account.kind != wanted:
        raise TubeRefused(
            "invalid",
            "invalid_argument",
            f"account_id: {account.account_id} is a {account.kind} account; "
            f"{pb.AssetKind.Name(asset.kind).removeprefix('ASSET_KIND_').lower()} goes to a "
            f"{wanted} account",
            field="account_id",
        )
    if not CURRENCY.fullmatch(asset.currency):
        raise TubeRefused(
            "invalid",
            "unknown_currency",
            f"asset.currency: {asset.currency[:12]!r} is not a currency code such as CNY or XAU",
            field="asset.currency",
        )
    text = asset.amount.strip()
    if len(text) > MAX_AMOUNT_TEXT:
        raise TubeRefused(
            "invalid", "invalid_amount", "asset.amount: too long", field="asset.amount"
        )
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise TubeRefused(
            "invalid",
            "invalid_amount",
            f"asset.amount: {text!r} is not a decimal such as 100.50",
            field="asset.amount",
        ) from None
    if not amount.is_finite():
        raise TubeRefused(
            "invalid", "invalid_amount", "asset.amount: not a finite number", field="asset.amount"
        )
    if amount < 0:
        raise TubeRefused(
            "invalid", "negative_amount", f"asset.amount: {text} is negative", field="asset.amount"
        )
    if amount == 0:
        raise TubeRefused(
            "invalid", "zero_amount", "asset.amount: must be more than zero", field="asset.amount"
        )
    if asset.kind == pb.ASSET_KIND_BILL and withdrawal:
        if not BILL_ID.fullmatch(asset.bill.bill_id):
            raise TubeRefused(
                "invalid",
                "invalid_argument",
                "asset.bill.bill_id: name the bill to withdraw (letters, digits, . _ -)",
                field="asset.bill.bill_id",
            )


def _rate_version(engine: TubeEngine, asset: pb.TubeAsset, account: AccountView) -> int:
    """The version of the rates the customer is shown, when the asset must be converted."""
    if asset.currency == account.currency:
        return 0
    view = engine.agent.rates.view()
    if not view.known or view.stale:
        raise TubeRefused(
            "unavailable",
            "rates_unavailable",
            f"asset.currency: {asset.currency} into a {account.currency} account needs current "
            "FX rates, and the terminal has none from the bank right now",
            field="asset.currency",
        )
    currencies = {entry.currency for entry in view.table.rates} | {view.table.base_currency}
    for code in (asset.currency, account.currency):
        if code not in currencies:
            raise TubeRefused(
                "invalid",
                "unknown_currency",
                f"asset.currency: the bank quotes no rate for {code}",
                field="asset.currency",
            )
    return int(view.table.version)


def _ready(engine: TubeEngine) -> None:
    agent = engine.agent
    if agent.service.state is not ServiceState.IN_SERVICE:
        raise TubeRefused(
            "unavailable",
            "not_in_service",
            f"the terminal is {agent.service.state.value}: {agent.service.detail}",
        )
    if STATION not in agent.owners:
        raise TubeRefused("unavailable", "no_tube", "this terminal has no tube station")
    busy = engine.busy()
    if busy is not None:
        raise TubeRefused(
            "precondition",
            "tube_busy",
            f"the tube is in use by transaction {busy.txn_id} ({busy.stage})",
        )


# long: the open checks in the order the customer meets them; each a short guard
async def start(
    engine: TubeEngine, request: pb.StartTubeRequest, kind: str, receipt: bool = True
) -> Live:
    """Open a deposit or withdrawal; ``receipt=False``: the customer declined the receipt."""
    session = _session(engine, request.session_id)
    if not request.account_id:
        raise TubeRefused(
            "invalid", "invalid_argument", "account_id: must not be empty", field="account_id"
        )
    try:
        account = session.account(request.account_id)
    except SessionUnknown:
        raise TubeRefused(
            "refused",
            "not_your_account",
            f"account_id: {request.account_id[:64]!r} is not an account of the signed-in customer",
            field="account_id",
        ) from None
    withdrawal = kind == m.WITHDRAWAL
    asset = pb.TubeAsset()
    asset.CopyFrom(request.asset)
    asset.currency = asset.currency.strip().upper()
    asset.amount = asset.amount.strip()
    _check_asset(asset, withdrawal, account)
    rate_version = _rate_version(engine, asset, account)
    _ready(engine)
    txn_id = str(uuid.uuid4())
    data: dict[str, Any] = {
        "customer_id": session.customer_id,
        "account_id": account.account_id,
        "account_currency": account.currency,
        "asset": asset_to_dict(asset),
        "rate_version": rate_version,
        "pan_masked": session.pan_masked,
    }
    if not receipt:
        data["receipt"] = False
    open_message = pb.TubeOpen(
        txn_id=txn_id,
        kind=m.KIND_TO_PB[kind],
        session_token=session.token,
        account_id=account.account_id,
        asset=asset,
        rate_version=rate_version,
    )
    live = await engine.begin(
        kind,
        data,
        open_message,
        (
            f"{kind}_started",
            {
                "account_id": account.account_id,
                "asset": asset_to_dict(asset),
                "rate_version": rate_version,
                "card": session.pan_masked,
            },
        ),
    )
    engine.start(live)
    await engine.wait_moved(live, live.stage, live.version)
    return live


def _own(engine: TubeEngine, session_id: str, txn_id: str) -> tuple[Live, CustomerSession]:
    session = _session(engine, session_id)
    if not txn_id:
        raise TubeRefused(
            "invalid", "invalid_argument", "txn_id: must not be empty", field="txn_id"
        )
    return engine.get(txn_id), session


async def send_carrier(engine: TubeEngine, session_id: str, txn_id: str) -> Live:
    live, session = _own(engine, session_id, txn_id)
    await engine.intend(live, Intent("send", session.customer_id), frozenset({"awaiting_carrier"}))
    return live


async def decide(engine: TubeEngine, session_id: str, txn_id: str, decision: int) -> Live:
    if decision not in (
        pb.DECISION_CONFIRM,
        pb.DECISION_DISPUTE_RETURN,
        pb.DECISION_DISPUTE_TELLER,
    ):
        raise TubeRefused(
            "invalid",
            "invalid_argument",
            "decision: confirm, dispute_return or dispute_teller",
            field="decision",
        )
    live, session = _own(engine, session_id, txn_id)
    await engine.intend(
        live, Intent("decide", session.customer_id, decision), frozenset({"counted"})
    )
    return live


async def confirm_receipt(engine: TubeEngine, session_id: str, txn_id: str) -> Live:
    live, session = _own(engine, session_id, txn_id)
    await engine.intend(live, Intent("confirm_receipt", session.customer_id), frozenset({"taken"}))
    return live


async def cancel(engine: TubeEngine, session_id: str, txn_id: str) -> Live:
    live, session = _own(engine, session_id, txn_id)
    if (
        live.kind == m.WITHDRAWAL
        and live.server is not None
        and live.server.state
        in (
            pb.TUBE_STATE_DISPATCHED,
            pb.TUBE_STATE_DELIVERED,
        )
    ):
        raise TubeRefused(
            "precondition",
            "already_dispatched",
            f"txn_id: the back office has sent carrier {live.server.carrier_id}; take it out",
            field="txn_id",
        )
    await engine.intend(
        live,
        Intent("cancel", session.customer_id),
        frozenset({"awaiting_carrier", "awaiting_delivery"}),
    )
    return live


def view(engine: TubeEngine, live: Live) -> pb.TubeView:
    step, message = m.STAGES.get(live.stage, (pb.CUSTOMER_STEP_WAIT, live.stage))
    out = pb.TubeView(
        txn_id=live.txn_id,
        kind=m.KIND_TO_PB[live.kind],
        stage=live.stage,
        next=step,  # type: ignore[arg-type]
        message=live.message or str(live.stage_data.get("message", "")) or message,
        finished=live.finished,
        outcome=live.stage if live.finished else "",
        receipt_reference=str(
            make_reference(engine.agent.config.terminal.terminal_id, live.txn_id)
        ),
        code=live.code or str(live.stage_data.get("code", "")),
    )
    if live.server is not None:
        out.server.CopyFrom(live.server)
    return out

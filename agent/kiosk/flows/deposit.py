"""Tube deposit, the form: what (cash, metal, a bill), into which account, how much declared.

From there the transaction is the engine's (``flows/tube.py``): load the carrier, send, the
back office counts, the customer confirms or disputes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from branchline.agent.kiosk.flows import menu, tube
from branchline.agent.tube import machines as m
from branchline.common.errors import MAX_ID, FailedPrecondition, InvalidArgument, check_text
from branchline.v1 import tube_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.customer.session import CustomerSession
    from branchline.agent.kiosk.session import KioskSession

KINDS = {"cash": pb.ASSET_KIND_CASH, "metal": pb.ASSET_KIND_METAL, "bill": pb.ASSET_KIND_BILL}
# Which account kind takes which asset kind (as the engine checks).
ACCOUNT_KIND = {"cash": "cash", "metal": "metal", "bill": "bills"}


def signed_in(session: KioskSession) -> CustomerSession:
    if session.customer is None:
        raise FailedPrecondition(
            "session: sign in with card and PIN first", reason="sign_in_required"
        )
    return session.customer


def form_data(session: KioskSession) -> dict[str, Any]:
    customer = signed_in(session)
    kinds = [
        k for k, wanted in ACCOUNT_KIND.items() if any(a.kind == wanted for a in customer.accounts)
    ]
    return {
        "accounts": [
            menu.account_json(session.lang, a)
            for a in customer.accounts
            if a.kind in ACCOUNT_KIND.values()
        ],
        "kinds": kinds,
        "busy": False,
    }


def show(session: KioskSession) -> None:
    session.show("deposit_form", **form_data(session))


def relabel(session: KioskSession) -> None:
    session.update(**{k: v for k, v in form_data(session).items() if k != "busy"})


def read_asset(customer: CustomerSession, data: dict[str, Any]) -> tuple[str, pb.TubeAsset]:
    """(account_id, asset) from a form's data; refusals name the form field."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise InvalidArgument("kind", "choose cash, metal or bill", reason="invalid_kind")
    account_id = check_text("account_id", data.get("account_id", ""), max_len=MAX_ID)
    account = next((a for a in customer.accounts if a.account_id == account_id), None)
    if account is None:
        raise InvalidArgument(
            "account_id", "choose one of your accounts", reason="not_your_account"
        )
    currency = check_text("currency", data.get("currency") or account.currency, max_len=8)
    amount = check_text("amount", data.get("amount", ""), max_len=40)
    asset = pb.TubeAsset(kind=KINDS[kind], currency=currency.strip().upper(), amount=amount.strip())
    if kind == "bill":
        bill_id = check_text("bill_id", data.get("bill_id", ""), max_len=MAX_ID)
        asset.bill.CopyFrom(pb.BillInfo(bill_id=bill_id))
    return account_id, asset


def read_receipt(data: dict[str, Any]) -> bool:
    """The form's receipt choice: ``yes`` (the default) or ``no``."""
    choice = data.get("receipt", "yes")
    if choice not in ("yes", "no"):
        raise InvalidArgument("receipt", "choose yes or no", reason="invalid_argument")
    return choice == "yes"


async def open_tube(
    session: KioskSession, request: pb.StartTubeRequest, kind: str, receipt: bool = True
) -> None:
    try:
        await tube.start(session, kind, request, receipt)
    finally:
        if session.screen in ("deposit_form", "withdrawal_quote"):
            session.update(busy=False)


async def on_action(session: KioskSession, action: str, data: dict[str, Any]) -> None:
    customer = signed_in(session)
    if action == "back":
        session.home()
        return
    if action != "submit":
        raise FailedPrecondition(
            f"action: the deposit form takes submit or back, not {action[:32]!r}",
            reason="wrong_screen",
        )
    if session.data.get("busy"):
        raise FailedPrecondition("action: your deposit is being opened", reason="busy")
    account_id, asset = read_asset(customer, data)
    receipt = read_receipt(data)
    request = pb.StartTubeRequest(
        session_id=customer.session_id, account_id=account_id, asset=asset
    )
    session.update(busy=True)
    session.run(open_tube(session, request, m.DEPOSIT, receipt), "deposit")

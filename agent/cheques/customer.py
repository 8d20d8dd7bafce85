"""What the buyer asks of the purchase engine: start (card+PIN or purchase code), read the
ID card, capture the face, order, cancel; and what the screen shows of a purchase.

Checks here are the ones the terminal can make itself (a signed-in session and its own
account, a well-formed account number and code, the devices present, one purchase at a
time); each refusal names the field. The server checks the rest and its refusal comes back
in the view's ``code``.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeEngine, ChequeRefused, Intent, Live
from branchline.agent.cheques.plan import book_size
from branchline.agent.cheques.steps import order_lines
from branchline.agent.service_state import ServiceState
from branchline.common.txref import CHEQUE_PREFIX, make_reference
from branchline.v1 import cheques_pb2 as pb

if TYPE_CHECKING:
    from branchline.agent.customer.session import CustomerSession

ACCOUNT_NUMBER = re.compile(r"[0-9]{6,32}")
PURCHASE_CODE = re.compile(r"[0-9]{6,12}")
DEVICES = ("cheque_printer", "face_camera", "id_reader")


def ready(engine: ChequeEngine) -> None:
    agent = engine.agent
    if agent.service.state is not ServiceState.IN_SERVICE:
        raise ChequeRefused(
            "unavailable", "not_in_service", f"the terminal is {agent.service.state.value}"
        )
    for name in DEVICES:
        if name not in agent.owners:
            raise ChequeRefused("unavailable", f"no_{name}", f"this terminal has no {name}")
    busy = engine.busy()
    if busy is not None:
        raise ChequeRefused(
            "precondition", "cheques_busy", f"purchase {busy.purchase_id} is still {busy.stage}"
        )


async def _begin(engine: ChequeEngine, start: pb.ChequeStart, data: dict[str, Any]) -> Live:
    ready(engine)
    start.purchase_id = str(uuid.uuid4())
    live = await engine.begin(data, start, {"method": data["method"], "account": data["account"]})
    engine.start(live)
    await engine.wait_until(live, answered)
    return live


def answered(live: Live) -> bool:
    return live.stage not in m.SERVER_STAGES


async def start_card(engine: ChequeEngine, session: CustomerSession, account_id: str) -> Live:
    """The card + PIN method: the signed-in customer's account pays the fee."""
    if not account_id:
        raise ChequeRefused(
            "invalid", "invalid_argument", "account_id: must not be empty", "account_id"
        )
    if account_id not in {a.account_id for a in session.accounts}:
        raise ChequeRefused(
            "refused",
            "not_your_account",
            f"account_id: {account_id[:64]!r} is not an account of the signed-in customer",
            "account_id",
        )
    start = pb.ChequeStart(
        card_pin=pb.CardPinMethod(session_token=session.token, account_id=account_id)
    )
    data = {
        "method": "card_pin",
        "account": account_id,
        "pan_masked": session.pan_masked,
        "customer_id": session.customer_id,
    }
    return await _begin(engine, start, data)


async def start_code(engine: ChequeEngine, account_number: str, code: str) -> Live:
    """The purchase-code method: the account number and the one-time code staff issued."""
    account_number = account_number.replace(" ", "")
    if not ACCOUNT_NUMBER.fullmatch(account_number):
        raise ChequeRefused(
            "invalid", "invalid_account_number", "account_number: 6 to 32 digits", "account_number"
        )
    if not PURCHASE_CODE.fullmatch(code.strip()):
        raise ChequeRefused(
            "invalid", "invalid_purchase_code", "purchase_code: 6 to 12 digits", "purchase_code"
        )
    start = pb.ChequeStart(
        purchase_code=pb.PurchaseCodeMethod(
            account_number=account_number, purchase_code=code.strip()
        )
    )
    masked = account_number[:4] + "*" * (len(account_number) - 8) + account_number[-4:]
    return await _begin(engine, start, {"method": "purchase_code", "account": masked})


async def read_id(engine: ChequeEngine, live: Live) -> Live:
    await engine.intend(live, Intent("read_id"), frozenset({m.AWAITING_ID}))
    await engine.wait_until(live, answered)
    return live


async def capture_face(engine: ChequeEngine, live: Live) -> Live:
    await engine.intend(live, Intent("capture"), frozenset({m.AWAITING_FACE}))
    await engine.wait_until(live, answered)
    return live


async def order(engine: ChequeEngine, live: Live, lines: Any) -> Live:
    offers = list(live.server.offers) if live.server is not None else []
    checked = order_lines({"lines": lines}, offers)
    data = {"lines": [{"book_type": x.book_type, "books": x.books} for x in checked]}
    await engine.intend(live, Intent("order", data), frozenset({m.AWAITING_ORDER}))
    await engine.wait_until(live, answered)
    return live


async def cancel(engine: ChequeEngine, live: Live) -> Live:
    await engine.intend(live, Intent("cancel"), m.CANCELABLE)
    return live


def progress(live: Live) -> dict[str, int]:
    """Leaves printed so far and the order's total (the printing screen's bar)."""
    plan = live.stage_data.get("plan")
    if not isinstance(plan, dict):
        return {"printed": 0, "total": 0}
    books = plan.get("books", [])
    total = sum(book_size(b) for b in books)
    b = int(live.stage_data.get("book", 0))
    done = sum(book_size(x) for x in books[:b])
    if live.stage in (m.PRINTING, m.FAULTED, m.FAILING, m.FAILED):
        done += int(live.stage_data.get("leaf", 0))
    elif live.stage in (m.PRESENTING, m.FINISHING, m.COMPLETED):
        done += book_size(books[b]) if b < len(books) else 0
    return {"printed": done, "total": total}


def view(engine: ChequeEngine, live: Live) -> dict[str, Any]:
    """What the kiosk page shows of a purchase (no ID number, no codes, no tokens)."""
    server = live.server
    out: dict[str, Any] = {
        "purchase_id": live.purchase_id,
        "stage": live.stage,
        "step": m.SCREENS.get(live.stage, "wait"),
        "finished": live.finished,
        "outcome": live.stage if live.finished else "",
        "code": live.code,
        "message": live.message,
        "field": live.bad_field,
        "method": live.data.get("method", ""),
        "account": live.data.get("account", ""),
        "recovered": live.recovered,
        "can_cancel": live.stage in m.CANCELABLE,
        "reference": str(
            make_reference(
                engine.agent.config.terminal.terminal_id, live.purchase_id, CHEQUE_PREFIX
            )
        ),
        "reason": str(live.stage_data.get("reason", "")),
        **progress(live),
    }
    if server is not None:
        engine.book_names.update((o.book_type, o.name) for o in server.offers if o.name)
        out.update(
            purchaser=server.purchaser_name,
            attempts_left=server.face_attempts_left,
            company=server.header.company_name,
            currency=server.currency,
            offers=[
                {
                    "book_type": o.book_type,
                    "name": o.name,
                    "leaves": o.leaves_per_book,
                    "fee": o.fee_per_book,
                    "left": o.books_left_in_period,
                    "stock": o.books_in_stock,
                    "refused_rule": o.refused_rule,
                }
                for o in server.offers
            ],
            books=[
                {
                    "book_type": b.book_type,
                    # The type's name as offered (the result screen's label for the book).
                    "name": engine.book_names.get(b.book_type, ""),
                    "first": f"{b.prefix}{b.first_serial:08d}",
                    "last": f"{b.prefix}{b.last_serial:08d}",
                    "issued": b.issued_complete,
                }
                for b in server.books
            ],
            # Money as the server writes it (amount and currency); shown once there is some.
            fee_total=server.fee_total if server.books else "",
            fee_refunded=server.fee_refunded if server.refund_entry_id else "",
        )
    return out

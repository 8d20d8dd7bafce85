"""The purchase up to the order: the server's answers, and the customer's steps (ID card,
face, order), each turned into one journaled step with the message it sends.

A customer stage waits for the customer (``customer_timeout`` counted from the journaled
step); a device read that fails is said to the customer and the stage stays. After an agent
restart a customer stage cancels the purchase: the screen that customer used is gone.
"""

from __future__ import annotations

import base64
from typing import Any

from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeEngine, Handler, Intent, Live
from branchline.agent.cheques.plan import plan_from_purchase
from branchline.drivers.base import DeviceError
from branchline.v1 import cheques_pb2 as pb

ID_READ_TIMEOUT = 20.0
FACE_TIMEOUT = 5.0
MAX_BOOKS = 10
S = pb.ChequeState


def refusal_data(reply: pb.ChequeReply) -> dict[str, Any]:
    return {"code": reply.code, "message": reply.message[:300], "field": reply.field}


async def cancel(engine: ChequeEngine, live: Live, reason: str) -> None:
    finish = pb.ChequeFinish(kind=pb.FINISH_KIND_CANCEL, reason=reason)
    await engine.advance(
        live,
        m.CANCELING,
        {"reason": reason},
        message=finish,
        ejournal=("cheque_canceling", {"reason": reason}),
    )


async def starting(engine: ChequeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if reply.kind:
        await engine.advance(
            live, m.REFUSED, refusal_data(reply), ejournal=("cheque_refused", {"code": reply.code})
        )
        return
    await engine.advance(live, m.AWAITING_ID, ejournal=("cheque_method_accepted", {}))


async def _customer(engine: ChequeEngine, live: Live, action: str) -> Intent | None:
    """The customer's next ``action`` (or None once the purchase was canceled)."""
    if live.recovered:
        await cancel(engine, live, "recovery")
        return None
    deadline = live.stage_at + engine.settings.customer_timeout
    intent = await engine.wait_intent(live, frozenset({action, "cancel"}), deadline)
    if intent is None:
        await cancel(engine, live, "timeout")
        return None
    if intent.name == "cancel":
        await cancel(engine, live, "customer_canceled")
        return None
    return intent


async def awaiting_id(engine: ChequeEngine, live: Live) -> None:
    while live.stage == m.AWAITING_ID:
        if await _customer(engine, live, "read_id") is None:
            return
        try:
            sam = await engine.device("id_reader", "sam_status", {}, timeout=10)
            card = await engine.device(
                "id_reader",
                "read_card",
                {"timeout_s": ID_READ_TIMEOUT},
                timeout=ID_READ_TIMEOUT + 10,
            )
        except DeviceError as exc:
            engine.say(live, f"id_reader_{exc.code}", exc.message)
            continue
        message = pb.ChequeIdCard(id_card=id_card_read(card, str(sam.get("sam", ""))))
        facts = {
            "id_number": card.get("id_number_masked", ""),
            "valid": bool(card.get("valid")),
            "problems": list(card.get("problems", [])),
        }
        await engine.advance(
            live, m.CHECKING_ID, message=message, ejournal=("cheque_id_read", facts)
        )


def id_card_read(card: dict[str, Any], sam_status: str) -> pb.IdCardRead:
    photo = base64.b64decode(str(card.get("photo_b64", "")))
    return pb.IdCardRead(
        name=str(card.get("name", "")),
        sex_code=str(card.get("sex_code", "")),
        ethnicity_code=str(card.get("ethnicity_code", "")),
        birth_date=str(card.get("birth_date", "")),
        id_number=str(card.get("id_number", "")),
        issuing_authority=str(card.get("issuing_authority", "")),
        valid_from=str(card.get("valid_from", "")),
        valid_to=str(card.get("valid_to", "")),
        sam_status=sam_status,
        photo_format="wlt" if photo else "",
        photo=photo,
    )


async def checking_id(engine: ChequeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if reply.kind:
        await engine.advance(
            live,
            m.AWAITING_ID,
            refusal_data(reply),
            ejournal=("cheque_id_refused", {"code": reply.code}),
        )
        return
    await engine.advance(live, m.AWAITING_FACE, ejournal=("cheque_id_accepted", {}))


def face_report(capture: dict[str, Any], driver: str) -> pb.FaceCaptureReport:
    report = pb.FaceCaptureReport(
        jpeg=base64.b64decode(str(capture.get("jpeg_b64", ""))),
        width=int(capture.get("width") or 0),
        height=int(capture.get("height") or 0),
        liveness=str(capture.get("liveness", "unavailable")),
        driver=driver,
    )
    for name in ("liveness_score", "sharpness", "yaw_deg", "pitch_deg", "roll_deg"):
        value = capture.get(name)
        if isinstance(value, int | float):
            setattr(report, name, float(value))
    if isinstance(capture.get("face_count"), int):
        report.face_count = int(capture["face_count"])
    return report


async def awaiting_face(engine: ChequeEngine, live: Live) -> None:
    while live.stage == m.AWAITING_FACE:
        if await _customer(engine, live, "capture") is None:
            return
        try:
            capture = await engine.device(
                "face_camera", "capture", {"timeout_s": FACE_TIMEOUT}, timeout=FACE_TIMEOUT + 10
            )
        except DeviceError as exc:
            engine.say(live, f"face_camera_{exc.code}", exc.message)
            continue
        report = face_report(capture, engine.driver_name("face_camera"))
        facts = {
            "liveness": report.liveness,
            "face_count": capture.get("face_count"),
            "image_sha256": capture.get("image_sha256", ""),
            "driver": report.driver,
        }
        await engine.advance(
            live,
            m.CHECKING_FACE,
            message=pb.ChequeFace(capture=report),
            ejournal=("cheque_face_captured", facts),
        )


async def checking_face(engine: ChequeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if reply.kind:
        locked = reply.HasField("purchase") and reply.purchase.state == S.CHEQUE_STATE_LOCKED
        target = m.LOCKED if locked else m.AWAITING_FACE
        data = {**refusal_data(reply), "attempts_left": reply.purchase.face_attempts_left}
        await engine.advance(
            live,
            target,
            data,
            ejournal=("cheque_face_refused", {"code": reply.code, "locked": locked}),
        )
        return
    await engine.advance(live, m.AWAITING_ORDER, ejournal=("cheque_face_matched", {}))


def order_lines(data: dict[str, Any], offers: list[pb.BookOffer]) -> list[pb.OrderLine]:
    """The customer's order as lines; refusals name the line's field."""
    from branchline.agent.cheques.engine import ChequeRefused

    raw = data.get("lines")
    if not isinstance(raw, list) or not raw:
        raise ChequeRefused(
            "invalid", "invalid_argument", "lines: order at least one book", "lines"
        )
    known = {offer.book_type for offer in offers}
    lines: list[pb.OrderLine] = []
    for i, line in enumerate(raw):
        book_type = line.get("book_type") if isinstance(line, dict) else None
        books = line.get("books") if isinstance(line, dict) else None
        where = f"lines[{i}]"
        if not isinstance(book_type, str) or (known and book_type not in known):
            raise ChequeRefused(
                "invalid",
                "unknown_book_type",
                f"{where}.book_type: not a book type on offer",
                f"{where}.book_type",
            )
        if isinstance(books, str) and books.strip().isdigit():
            books = int(books.strip())
        if isinstance(books, bool) or not isinstance(books, int) or not 0 <= books <= MAX_BOOKS:
            raise ChequeRefused(
                "invalid",
                "invalid_books",
                f"{where}.books: a whole number 0 to {MAX_BOOKS}",
                f"{where}.books",
            )
        if any(x.book_type == book_type for x in lines):
            raise ChequeRefused(
                "invalid",
                "duplicate_line",
                f"{where}.book_type: {book_type} ordered twice",
                f"{where}.book_type",
            )
        if books:
            lines.append(pb.OrderLine(book_type=book_type, books=books))
    if not lines:
        raise ChequeRefused(
            "invalid", "invalid_argument", "lines: order at least one book", "lines"
        )
    return lines


async def awaiting_order(engine: ChequeEngine, live: Live) -> None:
    while live.stage == m.AWAITING_ORDER:
        intent = await _customer(engine, live, "order")
        if intent is None:
            return
        lines = [pb.OrderLine(**x) for x in intent.data["lines"]]
        await engine.advance(
            live,
            m.ORDERING,
            message=pb.ChequeOrder(lines=lines),
            ejournal=(
                "cheque_ordering",
                {"lines": [{"book_type": x.book_type, "books": x.books} for x in lines]},
            ),
        )


async def ordering(engine: ChequeEngine, live: Live) -> None:
    reply = await engine.answer(live)
    if reply.kind:
        await engine.advance(
            live,
            m.AWAITING_ORDER,
            refusal_data(reply),
            ejournal=("cheque_order_refused", {"code": reply.code}),
        )
        return
    plan = plan_from_purchase(reply.purchase)
    await engine.advance(
        live,
        m.PRINTING,
        {"plan": plan, "book": 0, "leaf": 0},
        ejournal=(
            "cheque_allocated",
            {
                "books": [f"{b['prefix']}{b['first']:08d}-{b['last']:08d}" for b in plan["books"]],
                "fee": reply.purchase.fee_total,
                "fee_entry": reply.purchase.fee_entry_id,
            },
        ),
    )


HANDLERS: dict[str, Handler] = {
    m.STARTING: starting,
    m.AWAITING_ID: awaiting_id,
    m.CHECKING_ID: checking_id,
    m.AWAITING_FACE: awaiting_face,
    m.CHECKING_FACE: checking_face,
    m.AWAITING_ORDER: awaiting_order,
    m.ORDERING: ordering,
}

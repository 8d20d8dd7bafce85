"""Printing: one journaled step per leaf, then the book presented; faults end the order.

``printing`` {book, leaf}: the leaf is about to be (or is being) printed. Its print job is
named after the leaf and the purchase, so after a crash the driver's ``print_leaf`` follows
the job the printer already has instead of printing twice; otherwise it checks
printer-state-reasons and the feeder's OCR (= the allocated serial) before the Print-Job.
The next step (the next leaf, or ``presenting``) carries the PRINTED report to the server.

``presenting`` {book}: Present-Book, then taken (the next book, or ``finishing``) or, after
the take timeout counted from the journaled step, retracted: ``faulted`` with ``not_taken``.
Any device fault: ``faulted`` with every leaf the terminal can vouch for (plan.py), then
``failing`` tells the server FAULT and the server settles the rest and the fee.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeEngine, Handler, Live
from branchline.agent.cheques.plan import (
    LEAF,
    book_size,
    fault_reports,
    leaf_params,
    number,
    report,
)
from branchline.common.logs import log_event
from branchline.drivers.base import DeviceError
from branchline.v1 import cheques_pb2 as pb

log = logging.getLogger("branchline.agent.cheques.printing")
LEAF_COMMAND_TIMEOUT = 180.0
PRESENT_SLACK = 30.0


def _position(live: Live) -> tuple[dict[str, Any], int, int]:
    data = live.stage_data
    return data["plan"], int(data["book"]), int(data.get("leaf", 0))


def _carry(live: Live) -> dict[str, Any]:
    return {"plan": live.stage_data["plan"]}


async def fault(engine: ChequeEngine, live: Live, b: int, j: int, code: str, detail: str) -> None:
    plan = live.stage_data["plan"]
    if j > 0 and j < book_size(plan["books"][b]) and code != "not_taken":
        # Leaves of a book cut short: into the retain bin if the paper path allows.
        try:
            await engine.device("cheque_printer", "retract_partial", {}, timeout=30)
        except DeviceError as exc:
            log_event(log, "cheque_retract_failed", logging.WARNING, code=exc.code)
    reports = fault_reports(plan, b, j, code)
    message = pb.ChequeLeaves(leaves=reports) if reports else None
    await engine.advance(
        live,
        m.FAULTED,
        {**_carry(live), "book": b, "leaf": j, "reason": code, "detail": detail[:300]},
        message=message,
        ejournal=("cheque_fault", {"reason": code, "book": b, "leaf": j, "reported": len(reports)}),
    )


async def printing(engine: ChequeEngine, live: Live) -> None:
    plan, b, j = _position(live)
    book = plan["books"][b]
    serial = int(book["first"]) + j
    job = f"cheque-{number(book, serial)}-{live.purchase_id[:8]}"
    try:
        done = await engine.device(
            "cheque_printer",
            "print_leaf",
            leaf_params(plan, book, serial, job),
            timeout=LEAF_COMMAND_TIMEOUT,
        )
    except DeviceError as exc:
        await fault(engine, live, b, j, exc.code, exc.message)
        return
    printed = report(
        book,
        serial,
        LEAF.LEAF_OUTCOME_PRINTED,
        ocr_serial=f"{serial:08d}",
        job_id=int(done.get("job_id", 0)),
    )
    if j + 1 < book_size(book):
        target, data = m.PRINTING, {**_carry(live), "book": b, "leaf": j + 1}
    else:
        target, data = m.PRESENTING, {**_carry(live), "book": b}
    await engine.advance(
        live,
        target,
        data,
        message=pb.ChequeLeaves(leaves=[printed]),
        ejournal=("cheque_leaf_printed", {"number": printed.number, "job": printed.job_id}),
    )


async def presenting(engine: ChequeEngine, live: Live) -> None:
    plan, b, _ = _position(live)
    book = plan["books"][b]
    left = engine.settings.take_timeout - (time.time() - live.stage_at)
    try:
        done = await engine.device(
            "cheque_printer",
            "present_book",
            {"timeout_s": max(1.0, left)},
            timeout=max(1.0, left) + PRESENT_SLACK,
        )
    except DeviceError as exc:
        await fault(engine, live, b, book_size(book), exc.code, exc.message)
        return
    if done.get("book") != "taken":
        await fault(engine, live, b, book_size(book), "not_taken", "retracted: not taken in time")
        return
    label = f"{number(book, int(book['first']))}-{int(book['last']):08d}"
    if b + 1 < len(plan["books"]):
        taken = [
            report(book, s, LEAF.LEAF_OUTCOME_TAKEN)
            for s in range(int(book["first"]), int(book["last"]) + 1)
        ]
        await engine.advance(
            live,
            m.PRINTING,
            {**_carry(live), "book": b + 1, "leaf": 0},
            message=pb.ChequeLeaves(leaves=taken),
            ejournal=("cheque_book_taken", {"book": label}),
        )
        return
    await engine.advance(
        live,
        m.FINISHING,
        {**_carry(live), "book": b},
        message=pb.ChequeFinish(kind=pb.FINISH_KIND_TAKEN, reason="taken"),
        ejournal=("cheque_book_taken", {"book": label}),
    )


async def faulted(engine: ChequeEngine, live: Live) -> None:
    if "outbox_seq" in live.stage_data:
        reply = await engine.answer(live)
        if reply.kind:
            log_event(log, "cheque_leaves_refused", logging.ERROR, code=reply.code)
            await engine.ejournal(
                "cheque_server_disagrees",
                {"purchase": live.purchase_id, "stage": live.stage, "code": reply.code},
            )
    reason = str(live.stage_data.get("reason", "fault"))
    finish = pb.ChequeFinish(
        kind=pb.FINISH_KIND_FAULT, reason=reason, detail=str(live.stage_data.get("detail", ""))
    )
    await engine.advance(
        live, m.FAILING, {**live.stage_data, "outbox_seq": None, "reason": reason}, message=finish
    )


HANDLERS: dict[str, Handler] = {
    m.PRINTING: printing,
    m.PRESENTING: presenting,
    m.FAULTED: faulted,
}

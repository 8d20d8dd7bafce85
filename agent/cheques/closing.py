"""The last stages of every purchase: hear the server's answer, print the receipt, finish.

``finishing`` (TAKEN), ``failing`` (FAULT) and ``canceling`` (CANCEL) wait for the server to
acknowledge the finish their step queued — a partition only delays it — then the receipt
with the ``BLCQ`` reference as a QR code, then the final state. ``locked`` and ``refused``
are reached directly (the server closed the purchase itself, or never opened one). A crash
between the receipt and the final step prints it again, marked DUPLICATE when the e-journal
shows the first came out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime

from branchline.agent.cheques import machine as m
from branchline.agent.cheques.engine import ChequeEngine, Handler, Live
from branchline.agent.receipts import BadReceipt, Outcome, ReceiptData, print_receipt
from branchline.common.logs import log_event
from branchline.common.txref import CHEQUE_PREFIX, make_reference
from branchline.drivers.base import DeviceError
from branchline.v1 import cheques_pb2 as pb

log = logging.getLogger("branchline.agent.cheques.closing")
S = pb.ChequeState
CLOSING = {
    m.FINISHING: (m.COMPLETED, S.CHEQUE_STATE_COMPLETED),
    m.FAILING: (m.FAILED, S.CHEQUE_STATE_FAILED),
    m.CANCELING: (m.CANCELED, S.CHEQUE_STATE_CANCELED),
}
OUTCOMES: dict[str, Outcome] = {
    m.COMPLETED: "completed",
    m.FAILED: "failed",
    m.CANCELED: "canceled",
}


def reference(engine: ChequeEngine, live: Live) -> str:
    terminal = engine.agent.config.terminal.terminal_id
    return str(make_reference(terminal, live.purchase_id, CHEQUE_PREFIX))


async def closing(engine: ChequeEngine, live: Live) -> None:
    final, expected = CLOSING[live.stage]
    reply = await engine.answer(live)
    server_state = reply.purchase.state if reply.HasField("purchase") else 0
    if reply.kind or server_state != expected:
        log_event(
            log,
            "cheque_close_disagrees",
            logging.ERROR,
            purchase_id=live.purchase_id,
            stage=live.stage,
            code=reply.code,
            server_state=S.Name(server_state),  # type: ignore[arg-type]
        )
        await engine.ejournal(
            "cheque_server_disagrees",
            {"purchase": live.purchase_id, "stage": live.stage, "code": reply.code or "state"},
        )
    await _print(engine, live, final)
    fields = {"reference": reference(engine, live)}
    if reply.HasField("purchase"):
        fields.update(
            fee=reply.purchase.fee_total,
            refunded=reply.purchase.fee_refunded,
            server_state=S.Name(reply.purchase.state),
        )
    kept = {
        k: v for k, v in live.stage_data.items() if k in ("plan", "book", "leaf", "reason", "code")
    }
    await engine.advance(live, final, kept, ejournal=(f"cheque_{final}", fields))


async def _print(engine: ChequeEngine, live: Live, final: str) -> None:
    if "printer" not in engine.agent.owners:
        return
    receipt = receipt_for(engine, live, final)
    if live.recovered and await _printed_before(engine, receipt.reference):
        receipt = dataclasses.replace(receipt, duplicate=True)
    try:
        await print_receipt(engine.agent, receipt)
    except (DeviceError, BadReceipt) as exc:
        log_event(log, "cheque_receipt_not_printed", logging.WARNING, error=str(exc))


async def _printed_before(engine: ChequeEngine, ref: str) -> bool:
    try:
        found = await asyncio.to_thread(engine.agent.store.ejournal.find, "receipt_printed", ref, 1)
    except Exception:
        return False
    return bool(found)


def receipt_for(engine: ChequeEngine, live: Live, final: str) -> ReceiptData:
    terminal = engine.agent.config.terminal
    lines: list[tuple[str, str]] = [("Account", str(live.data.get("account", "")))]
    server = live.server
    if server is not None:
        for book in server.books:
            issued = "issued" if book.issued_complete else "not issued"
            lines.append(
                (
                    book.book_type.replace("_", " "),
                    f"{book.prefix}{book.first_serial:08d}-{book.prefix}{book.last_serial:08d} {issued}",
                )
            )
        if server.books:  # money as the server writes it: amount and currency
            lines.append(("Fee", server.fee_total))
        if server.refund_entry_id:
            lines.append(("Refunded", server.fee_refunded))
        if server.incident_id:
            lines.append(("Incident", str(server.incident_id)))
    reason = str(live.stage_data.get("reason", ""))
    if reason and final != m.COMPLETED:
        lines.append(("Reason", reason.replace("_", " ")))
    return ReceiptData(
        reference=reference(engine, live),
        title="CHEQUE BOOK PURCHASE",
        terminal_id=terminal.terminal_id,
        branch=terminal.branch,
        when=datetime.now(UTC),
        pan_masked=str(live.data.get("pan_masked", "")),
        lines=tuple(lines),
        outcome=OUTCOMES[final],
    )


HANDLERS: dict[str, Handler] = {stage: closing for stage in CLOSING}

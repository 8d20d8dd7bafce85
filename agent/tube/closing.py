"""The last stages of every tube transaction: hear the server's answer, print, finish.

``canceling``, ``reversing`` and ``handing_over`` wait for the server to acknowledge the
message their step queued (a partition only delays it); ``posted`` and ``return_taken`` were
acknowledged already. Then the receipt — with the ``BLTX`` reference as a QR code — and the
final state. A crash after printing and before the final step prints the receipt again on
recovery — a duplicate receipt is the safe side of that line — marked DUPLICATE when the
e-journal shows the first one came out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any, cast

from branchline.agent.receipts import BadReceipt, Outcome, ReceiptData, print_receipt
from branchline.agent.tube import machines as m
from branchline.agent.tube.engine import Handler, Live, TubeEngine, asset_from_dict
from branchline.common.logs import log_event
from branchline.common.txref import make_reference
from branchline.drivers.base import DeviceError
from branchline.v1 import tube_pb2 as pb

log = logging.getLogger("branchline.agent.tube.closing")

S = pb.TubeState
# The server's final state each closing stage expects.
EXPECTED = {
    m.CANCELING: S.TUBE_STATE_CANCELED,
    m.REVERSING: S.TUBE_STATE_REVERSED,
    m.HANDING_OVER: S.TUBE_STATE_HANDED_TO_TELLER,
}
OUTCOMES: dict[str, Outcome] = {
    m.COMPLETED: "completed",
    m.RETURNED: "returned",
    m.REVERSED: "reversed",
    m.CANCELED: "canceled",
    m.HANDED_TO_TELLER: "handed_to_teller",
}


async def closing(engine: TubeEngine, live: Live) -> None:
    final = m.CLOSING_TO_FINAL[live.stage]
    if "outbox_seq" in live.stage_data:
        reply = await engine.answer(live)
        expected = EXPECTED.get(live.stage)
        if expected is not None and (reply.code or reply.txn.state != expected):
            # The server ended it otherwise (or refused): its record is the truth, and people
            # must look at a difference.
            log_event(
                log,
                "tube_close_refused",
                logging.ERROR,
                txn_id=live.txn_id,
                stage=live.stage,
                code=reply.code,
                server_state=pb.TubeState.Name(reply.txn.state),
            )
            await engine.ejournal(
                "tube_server_disagrees",
                {"txn": live.txn_id, "stage": live.stage, "code": reply.code or "state"},
            )
            final = m.HANDED_TO_TELLER
    await _print(engine, live, final)
    # The customer's code (an ending the journal forced) stays with the final state.
    kept = {k: v for k, v in live.stage_data.items() if k == "code" and v}
    await engine.advance(live, final, kept, ejournal=(f"tube_{final}", {}))


async def _print(engine: TubeEngine, live: Live, final: str) -> None:
    if "printer" not in engine.agent.owners:
        return
    receipt = receipt_for(engine, live, final)
    # The customer may decline a receipt when opening; one that ends with a teller still
    # gets one (the reference is what the counter asks for).
    if live.data.get("receipt") is False and final != m.HANDED_TO_TELLER:
        await engine.ejournal(
            "receipt_declined", {"txn": live.txn_id, "reference": receipt.reference}
        )
        return
    if live.recovered and await _printed_before(engine, receipt.reference):
        receipt = dataclasses.replace(receipt, duplicate=True)
    try:
        await print_receipt(engine.agent, receipt)
    except (DeviceError, BadReceipt) as exc:
        log_event(
            log, "tube_receipt_not_printed", logging.WARNING, txn_id=live.txn_id, error=str(exc)
        )


async def _printed_before(engine: TubeEngine, reference: str) -> bool:
    """Whether the e-journal says this transaction's receipt already came out (only asked
    after a restart: the crash may have fallen between printing and the final step)."""
    try:
        found = await asyncio.to_thread(
            engine.agent.store.ejournal.find, "receipt_printed", reference, 1
        )
    except Exception as exc:  # a journal that cannot be read must not stop the receipt
        log_event(log, "tube_receipt_history_unreadable", logging.WARNING, error=repr(exc))
        return False
    return bool(found)


def _amount(asset: pb.TubeAsset) -> str:
    return f"{asset.amount} {asset.currency}".strip()


def receipt_for(engine: TubeEngine, live: Live, final: str) -> ReceiptData:
    terminal = engine.agent.config.terminal
    data = live.data
    requested = asset_from_dict(cast(dict[str, Any], data.get("asset", {})))
    deposit = live.kind == m.DEPOSIT
    lines: list[tuple[str, str]] = [
        ("Account", str(data.get("account_id", ""))),
        ("Item", pb.AssetKind.Name(requested.kind).removeprefix("ASSET_KIND_").lower()),
        ("Declared" if deposit else "Requested", _amount(requested)),
    ]
    server = live.server
    if server is not None:
        if deposit and server.counted.amount:
            lines.append(("Counted", _amount(server.counted)))
        if server.quote.rate_version:
            lines.append(("Rate", f"{server.quote.rate} (v{server.quote.rate_version})"))
            lines.append(
                ("In account", f"{server.quote.account_amount} {server.quote.account_currency}")
            )
        if server.carrier_id:
            lines.append(("Carrier", str(server.carrier_id)))
        if server.entry_id:
            lines.append(("Entry", str(server.entry_id)))
        if server.balance_after and final == m.COMPLETED:
            lines.append(("Balance", server.balance_after))
    reason = str(live.stage_data.get("reason", ""))
    if reason:
        lines.append(("Reason", reason.replace("_", " ")))
    return ReceiptData(
        reference=str(make_reference(terminal.terminal_id, live.txn_id)),
        title="TUBE DEPOSIT" if deposit else "TUBE WITHDRAWAL",
        terminal_id=terminal.terminal_id,
        branch=terminal.branch,
        when=datetime.now(UTC),
        pan_masked=str(data.get("pan_masked", "")),
        lines=tuple(lines),
        outcome=OUTCOMES[final],
        # The kiosk page records tube transactions where the terminal keeps recordings.
        recorded=getattr(engine.agent, "recordings", None) is not None,
    )


HANDLERS: dict[str, Handler] = {stage: closing for stage in m.CLOSING_TO_FINAL}

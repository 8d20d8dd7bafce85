"""Transaction receipts: what the customer takes away, with the reference as a QR code.

``receipt_job`` is pure (ReceiptData -> ESC/POS bytes); ``print_receipt`` hands the job to
the printer's device owner. The transaction engine calls ``print_receipt`` at the end of each
transaction. The reference ``BLTX:<terminal_id>:<txn_id>`` lets a teller or operator find the
transaction's ledger entries (``branchline-server ledger lookup``, ``Receipts`` service).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from branchline.common.logs import log_event
from branchline.common.redaction import redact_text
from branchline.common.txref import BadReference, parse_reference
from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.printer import escpos

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

log = logging.getLogger("branchline.agent.receipts")

Outcome = Literal[
    "completed", "reversed", "disputed", "handed_to_teller", "canceled", "returned", "failed"
]
OUTCOME_TEXT: dict[str, str] = {
    "completed": "COMPLETED",
    "reversed": "REVERSED - nothing was taken from your account",
    "canceled": "CANCELED - nothing was posted",
    "returned": "RETURNED - your carrier came back, nothing was posted",
    "disputed": "DISPUTED - a teller will contact you",
    "handed_to_teller": "HANDED TO A TELLER - please see the counter",
    "failed": "NOT COMPLETED - see the lines above; a teller can help",
}
DUPLICATE_TEXT = "DUPLICATE - same transaction as an earlier slip"
MAX_LINES = 40
MAX_TEXT = 200
WIDTH = 48
PRINT_TIMEOUT = 30.0


class BadReceipt(ValueError):
    """A receipt that cannot be printed; the message names the field."""


@dataclass(frozen=True)
class ReceiptData:
    reference: str  # BLTX:<terminal_id>:<txn_id>
    title: str
    terminal_id: str
    branch: str
    when: datetime  # UTC
    pan_masked: str
    lines: tuple[tuple[str, str], ...]  # (label, value); money as decimal strings
    outcome: Outcome
    # A reprint of a receipt that already came out (recovery after a crash between printing
    # and the transaction's last step): marked so that two slips are not read as two
    # transactions.
    duplicate: bool = False


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise BadReceipt(f"receipt.{field}: expected text, got {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise BadReceipt(f"receipt.{field}: longer than {MAX_TEXT} characters")
    if any(ord(c) < 32 for c in value):
        raise BadReceipt(f"receipt.{field}: control characters are not printable")
    # Whatever a caller passes, no full card number reaches paper.
    if redact_text(value) != value:
        raise BadReceipt(f"receipt.{field}: holds what looks like a full card number")
    return value


def validate(receipt: ReceiptData) -> None:
    try:
        reference = parse_reference(receipt.reference)
    except BadReference as exc:
        raise BadReceipt(f"receipt.{exc}") from None
    if reference.terminal_id != receipt.terminal_id:
        raise BadReceipt(
            f"receipt.reference: names terminal {reference.terminal_id!r}, "
            f"not {receipt.terminal_id!r}"
        )
    for field in ("title", "terminal_id", "branch", "pan_masked"):
        _text(getattr(receipt, field), field)
    if not receipt.title:
        raise BadReceipt("receipt.title: must not be empty")
    if receipt.outcome not in OUTCOME_TEXT:
        raise BadReceipt(
            f"receipt.outcome: {receipt.outcome!r} is not one of {', '.join(OUTCOME_TEXT)}"
        )
    if not isinstance(receipt.when, datetime) or receipt.when.utcoffset() is None:
        raise BadReceipt("receipt.when: a timezone-aware UTC time is required")
    if len(receipt.lines) > MAX_LINES:
        raise BadReceipt(f"receipt.lines: more than {MAX_LINES}")
    for i, pair in enumerate(receipt.lines):
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise BadReceipt(f"receipt.lines[{i}]: expected (label, value)")
        _text(pair[0], f"lines[{i}][0]")
        _text(pair[1], f"lines[{i}][1]")


def receipt_job(receipt: ReceiptData, width: int = WIDTH) -> bytes:
    """The ESC/POS job for ``receipt``; BadReceipt names a bad field."""
    validate(receipt)
    page = escpos.Receipt(width=width)
    page.title(receipt.title)
    if receipt.duplicate:
        page.line(DUPLICATE_TEXT, bold=True, align=escpos.Alignment.CENTER)
    page.line(f"{receipt.when.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC")
    page.key_value("Terminal", receipt.terminal_id)
    page.key_value("Branch", receipt.branch)
    if receipt.pan_masked:
        page.key_value("Card", receipt.pan_masked)
    page.line("-" * width)
    for label, value in receipt.lines:
        page.key_value(label, value)
    page.line("-" * width)
    page.line(OUTCOME_TEXT[receipt.outcome], bold=True)
    page.qr(receipt.reference)
    page.line(receipt.reference, align=escpos.Alignment.CENTER)
    page.line("Keep this receipt: the code above finds", align=escpos.Alignment.CENTER)
    page.line("your transaction at any Branchline counter.", align=escpos.Alignment.CENTER)
    page.cut(feed=3)
    return page.to_bytes()


async def print_job(agent: Agent, data: bytes) -> int:
    """Send a ready ESC/POS job to the printer's owner; DeviceError when it cannot print."""
    owner = agent.owners.get("printer")
    if owner is None:
        raise DeviceError(Completion.UNSUPPORTED, "no_device", "this terminal has no printer")
    result = await owner.submit("print_job", {"data_hex": data.hex()}, timeout=PRINT_TIMEOUT)
    return int(result["bytes"])


async def record(agent: Agent, kind: str, fields: dict[str, Any]) -> None:
    """Append to the electronic journal; a failure is logged, never raised at the customer."""
    try:
        await asyncio.to_thread(agent.store.ejournal.append, kind, fields)
    except Exception as exc:
        log_event(log, "ejournal_append_failed", logging.ERROR, kind=kind, error=repr(exc))


async def print_receipt(agent: Agent, receipt: ReceiptData) -> int:
    """Print ``receipt``; returns the bytes sent. BadReceipt for bad data, DeviceError when
    the printer cannot print (paper out, offline, no printer). Either way the electronic
    journal records the attempt with the reference."""
    job = receipt_job(receipt)
    here = agent.config.terminal.terminal_id
    if receipt.terminal_id != here:
        raise BadReceipt(
            f"receipt.terminal_id: {receipt.terminal_id!r} is not this terminal ({here!r})"
        )
    fields: dict[str, Any] = {"reference": receipt.reference, "outcome": receipt.outcome}
    if receipt.duplicate:
        fields["duplicate"] = True
    try:
        sent = await print_job(agent, job)
    except DeviceError as exc:
        await record(
            agent,
            "receipt_not_printed",
            {**fields, "completion": exc.completion.value, "code": exc.code},
        )
        raise
    await record(agent, "receipt_printed", fields)
    return sent

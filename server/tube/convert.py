"""The edge between tube.proto and the service: rows to messages, requests to plain values,
the enums both ways."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from branchline.server.convert import timestamp
from branchline.server.ledger.money import asset, from_minor
from branchline.server.tube import model as m
from branchline.server.tube.validate import AssetInput, OpenRequest
from branchline.v1 import tube_pb2 as pb

STATE_TO_PB: Mapping[str, int] = {
    m.OPEN: pb.TUBE_STATE_OPEN,
    m.IN_TRANSIT: pb.TUBE_STATE_IN_TRANSIT,
    m.RECEIVED: pb.TUBE_STATE_RECEIVED,
    m.COUNTED: pb.TUBE_STATE_COUNTED,
    m.DISPATCHED: pb.TUBE_STATE_DISPATCHED,
    m.DELIVERED: pb.TUBE_STATE_DELIVERED,
    m.DISPUTED: pb.TUBE_STATE_DISPUTED,
    m.RETURNING: pb.TUBE_STATE_RETURNING,
    m.POSTED: pb.TUBE_STATE_POSTED,
    m.RETURNED: pb.TUBE_STATE_RETURNED,
    m.REVERSED: pb.TUBE_STATE_REVERSED,
    m.CANCELED: pb.TUBE_STATE_CANCELED,
    m.HANDED_TO_TELLER: pb.TUBE_STATE_HANDED_TO_TELLER,
}
STATE_FROM_PB: Mapping[int, str] = {v: k for k, v in STATE_TO_PB.items()}
KIND_TO_PB: Mapping[str, int] = {
    m.DEPOSIT: pb.TUBE_KIND_DEPOSIT,
    m.WITHDRAWAL: pb.TUBE_KIND_WITHDRAWAL,
}
KIND_FROM_PB: Mapping[int, str] = {v: k for k, v in KIND_TO_PB.items()}
ASSET_TO_PB: Mapping[str, int] = {
    m.CASH: pb.ASSET_KIND_CASH,
    m.METAL: pb.ASSET_KIND_METAL,
    m.BILL: pb.ASSET_KIND_BILL,
}
ASSET_FROM_PB: Mapping[int, str] = {v: k for k, v in ASSET_TO_PB.items()}
EVENT_FROM_PB: Mapping[int, str] = {
    pb.TUBE_EVENT_CARRIER_SENT: m.CARRIER_SENT,
    pb.TUBE_EVENT_CARRIER_ARRIVED: m.CARRIER_ARRIVED,
    pb.TUBE_EVENT_CARRIER_TAKEN: m.CARRIER_TAKEN,
    pb.TUBE_EVENT_CONFIRM: m.CONFIRM,
    pb.TUBE_EVENT_DISPUTE: m.DISPUTE,
    pb.TUBE_EVENT_CANCEL: m.CANCEL,
    pb.TUBE_EVENT_REVERSE: m.REVERSE,
    pb.TUBE_EVENT_HANDOVER: m.HANDOVER,
}


@functools.lru_cache(maxsize=4096)  # a reply converts 3 to 5 of them; most recur
def amount_text(minor: int | None, currency: str) -> str:
    """A stored amount as the decimal string of the wire ("100.00", "12.500")."""
    if minor is None or not currency:
        return ""
    return str(from_minor(int(minor), asset(currency, "currency")))


def plain(value: Decimal) -> str:
    """A rate without exponent notation or trailing zeros: 7.1, 1, 0.00012345."""
    text = format(value.normalize(), "f")
    return text


def _asset(
    kind: str | None,
    currency: str | None,
    minor: int | None,
    bill_id: str | None,
    instrument: str | None,
    maturity: str | None,
) -> pb.TubeAsset | None:
    if not kind or not currency:
        return None
    out = pb.TubeAsset(
        kind=ASSET_TO_PB[kind],  # type: ignore[arg-type]
        currency=currency,
        amount=amount_text(minor, currency),
    )
    if kind == m.BILL:
        out.bill.CopyFrom(
            pb.BillInfo(bill_id=bill_id or "", instrument=instrument or "", maturity=maturity or "")
        )
    return out


def txn_to_pb(row: Any) -> pb.TubeTransaction:
    out = pb.TubeTransaction(
        txn_id=row.txn_id,
        terminal_id=row.terminal_id,
        branch=row.branch,
        kind=KIND_TO_PB[row.kind],  # type: ignore[arg-type]
        state=STATE_TO_PB[row.state],  # type: ignore[arg-type]
        customer_id=row.customer_id,
        account_id=row.account_id,
        quote=pb.TubeQuote(
            rate_version=int(row.rate_version or 0),
            rate=row.rate,
            account_currency=row.account_currency,
            account_amount=amount_text(row.account_minor, row.account_currency),
        ),
        carrier_id=int(row.carrier_id or 0),
        hold_id=row.hold_id or "",
        entry_id=int(row.entry_id or 0),
        balance_after=amount_text(row.balance_after_minor, row.account_currency),
        available_after=amount_text(row.available_after_minor, row.account_currency),
        note=row.note,
        reason=row.reason,
        incident_id=int(row.incident_id or 0),
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        updated_by=row.updated_by,
        pan_masked=row.pan_masked,
    )
    requested = _asset(
        row.requested_kind,
        row.requested_currency,
        row.requested_minor,
        row.requested_bill_id,
        row.requested_instrument,
        row.requested_maturity,
    )
    if requested is not None:
        out.requested.CopyFrom(requested)
    counted = _asset(
        row.counted_kind,
        row.counted_currency,
        row.counted_minor,
        row.counted_bill_id,
        row.counted_instrument,
        row.counted_maturity,
    )
    if counted is not None:
        out.counted.CopyFrom(counted)
    return out


def event_to_pb(row: Any) -> pb.TubeEventRecord:
    return pb.TubeEventRecord(
        event_id=int(row.id),
        txn_id=row.txn_id,
        terminal_id=row.terminal_id,
        branch=row.branch,
        state=STATE_TO_PB.get(row.state, pb.TUBE_STATE_UNSPECIFIED),  # type: ignore[arg-type]
        event=row.event,
        actor=row.actor,
        detail=row.detail,
        at=timestamp(row.at),
    )


def incident_to_pb(row: Any) -> pb.Incident:
    return pb.Incident(
        incident_id=int(row.id),
        branch=row.branch,
        terminal_id=row.terminal_id,
        txn_id=row.txn_id,
        kind=row.kind,
        detail=row.detail,
        opened_at=timestamp(row.opened_at),
        resolved_at=timestamp(row.resolved_at),
        resolved_by=row.resolved_by or "",
        resolution=row.resolution or "",
    )


# -- the wire's requests as the service's plain values ------------------------------------------


def asset_input(message: pb.TubeAsset) -> AssetInput:
    bill = message.bill
    return AssetInput(
        kind=ASSET_FROM_PB.get(message.kind),
        currency=message.currency,
        amount=message.amount,
        bill_id=bill.bill_id,
        instrument=bill.instrument,
        maturity=bill.maturity,
    )


def open_request(message: pb.TubeOpen) -> OpenRequest:
    """A ``tube_open`` as the open path takes it (nothing checked yet)."""
    return OpenRequest(
        request_id=message.request_id,
        txn_id=message.txn_id,
        kind=KIND_FROM_PB.get(message.kind),
        session_token=message.session_token,
        account_id=message.account_id,
        asset=asset_input(message.asset),
        rate_version=int(message.rate_version),
        digest=open_hash(message),
    )


def _amount_key(value: str) -> str:
    try:
        return str(Decimal(value.strip()).normalize())
    except (InvalidOperation, ValueError):
        return value


def open_hash(message: pb.TubeOpen) -> str:
    """What a TubeOpen asks for, so a txn_id sent again is known to be the same request.

    Not the session (a recovering terminal may send it again under a new one).
    """
    a = message.asset
    content = {
        "kind": int(message.kind),
        "account": message.account_id,
        "asset": [
            int(a.kind),
            a.currency.strip().upper(),
            _amount_key(a.amount),
            a.bill.bill_id,
            a.bill.instrument,
            a.bill.maturity,
        ],
        "rate_version": int(message.rate_version),
    }
    text_ = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text_.encode()).hexdigest()

"""``branchline-server ledger lookup REFERENCE [--json]``: a receipt's transaction in the ledger."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy import Engine

from branchline.common.txref import BadReference, parse_reference
from branchline.server.ledger.lookup import TransactionRecord, lookup_transaction

EXIT_USAGE = 2


def record_dict(record: TransactionRecord) -> dict[str, Any]:
    return {
        "reference": str(record.reference),
        "terminal_id": record.reference.terminal_id,
        "txn_id": record.reference.txn_id,
        "entries": [
            {
                "entry_id": e.entry_id,
                "request_id": e.reference.request_id,
                "kind": e.kind,
                "description": e.description,
                "posted_at": e.posted_at.isoformat(),
                "reverses_entry_id": e.reverses_entry_id,
                "rate_version": e.rate_version,
                "hold_id": e.hold_id,
                "legs": [
                    {
                        "account_id": leg.account_id,
                        "currency": leg.currency,
                        "amount": str(leg.amount),
                        "balance_after": str(leg.balance_after),
                    }
                    for leg in e.legs
                ],
            }
            for e in record.entries
        ],
        "holds": [
            {
                "hold_id": h.hold_id,
                "request_id": h.reference.request_id,
                "account_id": h.account_id,
                "currency": h.currency,
                "amount": str(h.amount),
                "status": h.status,
                "reason": h.reason,
            }
            for h in record.holds
        ],
    }


def record_lines(record: TransactionRecord) -> list[str]:
    lines = [f"{record.reference}: {len(record.entries)} entries, {len(record.holds)} holds"]
    for e in record.entries:
        lines.append(
            f"  entry {e.entry_id}  {e.posted_at:%Y-%m-%d %H:%M:%S}  {e.reference.request_id}  "
            f"{e.kind}: {e.description}"
        )
        lines += [f"    {leg.account_id:24} {leg.amount:>14} {leg.currency}" for leg in e.legs]
    lines += [
        f"  hold {h.hold_id}  {h.reference.request_id}  {h.account_id} {h.amount} {h.currency} "
        f"{h.status}"
        for h in record.holds
    ]
    if not record.entries and not record.holds:
        lines.append("  nothing was posted or held under this reference")
    return lines


def run_lookup(args: argparse.Namespace, engine: Engine) -> int:
    try:
        reference = parse_reference(args.reference)
    except BadReference as exc:
        print(f"branchline-server ledger lookup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    record = lookup_transaction(engine, reference)
    if args.json:
        print(json.dumps(record_dict(record), indent=2))
    else:
        print("\n".join(record_lines(record)))
    return 0


def add_parser(cmds: Any) -> None:
    lookup = cmds.add_parser("lookup", help="a receipt's transaction: BLTX:<terminal>:<txn_id>")
    lookup.add_argument("reference", help="the reference in the receipt's QR code")

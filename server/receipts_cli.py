"""``branchline-teller lookup REFERENCE [--json]``: a receipt's transaction, asked of the server's
``Receipts`` service (tellers and operators). Offline, on the database itself:
``branchline-server ledger lookup``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf import json_format

from branchline.v1 import customer_info_pb2 as pb
from branchline.v1 import customer_info_pb2_grpc as pb_grpc


def result_lines(found: pb.LookupReferenceResult) -> list[str]:
    lines = [f"{found.reference}: {len(found.entries)} entries, {len(found.holds)} holds"]
    for e in found.entries:
        lines.append(f"  entry {e.entry_id}  {e.request_id}  {e.kind}: {e.description}")
        lines += [f"    {leg.account_id:24} {leg.amount:>14} {leg.currency}" for leg in e.legs]
    lines += [
        f"  hold {h.hold_id}  {h.request_id}  {h.account_id} {h.amount} {h.currency} {h.status}"
        for h in found.holds
    ]
    if not found.entries and not found.holds:
        lines.append("  nothing was posted or held under this reference")
    return lines


def cmd_lookup(client: Any, args: argparse.Namespace) -> int:
    found = client.call(
        pb_grpc.ReceiptsStub(client.channel).LookupReference,
        pb.LookupReferenceRequest(reference=args.reference),
    )
    if args.json:
        print(
            json.dumps(json_format.MessageToDict(found, preserving_proto_field_name=True), indent=2)
        )
    else:
        print("\n".join(result_lines(found)))
    return 0

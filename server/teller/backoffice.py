"""The back office's commands (``branchline-teller tube ...``): the tube desk, for tellers
with the back_office skill, their own branch only.

    branchline-teller --as teller:BO1 tube list [--state counted ...]
    branchline-teller --as teller:BO1 tube show TXN
    branchline-teller --as teller:BO1 tube watch [--after N] [--count N]
    branchline-teller --as teller:BO1 tube receive TXN --carrier 17
    branchline-teller --as teller:BO1 tube count TXN --kind cash --currency CNY --amount 490.00
    branchline-teller --as teller:BO1 tube send TXN --carrier 21
    branchline-teller --as teller:BO1 tube incidents [--all]
    branchline-teller --as teller:BO1 tube resolve ID --resolution "carrier found, returned"

Every command takes ``--json`` (one JSON object per line).
"""

from __future__ import annotations

import argparse
from typing import Any

from branchline.server.teller.output import emit as _emit
from branchline.server.teller.output import when as _when
from branchline.server.teller.watch import follow
from branchline.v1 import tube_pb2 as pb
from branchline.v1 import tube_pb2_grpc as pb_grpc

STATES = [
    v.name.removeprefix("TUBE_STATE_").lower() for v in pb.TubeState.DESCRIPTOR.values if v.number
]
KINDS = {"cash": pb.ASSET_KIND_CASH, "metal": pb.ASSET_KIND_METAL, "bill": pb.ASSET_KIND_BILL}


def state_name(state: int) -> str:
    return pb.TubeState.Name(state).removeprefix("TUBE_STATE_").lower()  # type: ignore[arg-type]


def kind_name(kind: int) -> str:
    return pb.TubeKind.Name(kind).removeprefix("TUBE_KIND_").lower()  # type: ignore[arg-type]


def asset_text(a: pb.TubeAsset) -> str:
    """``490.00 CNY cash``, ``12.340 g XAU``, ``bill BA-1 250,000.00 CNY (due 2026-09-30)``."""
    if not a.currency:
        return "-"
    if a.kind == pb.ASSET_KIND_METAL:
        return f"{a.amount} g {a.currency}"
    if a.kind == pb.ASSET_KIND_BILL:
        due = f" (due {a.bill.maturity})" if a.bill.maturity else ""
        return f"bill {a.bill.bill_id or '?'} {a.amount} {a.currency}{due}"
    return f"{a.amount} {a.currency} cash"


def _quote_text(t: pb.TubeTransaction) -> str:
    q = t.quote
    if not q.rate_version:
        return ""
    return f" = {q.account_amount} {q.account_currency} at {q.rate} (rates v{q.rate_version})"


def txn_line(t: pb.TubeTransaction) -> str:
    """One transaction on one line, for lists."""
    counted = t.HasField("counted") and t.counted.currency
    what = asset_text(t.counted if counted else t.requested)
    if counted:
        what += f" (declared {t.requested.amount})"
    carrier = f"  carrier {t.carrier_id}" if t.carrier_id else ""
    card = f" {t.pan_masked}" if t.pan_masked else ""
    incident = f"  INCIDENT {t.incident_id}" if t.incident_id else ""
    return (
        f"{t.txn_id}  {state_name(t.state).upper():16} {kind_name(t.kind):10} {what}"
        f"{_quote_text(t)}  terminal {t.terminal_id}  customer {t.customer_id}{card}{carrier}"
        f"  since {_when(t.updated_at)}{incident}"
    )


def txn_block(t: pb.TubeTransaction) -> str:
    """One transaction, everything a clerk needs, one fact per line."""
    lines = [
        f"{kind_name(t.kind)} {t.txn_id}: {state_name(t.state).upper()}",
        f"  customer      {t.customer_id}  card {t.pan_masked or '-'}  account {t.account_id}",
        f"  terminal      {t.terminal_id} (branch {t.branch})",
        f"  {'declared' if t.kind == pb.TUBE_KIND_DEPOSIT else 'asked for':13} "
        f"{asset_text(t.requested)}",
    ]
    if t.HasField("counted") and t.counted.currency:
        lines.append(f"  counted       {asset_text(t.counted)}")
    if t.quote.rate_version:
        lines.append(
            f"  in account    {t.quote.account_amount} {t.quote.account_currency} at "
            f"{t.quote.rate} (rates v{t.quote.rate_version}, fixed at open)"
        )
    lines.append(f"  carrier       {t.carrier_id or '-'}")
    if t.hold_id:
        lines.append(f"  hold          {t.hold_id}")
    if t.entry_id:
        lines.append(f"  posted        entry {t.entry_id}")
    if t.balance_after:
        lines.append(
            f"  account after balance {t.balance_after}, available {t.available_after} "
            f"{t.quote.account_currency}"
        )
    if t.note:
        lines.append(f"  note          {t.note}")
    if t.reason:
        lines.append(f"  reason        {t.reason}")
    if t.incident_id:
        lines.append(f"  incident      {t.incident_id} (see: tube incidents)")
    lines.append(f"  opened        {_when(t.created_at, True)}")
    lines.append(f"  last change   {_when(t.updated_at, True)} by {t.updated_by}")
    return "\n".join(lines)


def event_line(e: pb.TubeEventRecord) -> str:
    return (
        f"#{e.event_id} {_when(e.at)} {e.event:17} {e.txn_id} {state_name(e.state):16} "
        f"by {e.actor}  terminal {e.terminal_id}" + (f"  {e.detail}" if e.detail else "")
    )


def incident_line(i: pb.Incident) -> str:
    head = f"incident {i.incident_id}  {i.kind:16} txn {i.txn_id}  terminal {i.terminal_id}"
    head += f"  opened {_when(i.opened_at, True)}"
    lines = [head, f"  {i.detail}"]
    if i.resolved_by:
        lines.append(f"  RESOLVED {_when(i.resolved_at, True)} by {i.resolved_by}: {i.resolution}")
    return "\n".join(lines)


def cmd_tube(client: Any, args: argparse.Namespace) -> int:
    stub = pb_grpc.TubeDeskStub(client.channel)
    what = args.tube_command
    if what == "list":
        states = ["TUBE_STATE_" + s.upper() for s in args.state or []]
        reply = client.call(
            stub.ListTransactions, pb.ListTubeRequest(states=states, limit=args.limit)
        )
        human = "\n".join(txn_line(t) for t in reply.txns) or "(no tube transactions)"
        _emit(args, reply, human)
    elif what == "show":
        txn = client.call(stub.GetTransaction, pb.TubeRef(txn_id=args.txn))
        _emit(args, txn, txn_block(txn))
    elif what == "receive":
        txn = client.call(
            stub.ReceiveCarrier, pb.CarrierRequest(txn_id=args.txn, carrier_id=args.carrier)
        )
        _emit(args, txn, txn_block(txn))
    elif what == "send":
        txn = client.call(
            stub.SendCarrier, pb.CarrierRequest(txn_id=args.txn, carrier_id=args.carrier)
        )
        _emit(args, txn, txn_block(txn))
    elif what == "count":
        counted = pb.TubeAsset(kind=KINDS[args.kind], currency=args.currency, amount=args.amount)
        if args.kind == "bill":
            counted.bill.CopyFrom(
                pb.BillInfo(
                    bill_id=args.bill_id or "",
                    instrument=args.instrument or "",
                    maturity=args.maturity or "",
                )
            )
        txn = client.call(
            stub.EnterCount, pb.CountRequest(txn_id=args.txn, counted=counted, note=args.note or "")
        )
        _emit(args, txn, txn_block(txn))
    elif what == "incidents":
        found = client.call(stub.ListIncidents, pb.ListIncidentsRequest(include_resolved=args.all))
        human = "\n".join(incident_line(i) for i in found.incidents) or "(no open incidents)"
        _emit(args, found, human)
    elif what == "resolve":
        done = client.call(
            stub.ResolveIncident,
            pb.ResolveIncidentRequest(incident_id=args.incident, resolution=args.resolution),
        )
        _emit(args, done, incident_line(done))
    else:
        return _watch(client, stub, args)
    return 0


def _watch(client: Any, stub: pb_grpc.TubeDeskStub, args: argparse.Namespace) -> int:
    """Events as they happen; on a lost stream, reconnect and resume after the last one."""
    return follow(
        lambda after: client.stream(stub.Watch, pb.WatchTubeRequest(after_id=after)),
        lambda event: event.event_id,
        lambda event: _emit(args, event, event_line(event)),
        after=args.after,
        count=args.count,
    )


def _number(limit: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} is not between 1 and {limit}")
        return value

    return parse


def add_commands(sub: Any) -> None:
    """The ``tube`` command group of branchline-teller."""
    tube = sub.add_parser("tube", help="back office: tube deposits and withdrawals, incidents")
    tube_sub = tube.add_subparsers(dest="tube_command", required=True)
    tube.set_defaults(handler=cmd_tube)

    def command(name: str, help: str) -> Any:
        p = tube_sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = command("list", "your branch's transactions: by default every one not finished")
    p.add_argument("--state", action="append", choices=STATES, help="repeatable")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default 100)")
    p = command("show", "one transaction, in full")
    p.add_argument("txn")
    p = command("watch", "your branch's tube events as they happen (reconnects)")
    p.add_argument("--after", type=int, default=0, help="resume after this event id")
    p.add_argument("--count", type=int, default=0, help="exit after this many events")
    p = command("receive", "a deposit's carrier arrived at the back office")
    p.add_argument("txn")
    p.add_argument("--carrier", type=_number(2**32 - 1), required=True, help="the number on it")
    p = command("count", "enter what a deposit's carrier held")
    p.add_argument("txn")
    p.add_argument("--kind", required=True, choices=sorted(KINDS))
    p.add_argument("--currency", required=True, help="ISO 4217, or XAU/XAG for metal")
    p.add_argument("--amount", required=True, help="decimal: notes' value, grams, face value")
    p.add_argument("--bill-id")
    p.add_argument("--instrument", help="bank_acceptance, commercial_acceptance, ...")
    p.add_argument("--maturity", help="YYYY-MM-DD")
    p.add_argument("--note", help="what the customer should know about the count")
    p = command("send", "send a carrier: a withdrawal's goods, or a disputed deposit back")
    p.add_argument("txn")
    p.add_argument("--carrier", type=_number(2**32 - 1), required=True, help="the number on it")
    p = command("incidents", "your branch's open incidents (--all: resolved ones too)")
    p.add_argument("--all", action="store_true")
    p = command("resolve", "close an incident, saying what was done")
    p.add_argument("incident", type=_number(2**63 - 1))
    p.add_argument("--resolution", required=True)

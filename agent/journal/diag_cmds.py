"""``branchline-diag journal verify|show`` and ``branchline-diag outbox``.

``journal verify`` exits 0 when the e-journal's chain verifies and 4 when it does not, naming
the first bad entry and why.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from branchline.v1 import agent_local_pb2 as pb
from branchline.v1 import agent_local_pb2_grpc as pb_grpc

EXIT_TAMPERED = 4


def add_parsers(sub: Any) -> None:
    """Add the ``journal`` and ``outbox`` commands to diag's subparsers."""
    journal = sub.add_parser("journal", help="the electronic journal: verify its chain, show it")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    verify = jsub.add_parser(
        "verify", help=f"check the hash chain (exit 0 intact, {EXIT_TAMPERED} tampered)"
    )
    verify.add_argument("--json", action="store_true")
    show = jsub.add_parser("show", help="list entries (default: the last 50)")
    show.add_argument("--since", type=_positive, default=0, help="first entry to show")
    show.add_argument("--limit", type=_positive, default=50, help="at most this many (<= 1000)")
    show.add_argument("--json", action="store_true")
    outbox = sub.add_parser("outbox", help="messages waiting to be sent to the server")
    outbox.add_argument("--limit", type=_positive, default=100, help="at most this many (<= 1000)")
    outbox.add_argument("--json", action="store_true")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def entry_dict(entry: pb.JournalEntry) -> dict[str, Any]:
    try:
        fields: Any = json.loads(entry.fields_json)
    except json.JSONDecodeError:
        fields = None
    return {
        "seq": entry.seq,
        "at": entry.at,
        "kind": entry.kind,
        "fields": fields,
        "fields_json": entry.fields_json,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def _entry_line(entry: pb.JournalEntry) -> str:
    return f"{entry.seq:>6}  {entry.at}  {entry.kind:<20}  {entry.fields_json}"


def age_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def run_journal(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace, timeout: float) -> int:
    if args.journal_command == "verify":
        result = stub.VerifyJournal(pb.VerifyJournalRequest(), timeout=timeout)
        bad = result.bad_entry if result.HasField("bad_entry") else None
        if args.json:
            data = {
                "ok": result.ok,
                "entries": result.entries,
                "first_bad_seq": result.first_bad_seq or None,
                "reason": result.reason,
                "bad_entry": entry_dict(bad) if bad is not None else None,
            }
            print(json.dumps(data, indent=2))
        elif result.ok:
            print(f"e-journal OK: {result.entries} entries, hash chain verified")
        else:
            print(
                f"e-journal TAMPERED at entry {result.first_bad_seq}: {result.reason} "
                f"({result.entries} entries)"
            )
            if bad is not None:
                print(_entry_line(bad))
        return 0 if result.ok else EXIT_TAMPERED
    if args.journal_command == "show":
        shown = stub.ShowJournal(
            pb.ShowJournalRequest(since=args.since, limit=args.limit), timeout=timeout
        )
        if args.json:
            print(json.dumps({"entries": [entry_dict(e) for e in shown.entries]}, indent=2))
        elif not shown.entries:
            print("no entries")
        else:
            for entry in shown.entries:
                print(_entry_line(entry))
        return 0
    raise AssertionError(args.journal_command)


def run_outbox(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace, timeout: float) -> int:
    result = stub.ListOutbox(pb.ListOutboxRequest(limit=args.limit), timeout=timeout)
    if args.json:
        data = {
            "pending": result.pending,
            "oldest_age_seconds": round(result.oldest_age_seconds, 3),
            "acknowledged": result.acknowledged,
            "last_seq": result.last_seq,
            "oldest_acknowledged_age_seconds": round(result.oldest_acknowledged_age_seconds, 3),
            "finished_transactions": result.finished_transactions,
            "oldest_finished_age_seconds": round(result.oldest_finished_age_seconds, 3),
            "messages": [
                {
                    "seq": m.seq,
                    "key": m.key,
                    "kind": m.kind,
                    "age_seconds": round(m.age_seconds, 3),
                    "attempts": m.attempts,
                    "last_error": m.last_error,
                    "txn_id": m.txn_id,
                    "size": m.size,
                }
                for m in result.messages
            ],
        }
        print(json.dumps(data, indent=2))
        return 0
    if not result.pending:
        print(f"outbox empty ({result.acknowledged} acknowledged, last seq {result.last_seq})")
        print(_kept_line(result))
        return 0
    print(
        f"{result.pending} waiting, oldest {age_text(result.oldest_age_seconds)}; "
        f"{result.acknowledged} acknowledged, last seq {result.last_seq}"
    )
    header = ["seq", "key", "kind", "age", "attempts", "last error"]
    rows = [
        [str(m.seq), m.key, m.kind, age_text(m.age_seconds), str(m.attempts), m.last_error]
        for m in result.messages
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [[h.upper() for h in header], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if result.pending > len(result.messages):
        print(f"... and {result.pending - len(result.messages)} more")
    print(_kept_line(result))
    return 0


def _kept_line(result: pb.ListOutboxResult) -> str:
    """What the journal keeps until its retention ([terminal] journal_retention_days)."""
    acked = (
        f", oldest acknowledged {age_text(result.oldest_acknowledged_age_seconds)} ago"
        if result.acknowledged
        else ""
    )
    finished = (
        f", oldest finished {age_text(result.oldest_finished_age_seconds)} ago"
        if result.finished_transactions
        else ""
    )
    return (
        f"kept until retention: {result.acknowledged} acknowledged messages{acked}; "
        f"{result.finished_transactions} finished transactions{finished}"
    )

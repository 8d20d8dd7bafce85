"""``branchline-server materials audit``: operations and compliance read the audit of task
materials (who uploaded, viewed or deleted which document of which task, and when), from
the database the top-level ``--db`` names. docs/cli.md lists every command."""

from __future__ import annotations

import argparse
import json
import sys

from branchline.common.errors import DomainError
from branchline.server.dispatch.tasks.material_audit import audit_of
from branchline.server.storage import open_database

EXIT_USAGE = 2


def run(args: argparse.Namespace) -> int:
    engine = open_database(args.db)
    try:
        entries = audit_of(
            engine, task_id=args.task or "", sha256=args.sha256 or "", limit=args.limit
        )
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"branchline-server materials: {exc.reason}{where}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    if args.json:
        rows = [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "task_id": e.task_id,
                "name": e.name,
                "sha256": e.sha256,
                "detail": e.detail,
            }
            for e in entries
        ]
        print(json.dumps({"entries": rows}, ensure_ascii=False))
    elif not entries:
        print("no audit entries")
    else:
        for e in entries:
            detail = f" ({e.detail})" if e.detail else ""
            print(
                f"{e.at.isoformat()} {e.action} by {e.actor}: task {e.task_id} "
                f"{e.name} sha256 {e.sha256[:12]}...{detail}"
            )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser("materials", help="task materials (document photos, ID data)")
    cs = top.add_subparsers(dest="materials_command", required=True)
    audit = cs.add_parser("audit", help="who uploaded, viewed or deleted materials (oldest first)")
    audit.add_argument("--task", help="one task's materials")
    audit.add_argument("--sha256", help="one content (every task that carries it)")
    audit.add_argument(
        "--limit", type=int, default=1000, help="at most this many, the latest (default 1000)"
    )
    audit.add_argument("--json", action="store_true", help="one line of JSON")

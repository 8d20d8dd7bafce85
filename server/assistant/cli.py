"""``branchline-assistant``: the electronic teller's knowledge base from a file.

``import`` adds or updates the entries of a knowledge-base file (by id) and replaces the
synonym table; entries learned from tellers' answers stay. Without ``--file`` it imports
the knowledge base shipped with Branchline (``server/assistant/data/knowledge_base.json``).
``list`` prints the active entries.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from branchline.common.errors import DomainError
from branchline.server.assistant import knowledge, learning
from branchline.server.storage import open_database

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="branchline-assistant", description=__doc__)
    parser.add_argument(
        "--db",
        default="sqlite:///var/server/branchline.db",
        help="the server's database URL (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a knowledge-base file (default: the shipped one)")
    imp.add_argument("--file", type=Path, help="knowledge-base JSON file")
    imp.add_argument("--as", dest="actor", default="import", help="who imports (recorded)")
    sub.add_parser("list", help="the active entries")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        engine = open_database(args.db)
        if args.command == "import":
            kb = knowledge.load(args.file)
            counts = learning.import_file(engine, kb, args.actor)
            out: object = {**counts, "synonyms": len(kb.synonyms)}
            text = ", ".join(f"{v} {k}" for k, v in counts.items())
        else:
            rows = learning.entries(engine, include_retired=False)
            out = [{"entry_id": r.entry_id, "action": r.action, "version": r.version} for r in rows]
            text = "\n".join(f"{r.entry_id}\t{r.action or '-'}\tv{r.version}" for r in rows)
    except DomainError as exc:
        print(f"branchline-assistant: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(out, ensure_ascii=False) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

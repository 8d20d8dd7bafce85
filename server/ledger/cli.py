"""``branchline-server ledger ...``: the embedded ledger's back-office commands.

Open accounts, link them to cards, post a counted deposit, set FX rates, and read balances,
statements and the ledger's audit. Uses the top-level ``--db`` and ``--pan-token-key``.
Postings made here carry the terminal id ``ledger-cli`` and the ``--ref`` given, so running
the same command twice posts once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from branchline.common.errors import DomainError, InvalidArgument
from branchline.common.redaction import mask_pan
from branchline.server.ledger import accounts as acc
from branchline.server.ledger import lookup_cli
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.cards import add_customer
from branchline.server.ledger.pan_token import PanTokenizer, validate_pan
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import DepositRequest
from branchline.server.storage import open_database

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
CLI_TERMINAL = "ledger-cli"


def _print(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, default=str, indent=2))
    else:
        for line in lines:
            print(line)


def _account_data(a: acc.Account) -> dict[str, Any]:
    return {
        "account_id": a.account_id,
        "kind": a.kind,
        "currency": a.currency,
        "balance": str(a.balance),
        "held": str(a.held),
        "available": str(a.available),
    }


def _parse_rates(items: list[str]) -> dict[str, tuple[str, str]]:
    rates: dict[str, tuple[str, str]] = {}
    for item in items:
        code, sep, pair = item.partition("=")
        bid, sep2, ask = pair.partition(":")
        if not sep or not sep2:
            raise InvalidArgument("rates", f"{item!r} is not CODE=BID:ASK")
        rates[code.strip().upper()] = (bid.strip(), ask.strip())
    return rates


def _open_account(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    add_customer(core.engine, args.customer, args.name or args.customer, now)
    opened = acc.open_account(core.engine, args.customer, args.kind, args.currency, now, args.id)
    _print(
        args,
        _account_data(opened),
        [f"opened {opened.kind} account {opened.account_id} ({opened.currency})"],
    )
    return 0


def _link(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    pan = args.pan if args.pan != "-" else sys.stdin.readline().strip()
    problem = validate_pan(pan)
    if problem:
        raise InvalidArgument("pan", problem)
    token = PanTokenizer.from_file(args.pan_token_key).token(pan)
    acc.link_card(core.engine, token, args.account, now)
    _print(
        args,
        {"card": mask_pan(pan), "account_id": args.account},
        [f"card {mask_pan(pan)} → {args.account}"],
    )
    return 0


def _deposit(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    posting = core.post_deposit(
        DepositRequest(
            Reference(CLI_TERMINAL, args.ref),
            account_id=args.account,
            branch=args.branch,
            currency=args.currency,
            amount=args.amount,
            rate_version=args.rate_version,
            now=now,
        )
    )
    leg = posting.leg(args.account)
    note = " (already posted)" if posting.replayed else ""
    _print(
        args,
        {
            "entry_id": posting.entry_id,
            "replayed": posting.replayed,
            "balance": str(leg.balance_after),
        },
        [f"entry {posting.entry_id}{note}: {posting.description}; balance {leg.balance_after}"],
    )
    return 0


def _balances(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    found = core.balances(args.customer)
    _print(
        args,
        {"customer": args.customer, "accounts": [_account_data(a) for a in found]},
        [
            f"{a.account_id:24} {a.kind:6} {a.currency} {a.balance:>16} available {a.available}"
            for a in found
        ],
    )
    return 0


def _statement(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    st = core.statement(args.account, args.limit)
    rows = [
        {
            "entry_id": r.entry_id,
            "at": r.at.isoformat(),
            "description": r.description,
            "amount": str(r.amount),
            "balance_after": str(r.balance_after),
        }
        for r in st.rows
    ]
    _print(
        args,
        {
            "account": _account_data(st.account),
            "opening_balance": str(st.opening_balance),
            "rows": rows,
        },
        [f"{st.account.account_id} {st.account.currency}  opening {st.opening_balance}"]
        + [
            f"{r.at:%Y-%m-%d %H:%M}  {r.amount:>14}  {r.balance_after:>14}  {r.description}"
            for r in st.rows
        ],
    )
    return 0


def _rates(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    table = (
        core.set_rates(_parse_rates(args.set), args.source, now)
        if args.set
        else core.current_rates()
    )
    if table is None:
        _print(args, {"version": None, "rates": {}}, ["no FX rates set"])
        return 0
    _print(
        args,
        {
            "version": table.version_id,
            "source": table.source,
            "effective_at": table.effective_at.isoformat(),
            "rates": {c: {"bid": str(r.bid), "ask": str(r.ask)} for c, r in table.rates.items()},
        },
        [
            f"rates v{table.version_id} ({table.source}, {table.effective_at:%Y-%m-%d %H:%M:%S}), "
            "CNY per unit (gram for metals)"
        ]
        + [f"  {c}  bid {r.bid}  ask {r.ask}" for c, r in table.rates.items()],
    )
    return 0


def _lookup(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    return lookup_cli.run_lookup(args, core.engine)


def _audit(args: argparse.Namespace, core: EmbeddedLedger, now: datetime) -> int:
    problems = core.audit()
    _print(args, {"problems": problems}, problems or ["ledger consistent"])
    return EXIT_PROBLEMS if problems else 0


# One function per subcommand of `branchline-server ledger`.
COMMANDS: dict[str, Callable[[argparse.Namespace, EmbeddedLedger, datetime], int]] = {
    "open-account": _open_account,
    "link": _link,
    "deposit": _deposit,
    "balances": _balances,
    "statement": _statement,
    "rates": _rates,
    "lookup": _lookup,
    "audit": _audit,
}


def _run(args: argparse.Namespace, core: EmbeddedLedger) -> int:
    return COMMANDS[args.ledger_command](args, core, datetime.now(UTC))


def run(args: argparse.Namespace) -> int:
    try:
        engine = open_database(args.db)
    except Exception as exc:  # noqa: BLE001 - any failure to open is reported, not raised
        print(f"branchline-server ledger: --db: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(args, EmbeddedLedger(engine))
    except DomainError as exc:
        print(f"branchline-server ledger {args.ledger_command}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="accounts, deposits, FX rates, balances, statements")
    cmds = ledger.add_subparsers(dest="ledger_command", required=True)
    opened = cmds.add_parser("open-account", help="open an account (and the customer if new)")
    opened.add_argument("--customer", required=True)
    opened.add_argument("--name", help="customer name, when the customer is new")
    opened.add_argument("--kind", choices=acc.CUSTOMER_KINDS, default=acc.CASH)
    opened.add_argument("--currency", required=True, help="ISO 4217 code, or XAU/XAG (grams)")
    opened.add_argument("--id", help="account id (default: generated)")
    link = cmds.add_parser("link", help="make an account the card's account for its currency")
    link.add_argument("--pan", required=True, help="card number, or - to read it from stdin")
    link.add_argument("--account", required=True)
    deposit = cmds.add_parser("deposit", help="post a counted deposit (idempotent on --ref)")
    deposit.add_argument("--account", required=True)
    deposit.add_argument("--currency", required=True)
    deposit.add_argument("--amount", required=True, help="decimal, e.g. 100.50")
    deposit.add_argument("--branch", required=True)
    deposit.add_argument("--ref", required=True, help="idempotency key of this deposit")
    deposit.add_argument("--rate-version", type=int, help="for a deposit in another currency")
    balances = cmds.add_parser("balances", help="a customer's accounts and balances")
    balances.add_argument("--customer", required=True)
    statement = cmds.add_parser("statement", help="recent postings with running balances")
    statement.add_argument("--account", required=True)
    statement.add_argument("--limit", type=int, default=20)
    rates = cmds.add_parser("rates", help="show the FX rates, or --set a new version")
    rates.add_argument("--set", nargs="+", metavar="CODE=BID:ASK", help="e.g. USD=7.10:7.20")
    rates.add_argument("--source", default="manual")
    cmds.add_parser("audit", help="check every ledger invariant (exit 1 on a problem)")
    lookup_cli.add_parser(cmds)
    for p in cmds.choices.values():
        p.add_argument("--json", action="store_true")

"""``branchline-server cheques``: the bank edits the cheque sale's rules and data.

Settings (``config``), book types with their fees and period limits (``book-type``), which
account types may buy which types (``allow``), company accounts (``account``), authorised
purchasers and their faces (``purchaser``), one-time purchase codes (``code``), cassette
stock (``stock``) and the default rules (``seed-rules``). Every change is audited
(``cheque_audit``) with the ``--actor``. docs/cli.md lists every command.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from branchline.common.errors import DomainError
from branchline.server.cheques import admin, rules
from branchline.server.cheques.core import ChequeCore
from branchline.server.cheques.schema import cheque_accounts, cheque_purchasers, cheque_type_rules
from branchline.server.cheques.seed import Company, seed_company, seed_rules
from branchline.server.storage import open_database

EXIT_USAGE = 2


def _config(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    if args.key is not None:
        admin.set_config(engine, args.key, args.value or "", args.actor, now)
    with engine.connect() as conn:
        return rules.config(conn)


def _book_type(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    admin.put_book_type(
        engine,
        {
            "book_type": args.book_type,
            "name": args.name,
            "prefix": args.prefix,
            "leaves_per_book": args.leaves,
            "currency": args.currency,
            "printing_cost_minor": args.printing_cost,
            "handling_fee_minor": args.handling_fee,
            "period": args.period,
            "period_limit": args.limit,
            "on_sale": not args.off_sale,
        },
        args.actor,
        now,
    )
    return {"book_type": args.book_type}


def _allow(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    admin.allow_type(engine, args.account_type, args.book_type, not args.deny, args.actor, now)
    return {
        "account_type": args.account_type,
        "book_type": args.book_type,
        "allowed": not args.deny,
    }


def _account(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    if args.account_command == "put":
        admin.put_account(
            engine,
            {
                "account_id": args.account_id,
                "account_number": args.number,
                "company_name": args.company,
                "account_type": args.type,
                "branch": args.branch,
                "contact_name": args.contact_name,
                "contact_phone": args.contact_phone,
                "status": args.status,
            },
            args.actor,
            now,
        )
    else:
        stop = None if args.stop_sale is None else args.stop_sale == "yes"
        admin.set_account_status(engine, args.account_id, args.status, stop, args.actor, now)
    return {"account_id": args.account_id}


def _purchaser(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    if args.purchaser_command == "add":
        admin.add_purchaser(
            engine, args.id, args.account_id, args.id_number, args.name, args.actor, now
        )
        return {"purchaser_id": args.id}
    if args.purchaser_command == "enrol":
        core = ChequeCore(engine, None)
        with engine.connect() as conn:
            settings = rules.config(conn)
        sha = admin.enrol_face(
            engine,
            core.matcher(),
            core.face_settings(settings),
            args.id,
            Path(args.image).read_bytes(),
            args.actor,
            now,
        )
        return {"purchaser_id": args.id, "face_sha256": sha}
    if args.purchaser_command == "remove":
        had_face = admin.remove_purchaser(engine, args.id, args.actor, now)
        return {"purchaser_id": args.id, "removed": True, "face_deleted": had_face}
    admin.unlock_purchaser(engine, args.id, args.actor, now)
    return {"purchaser_id": args.id, "locked": False}


def _code(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    code, expires = admin.issue_code(engine, args.account_id, args.actor, now)
    return {"account_id": args.account_id, "code": code, "expires_at": expires.isoformat()}


def _stock(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    if args.stock_command == "load":
        range_id = admin.load_stock(
            engine, args.terminal, args.book_type, args.first, args.last, args.actor, now
        )
        return {"range_id": range_id}
    admin.unload_stock(engine, args.range_id, args.actor, now)
    return {"range_id": args.range_id, "unloaded": True}


def _show(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    with engine.connect() as conn:
        return {
            "config": rules.config(conn),
            "book_types": [vars(k) for k in rules.book_types(conn).values()],
            "type_rules": [dict(r._mapping) for r in conn.execute(select(cheque_type_rules))],
            "accounts": [dict(r._mapping) for r in conn.execute(select(cheque_accounts))],
            "purchasers": [
                {
                    "purchaser_id": r.purchaser_id,
                    "account_id": r.account_id,
                    "name": r.name,
                    "enrolled": r.face_descriptor is not None,
                    "locked": r.locked,
                }
                for r in conn.execute(select(cheque_purchasers))
            ],
        }


def _seed(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    seed_rules(engine, now)
    return {"seeded": True}


def _seed_demo(engine: Engine, args: argparse.Namespace, now: datetime) -> Any:
    """Everything ``make demo`` needs for a purchase, in one process (dlib loads once)."""
    seed_rules(engine, now)
    company = Company(
        args.account_id,
        args.number,
        args.company,
        "basic",
        args.branch,
        args.contact_name,
        args.contact_phone,
        args.purchaser_id,
        args.name,
        args.id_number,
    )
    seed_company(engine, company, now)
    core = ChequeCore(engine, None)
    with engine.connect() as conn:
        settings = rules.config(conn)
    admin.enrol_face(
        engine,
        core.matcher(),
        core.face_settings(settings),
        args.purchaser_id,
        Path(args.face).read_bytes(),
        args.actor,
        now,
    )
    ranges = []
    for spec in args.stock:
        book_type, _, serials = spec.partition("=")
        first, _, last = serials.partition("-")
        ranges.append(
            admin.load_stock(
                engine, args.terminal, book_type, int(first), int(last), args.actor, now
            )
        )
    return {"account_id": args.account_id, "purchaser_id": args.purchaser_id, "ranges": ranges}


COMMANDS = {
    "config": _config,
    "book-type": _book_type,
    "allow": _allow,
    "account": _account,
    "purchaser": _purchaser,
    "code": _code,
    "stock": _stock,
    "show": _show,
    "seed-rules": _seed,
    "seed-demo": _seed_demo,
}


def run(args: argparse.Namespace) -> int:
    engine = open_database(args.db)
    try:
        result = COMMANDS[args.cheques_command](engine, args, datetime.now(UTC))
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"branchline-server cheques: {exc.reason}{where}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    print(json.dumps(result, ensure_ascii=False, default=str, indent=None if args.json else 2))
    return 0


# long: one parser per command, each option with its help, as argparse wants them
def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser("cheques", help="edit the cheque sale's rules, accounts, stock")
    top.add_argument("--actor", default="bank:cli", help="who is recorded in the audit")
    top.add_argument("--json", action="store_true", help="one line of JSON")
    cs = top.add_subparsers(dest="cheques_command", required=True)
    config = cs.add_parser("config", help="show or set a bank-wide setting")
    config.add_argument("--key", choices=admin.CONFIG_KEYS)
    config.add_argument("--value")
    kind = cs.add_parser("book-type", help="create or replace a book type")
    kind.add_argument("--book-type", required=True)
    kind.add_argument("--name", required=True)
    kind.add_argument("--prefix", required=True, help="type/bank prefix of the numbers")
    kind.add_argument("--leaves", type=int, default=25, help="leaves per book")
    kind.add_argument("--currency", default="CNY")
    kind.add_argument("--printing-cost", type=int, required=True, help="minor units per book")
    kind.add_argument("--handling-fee", type=int, required=True, help="minor units per book")
    kind.add_argument("--period", choices=rules.PERIODS, default="month")
    kind.add_argument("--limit", type=int, default=10, help="books per account per period")
    kind.add_argument("--off-sale", action="store_true", help="stop selling this type")
    allow = cs.add_parser("allow", help="let an account type buy a book type (or --deny)")
    allow.add_argument("--account-type", required=True)
    allow.add_argument("--book-type", required=True)
    allow.add_argument("--deny", action="store_true")
    account = cs.add_parser("account", help="company accounts registered for cheque sale")
    acs = account.add_subparsers(dest="account_command", required=True)
    put = acs.add_parser("put", help="register or update an account")
    put.add_argument("--account-id", required=True, help="the ledger account")
    put.add_argument("--number", required=True, help="account number printed on cheques")
    put.add_argument("--company", required=True)
    put.add_argument("--type", required=True, help="basic, general, special, ...")
    put.add_argument("--branch", required=True)
    put.add_argument("--contact-name", default="")
    put.add_argument("--contact-phone", default="")
    put.add_argument("--status", choices=rules.ACCOUNT_STATES, default="active")
    status = acs.add_parser("status", help="freeze, close, stop sale, ...")
    status.add_argument("--account-id", required=True)
    status.add_argument("--status", choices=rules.ACCOUNT_STATES, required=True)
    status.add_argument("--stop-sale", choices=("yes", "no"))
    buyer = cs.add_parser("purchaser", help="authorised purchasers")
    bcs = buyer.add_subparsers(dest="purchaser_command", required=True)
    add = bcs.add_parser("add", help="register a purchaser of an account")
    add.add_argument("--id", required=True)
    add.add_argument("--account-id", required=True)
    add.add_argument("--id-number", required=True, help="18-character resident ID number")
    add.add_argument("--name", required=True)
    enrol = bcs.add_parser("enrol", help="enrol or replace the purchaser's face image")
    enrol.add_argument("--id", required=True)
    enrol.add_argument("--image", required=True, help="JPEG or PNG with one clear face")
    unlock = bcs.add_parser("unlock", help="unlock after failed face checks")
    unlock.add_argument("--id", required=True)
    remove = bcs.add_parser(
        "remove", help="the purchaser no longer buys for the account: deletes their enrolled face"
    )
    remove.add_argument("--id", required=True)
    code = cs.add_parser("code", help="issue a one-time purchase code (printed once)")
    code.add_argument("--account-id", required=True)
    stock = cs.add_parser("stock", help="cassette stock")
    scs = stock.add_subparsers(dest="stock_command", required=True)
    load = scs.add_parser("load", help="register a serial range loaded into a terminal")
    load.add_argument("--terminal", required=True)
    load.add_argument("--book-type", required=True)
    load.add_argument("--first", type=int, required=True)
    load.add_argument("--last", type=int, required=True)
    unload = scs.add_parser("unload", help="the range's cassette was emptied")
    unload.add_argument("--range-id", type=int, required=True)
    cs.add_parser("show", help="the rules, accounts and purchasers")
    cs.add_parser("seed-rules", help="the default book types and account-type rules")
    demo = cs.add_parser("seed-demo", help="a company, its purchaser and stock for the demo")
    demo.add_argument("--account-id", required=True, help="an existing ledger account")
    demo.add_argument("--number", required=True)
    demo.add_argument("--company", required=True)
    demo.add_argument("--branch", required=True)
    demo.add_argument("--contact-name", default="")
    demo.add_argument("--contact-phone", default="")
    demo.add_argument("--purchaser-id", required=True)
    demo.add_argument("--id-number", required=True)
    demo.add_argument("--name", required=True)
    demo.add_argument("--face", required=True, help="the purchaser's face image")
    demo.add_argument("--terminal", required=True)
    demo.add_argument("--stock", action="append", default=[], help="BOOK_TYPE=FIRST-LAST")

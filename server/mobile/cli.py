"""``branchline-server mobile``: the bank enrols customers for mobile banking (the phone's
sign-in at the bank, ``docs/mobile.md``), resets their password or authenticator, lifts a
lockout, shows their state. Uses the top-level ``--db``.

Passwords are read from stdin (one line) or, at a terminal, prompted for twice; never from
the command line, where other users and the shell's history would see them. The TOTP
provisioning URI (and its QR as PNG with ``--qr FILE``) is printed once: the bank keeps no
way to show it again (reset ``--totp`` makes a new one). docs/cli.md lists every command.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine

from branchline.common.errors import DomainError, InvalidArgument
from branchline.server.mobile import enrolment
from branchline.server.storage import open_database

EXIT_USAGE = 2


def read_password(stdin: TextIO) -> str:
    """One line from stdin, or typed twice at a terminal (not echoed)."""
    if stdin.isatty():
        first = getpass.getpass("New mobile-banking password: ")
        if first != getpass.getpass("The same again: "):
            raise InvalidArgument("password", "the two entries differ", reason="mismatch")
        return first
    return stdin.readline().rstrip("\r\n")


def write_qr(path: Path, uri: str) -> str:
    """The URI's QR code as a PNG only the owner can read; refuses to replace a file."""
    import qrcode

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidArgument("qr", f"{path} exists; give a new file", reason="exists") from None
    except OSError as exc:
        raise InvalidArgument("qr", f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        qrcode.make(uri).save(out, format="PNG")
    return str(path)


def _shown_once(made: enrolment.Enrolment, args: argparse.Namespace) -> dict[str, Any]:
    qr = write_qr(args.qr, made.uri) if args.qr else None
    return {"customer_id": made.customer_id, "otpauth_uri": made.uri, "qr_png": qr}


def _check_qr(args: argparse.Namespace) -> None:
    """Before anything changes: a QR file that would be refused afterwards."""
    if args.qr and args.qr.exists():
        raise InvalidArgument("qr", f"{args.qr} exists; give a new file", reason="exists")


def _enrol(
    engine: Engine, args: argparse.Namespace, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    _check_qr(args)
    password = read_password(sys.stdin)
    made = enrolment.enrol(engine, args.customer, password, args.actor, now, args.issuer)
    data = _shown_once(made, args)
    lines = [
        f"enrolled {made.customer_id} for mobile banking",
        "add to the customer's authenticator app (shown once):",
        f"  {made.uri}",
    ]
    if data["qr_png"]:
        lines.append(f"  QR code: {data['qr_png']}")
    return data, lines


def _reset(
    engine: Engine, args: argparse.Namespace, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    if not (args.password or args.totp):
        raise InvalidArgument(
            "reset", "say what to reset: --password and/or --totp", reason="nothing_to_reset"
        )
    _check_qr(args)
    password = read_password(sys.stdin) if args.password else None
    made = enrolment.reset(engine, args.customer, args.actor, now, password, args.totp, args.issuer)
    data: dict[str, Any] = {"customer_id": args.customer, "password": bool(args.password)}
    lines = [
        f"reset {args.customer}: " + ", ".join(k for k in ("password", "totp") if getattr(args, k))
    ]
    if made is not None:
        data.update(_shown_once(made, args))
        lines += ["add to the customer's authenticator app (shown once):", f"  {made.uri}"]
        if data["qr_png"]:
            lines.append(f"  QR code: {data['qr_png']}")
    return data, lines


def _unlock(
    engine: Engine, args: argparse.Namespace, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    was = enrolment.unlock(engine, args.customer, args.actor, now)
    note = "unlocked" if was else "was not locked; failure count cleared"
    return {"customer_id": args.customer, "was_locked": was}, [f"{args.customer}: {note}"]


def _unenrol(
    engine: Engine, args: argparse.Namespace, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    ended = enrolment.unenrol(engine, args.customer, args.actor, now)
    data = {"customer_id": args.customer, "unenrolled": True, "phones_signed_out": ended}
    return data, [f"{args.customer}: unenrolled, {ended} phone(s) signed out"]


def _show(
    engine: Engine, args: argparse.Namespace, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    found = enrolment.status(engine, now, args.customer or "")
    lines = [
        f"{c['customer_id']}: "
        + (f"locked until {c['locked_until']}" if c["locked"] else "can sign in")
        + f", {c['failed_attempts']} failed attempt(s) in a row"
        for c in found
    ]
    for entry in found[0].get("audit", []) if found else []:
        lines.append(f"  {entry['at']} {entry['action']} by {entry['actor']}")
    return {"customers": found}, lines or ["nobody is enrolled"]


COMMANDS = {
    "enrol": _enrol,
    "reset": _reset,
    "unlock": _unlock,
    "unenrol": _unenrol,
    "show": _show,
}


def run(args: argparse.Namespace) -> int:
    engine = open_database(args.db)
    try:
        data, lines = COMMANDS[args.mobile_command](engine, args, datetime.now(UTC))
    except DomainError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"branchline-server mobile: {exc.reason}{where}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print("\n".join(lines))
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser("mobile", help="enrol customers for mobile banking (phone sign-in)")
    top.add_argument("--actor", default="bank:cli", help="who is recorded in the audit")
    cs = top.add_subparsers(dest="mobile_command", required=True)
    enrol = cs.add_parser(
        "enrol", help="enrol a customer: password from stdin, prints the TOTP URI once"
    )
    reset = cs.add_parser("reset", help="a new password (from stdin) and/or TOTP secret")
    unlock = cs.add_parser("unlock", help="lift a lockout after failed sign-ins")
    unenrol = cs.add_parser(
        "unenrol", help="end mobile banking: credentials deleted, phones signed out"
    )
    show = cs.add_parser("show", help="enrolled customers' sign-in state (one: its audit)")
    for command in (enrol, reset, unlock, unenrol):
        command.add_argument("--customer", required=True, help="the ledger's customer id")
    show.add_argument("--customer", help="one customer (default: everyone enrolled)")
    for command in (enrol, reset):
        command.add_argument("--qr", type=Path, help="also write the URI's QR code as PNG")
        command.add_argument("--issuer", default=enrolment.ISSUER, help="name in the app")
    reset.add_argument("--password", action="store_true", help="read a new password")
    reset.add_argument("--totp", action="store_true", help="make a new TOTP secret")
    for command in (enrol, reset, unlock, unenrol, show):
        command.add_argument("--json", action="store_true", help="one line of JSON")

"""``branchline-server cards``: enrol cards and look at their PIN state (bank back office).

``enroll`` stores a card's PIN verification value (Visa PVV or IBM 3624 offset): either as
the issuer supplies it (``--value``), or derived by the HSM from the PIN block the bank
desk's DUKPT PIN pad sent (``--pin-block`` with its ``--ksn``; the HSM translates it under
``--zpk`` and derives the value from it, so the clear PIN never leaves the pad or the HSM).
Demos and tests make that block with the simulator's desk pad
(``branchline.sim.enrol_pin_pad``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from branchline.common.redaction import mask_pan
from branchline.server.ledger import cards
from branchline.server.ledger.hsm_check import METHODS, VISA_PVV, ibm_validation_data
from branchline.server.ledger.pan_token import PanTokenizer, validate_pan
from branchline.server.storage import open_database

EXIT_USAGE = 2


def _fail(message: str) -> int:
    print(f"branchline-server cards: {message}", file=sys.stderr)
    return EXIT_USAGE


def _enroll(args: argparse.Namespace) -> int:
    pan = args.pan if args.pan != "-" else sys.stdin.readline().strip()
    problem = validate_pan(pan)
    if problem:
        return _fail(problem)
    value = args.value
    pvki = args.pvki
    if args.pin_block is not None:
        if value:
            return _fail("--value and --pin-block: give one of them")
        derived = _value_from_pin_block(args, pan)
        if isinstance(derived, int):
            return derived
        value = derived
    if not value or not value.isdigit() or not 4 <= len(value) <= 12:
        return _fail("--value: the PVV or offset (4 to 12 digits), or --pin-block with --hsm")
    if args.method == VISA_PVV and len(value) != 4:
        return _fail("--value: a Visa PVV has 4 digits")
    now = datetime.now(UTC)
    engine = open_database(args.db)
    tokenizer = PanTokenizer.from_file(args.pan_token_key)
    cards.add_customer(engine, args.customer, args.name or args.customer, now)
    cards.enroll_card(
        engine,
        card_token=tokenizer.token(pan),
        pan_masked=mask_pan(pan),
        customer_id=args.customer,
        verification_method=args.method,
        pvki=pvki,
        verification_value=value,
        pvk_name=args.pvk,
        now=now,
    )
    out = {"card": mask_pan(pan), "customer": args.customer, "method": args.method}
    print(json.dumps(out) if args.json else f"enrolled card {out['card']} for {args.customer}")
    return 0


def _value_from_pin_block(args: argparse.Namespace, pan: str) -> str | int:
    """The PVV or offset the HSM derives from the desk pad's DUKPT PIN block, or an exit
    status after saying what was wrong."""
    missing = [f"--{name}" for name in ("ksn", "hsm") if not getattr(args, name)]
    if missing:
        return _fail(f"--pin-block needs {' and '.join(missing)}")
    try:
        block, ksn = bytes.fromhex(args.pin_block), bytes.fromhex(args.ksn)
    except ValueError:
        return _fail("--pin-block and --ksn are hex")
    from branchline.server.hsm import HsmError, KeyType, open_hsm

    try:
        hsm = open_hsm(args.hsm)
        under_zpk = hsm.translate_pin_dukpt_to_zpk(args.bdk, ksn, block, pan, args.zpk)
        if args.method == VISA_PVV:
            record = hsm.generate_pvv(
                args.zpk, under_zpk, pan, args.pvk, args.pvki, pin_key_type=KeyType.ZPK
            )
            return record.pvv
        offset = hsm.generate_ibm3624_offset(
            args.zpk, under_zpk, pan, args.pvk, ibm_validation_data(pan), pin_key_type=KeyType.ZPK
        )
        return offset.offset
    except HsmError as exc:
        return _fail(f"--hsm: {exc}")


def _show(args: argparse.Namespace) -> int:
    problem = validate_pan(args.pan)
    if problem:
        return _fail(problem)
    engine = open_database(args.db)
    card = cards.get_card(engine, PanTokenizer.from_file(args.pan_token_key).token(args.pan))
    if card is None:
        return _fail(f"card {mask_pan(args.pan)} is not enrolled")
    out = {
        "card": card.pan_masked,
        "customer": card.customer_id,
        "method": card.verification_method,
        "failed_attempts": card.failed_attempts,
        "locked": card.locked,
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:16} {value}")
    return 0


def run(args: argparse.Namespace) -> int:
    return _enroll(args) if args.cards_command == "enroll" else _show(args)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cards_parser = sub.add_parser("cards", help="enrol cards and show their PIN state")
    cards_sub = cards_parser.add_subparsers(dest="cards_command", required=True)
    enroll = cards_sub.add_parser("enroll", help="store a card's PIN verification value")
    enroll.add_argument("--pan", required=True, help="card number, or - to read it from stdin")
    enroll.add_argument("--customer", required=True)
    enroll.add_argument("--name", help="customer name (when the customer is new)")
    enroll.add_argument("--method", choices=METHODS, default=VISA_PVV)
    enroll.add_argument("--pvki", type=int, default=1)
    enroll.add_argument("--pvk", default="PVK", help="name of the PIN verification key in the HSM")
    enroll.add_argument("--value", help="the PVV or IBM 3624 offset from the issuer")
    enroll.add_argument(
        "--pin-block", help="the desk PIN pad's DUKPT PIN block (hex); the HSM derives the value"
    )
    enroll.add_argument("--ksn", help="the KSN the PIN pad sent with --pin-block (hex)")
    enroll.add_argument("--bdk", default="BDK", help="name of the PIN pad's BDK in the HSM")
    enroll.add_argument("--zpk", default="ZPK", help="name of the zone PIN key in the HSM")
    enroll.add_argument("--hsm", help="HSM URL (soft:... or payshield:...) for --pin-block")
    show = cards_sub.add_parser("show", help="a card's masked number and wrong-PIN state")
    show.add_argument("--pan", required=True)
    for p in (enroll, show):
        p.add_argument("--json", action="store_true")

"""``branchline-server cards``: enrol cards and look at their PIN state (bank back office).

``enroll`` stores a card's PIN verification value (Visa PVV or IBM 3624 offset) as the
issuer supplies it. ``--test-pin`` derives it from a clear PIN with the soft HSM's
fixture helper and exists for development and CI only.
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
    if args.test_pin is not None:
        if not args.hsm or not args.hsm.startswith("soft:"):
            return _fail("--test-pin needs --hsm soft:... (a development keystore)")
        from branchline.server.hsm import HsmError, open_hsm

        try:
            hsm = open_hsm(args.hsm)
            pvv, offset = hsm.enroll_pin_for_testing(  # type: ignore[attr-defined]
                args.pvk, pan, args.test_pin, pvki=pvki, validation_data=ibm_validation_data(pan)
            )
        except HsmError as exc:
            return _fail(f"--hsm: {exc}")
        value = pvv.pvv if args.method == VISA_PVV else offset.offset
    if not value or not value.isdigit() or not 4 <= len(value) <= 12:
        return _fail("--value: the PVV or offset (4 to 12 digits), or --test-pin with --hsm")
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


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    enroll.add_argument("--test-pin", help="DEVELOPMENT ONLY: derive the value from this PIN")
    enroll.add_argument("--hsm", help="soft:... keystore URL for --test-pin")
    show = cards_sub.add_parser("show", help="a card's masked number and wrong-PIN state")
    show.add_argument("--pan", required=True)
    for p in (enroll, show):
        p.add_argument("--json", action="store_true")

"""``branchline-hsm``: the key custodians' tool for the soft HSM's keystore.

Keys are created, imported, listed (never shown), rotated, and DUKPT initial keys are
derived for PIN-pad injection: the only place key material leaves the HSM. ``dukpt`` is
a calculator for given test keys and touches no keystore.

The keystore is ``--keystore`` (default ``$BRANCHLINE_HSM_KEYSTORE`` or
``var/hsm/keystore.json``); the master key comes from ``--master-key-file`` or
``$BRANCHLINE_HSM_MASTER_KEY`` (64 hex digits). Bad input exits 2 with one line naming
what was wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from branchline.common.errors import DomainError
from branchline.common.hsm import validate
from branchline.common.hsm.errors import HsmError, InvalidInputError
from branchline.common.hsm.interface import Algorithm, KeyInfo, KeyType
from branchline.common.hsm.keystore import (
    DEFAULT_KEYSTORE,
    KEYSTORE_ENV,
    MASTER_KEY_ENV,
    MasterKey,
    write_master_key_file,
)
from branchline.common.hsm.soft import SoftHsm
from branchline.common.paycrypto import PayCryptoError, aes_dukpt, tdes_dukpt

PROG = "branchline-hsm"
EXIT_BAD_INPUT = 2


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(lines))


def _soft(args: argparse.Namespace) -> SoftHsm:
    return SoftHsm.open(args.keystore, MasterKey.resolve(args.master_key_file))


def _key_lines(info: KeyInfo) -> list[str]:
    return [
        f"name: {info.name}",
        f"type: {info.type.value}",
        f"algorithm: {info.algorithm.value}",
        f"kcv: {info.kcv}",
    ]


def _read_hex(value: str, what: str) -> bytes:
    text = sys.stdin.readline() if value == "-" else value
    return validate.hex_bytes(text.strip(), what)


def cmd_create_key(args: argparse.Namespace) -> int:
    info = _soft(args).create_key(
        args.name, KeyType(args.type), Algorithm(args.algorithm), args.bits
    )
    _emit(args, info.as_dict(), _key_lines(info))
    return 0


def cmd_import_key(args: argparse.Namespace) -> int:
    value = _read_hex(args.hex, "--hex")
    kcv = validate.hex_bytes(args.kcv, "--kcv") if args.kcv else None
    info = _soft(args).import_key(
        args.name, KeyType(args.type), Algorithm(args.algorithm), value, kcv
    )
    _emit(args, info.as_dict(), _key_lines(info))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    keys = _soft(args).list_keys()
    if args.json:
        print(json.dumps([k.as_dict() for k in keys], indent=2))
        return 0
    if not keys:
        print("(no keys)")
        return 0
    width = max(4, *(len(k.name) for k in keys))
    print(f"{'NAME':{width}}  TYPE  ALG   KCV         CREATED")
    for k in keys:
        created = k.created_at.isoformat() if k.created_at else "-"
        print(f"{k.name:{width}}  {k.type.value:4}  {k.algorithm.value:4}  {k.kcv:10}  {created}")
    return 0


def cmd_derive_initial_key(args: argparse.Namespace) -> int:
    ksn = validate.hex_bytes(args.ksn, "--ksn", (10, 12))
    key, kcv = _soft(args).derive_initial_key(args.bdk, ksn)
    data = {"bdk": args.bdk, "ksn": ksn.hex().upper(), "initial_key": key.hex().upper(), "kcv": kcv}
    _emit(args, data, [f"initial_key: {data['initial_key']}", f"kcv: {kcv}"])
    return 0


def cmd_rotate_bdk(args: argparse.Namespace) -> int:
    new, previous = _soft(args).rotate_bdk(args.name)
    data = {"current": new.as_dict(), "previous": previous.as_dict()}
    _emit(
        args,
        data,
        [
            f"{new.name}: new {new.algorithm.value} BDK, kcv {new.kcv}",
            f"{previous.name}: the previous BDK, kcv {previous.kcv} "
            "(for PIN pads not yet re-injected)",
        ],
    )
    return 0


def dukpt_keys(bdk: bytes, ksn: bytes) -> dict[str, str]:
    """Initial, transaction and PIN-encryption keys for a KSN (TDES: 10 bytes, AES: 12)."""
    try:
        if len(ksn) == validate.TDES_KSN_LENGTH:
            initial = tdes_dukpt.derive_ipek(bdk, ksn)
            transaction = tdes_dukpt.transaction_key_from_ipek(initial, ksn)
            pin = tdes_dukpt.working_key(transaction)
            algorithm = "tdes"
        else:
            initial = aes_dukpt.derive_initial_key(bdk, aes_dukpt.ksn_initial_key_id(ksn))
            transaction = aes_dukpt.transaction_key_from_initial_key(initial, ksn)
            pin = aes_dukpt.working_key(transaction, ksn)
            algorithm = "aes"
    except PayCryptoError as exc:
        raise InvalidInputError(str(exc)) from None
    return {
        "algorithm": algorithm,
        "ksn": ksn.hex().upper(),
        "initial_key": initial.hex().upper(),
        "transaction_key": transaction.hex().upper(),
        "pin_key": pin.hex().upper(),
    }


def cmd_dukpt(args: argparse.Namespace) -> int:
    ksn = validate.hex_bytes(args.ksn, "--ksn", (10, 12))
    bdk = validate.hex_bytes(
        args.bdk, "--bdk", (16,) if len(ksn) == validate.TDES_KSN_LENGTH else (16, 24, 32)
    )
    data = dukpt_keys(bdk, ksn)
    lines = [f"{name}: {data[name]}" for name in ("initial_key", "transaction_key", "pin_key")]
    _emit(args, data, lines)
    return 0


def cmd_new_master_key(args: argparse.Namespace) -> int:
    key = MasterKey.generate()
    write_master_key_file(args.out, key)
    _emit(
        args,
        {"file": str(args.out), "kcv": key.kcv},
        [f"master key written to {args.out} (mode 0600), kcv {key.kcv}"],
    )
    return 0


# long: one argparse declaration per key-custodian command; splitting it scatters the CLI reference
def _parser() -> argparse.ArgumentParser:
    # Keystore options work before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--keystore",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"keystore file (default ${KEYSTORE_ENV} or {DEFAULT_KEYSTORE})",
    )
    common.add_argument(
        "--master-key-file",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"file holding the master key, mode 0600 (default: ${MASTER_KEY_ENV})",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog=PROG, description="key custodians' tool for the Branchline soft HSM", parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=text, description=text, parents=[common])
        cmd.set_defaults(handler=handler)
        return cmd

    types = [t.value for t in KeyType]
    algorithms = [a.value for a in Algorithm]
    create = add("create-key", cmd_create_key, "generate a new random key in the keystore")
    create.add_argument("name")
    create.add_argument("--type", required=True, choices=types)
    create.add_argument("--algorithm", default="tdes", choices=algorithms)
    create.add_argument("--bits", type=int, help="AES BDKs: 128, 192 or 256 (default 128)")

    imp = add("import-key", cmd_import_key, "import clear key material (checked against --kcv)")
    imp.add_argument("name")
    imp.add_argument("--type", required=True, choices=types)
    imp.add_argument("--algorithm", default="tdes", choices=algorithms)
    imp.add_argument(
        "--hex", required=True, help="key material in hex, or - to read a line from stdin"
    )
    imp.add_argument("--kcv", help="expected key check value (hex); the import fails on mismatch")

    add("list", cmd_list, "names, types, algorithms and KCVs of the keys (never their values)")

    derive = add(
        "derive-initial-key", cmd_derive_initial_key, "a PIN pad's DUKPT initial key, for injection"
    )
    derive.add_argument("--bdk", required=True, help="BDK name in the keystore")
    derive.add_argument("--ksn", required=True, help="KSN, 20 hex digits (TDES) or 24 (AES)")

    rotate = add(
        "rotate-bdk", cmd_rotate_bdk, "new BDK under NAME; the old one stays as NAME@previous"
    )
    rotate.add_argument("name")

    calc = add("dukpt", cmd_dukpt, "DUKPT keys for a given BDK and KSN (test calculator)")
    calc.add_argument("--bdk", required=True, help="BDK in hex (TDES: 32 digits; AES: 32/48/64)")
    calc.add_argument("--ksn", required=True, help="KSN, 20 hex digits (TDES) or 24 (AES)")

    master = add("new-master-key", cmd_new_master_key, "write a new random master key file (0600)")
    master.add_argument("--out", type=Path, required=True, help="file to create (must not exist)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not hasattr(args, "keystore"):
        args.keystore = Path(os.environ.get(KEYSTORE_ENV) or DEFAULT_KEYSTORE)
    args.master_key_file = getattr(args, "master_key_file", None)
    args.json = getattr(args, "json", False)
    try:
        return int(args.handler(args))
    except (HsmError, DomainError) as exc:
        return _refused(args, exc)


def _refused(args: argparse.Namespace, exc: HsmError | DomainError) -> int:
    """The error on stderr (its stable code in brackets, the field when it names one); with
    ``--json`` also as data on stdout: reason, field, message."""
    field = getattr(exc, "field", "")
    where = f" (field {field})" if field else ""
    print(f"{PROG} {args.command}:{where} {exc.message} [{exc.code}]", file=sys.stderr)
    if args.json:
        data = {"reason": exc.code, "message": exc.message}
        if isinstance(exc, DomainError):
            data["status"] = exc.status
        if field:
            data["field"] = field
        print(json.dumps({"error": data}))
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())

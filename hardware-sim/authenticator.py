"""``python -m branchline.sim.authenticator``: the customer's authenticator app, for the demo
and tests. Reads the ``otpauth://totp/`` URI ``branchline-server mobile enrol`` printed (from
a file, or stdin with ``-``) and prints the code for now and the seconds it stays valid."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from branchline.common.totp import STEP_SECONDS, secret_bytes, totp

EXIT_USAGE = 2


def code_of(uri: str, now: float) -> tuple[str, int]:
    """(the code at ``now``, seconds left in its step); ValueError naming what is wrong."""
    parts = urlsplit(uri.strip())
    if parts.scheme != "otpauth" or parts.netloc != "totp":
        raise ValueError("not an otpauth://totp/ URI")
    query = parse_qs(parts.query)
    if query.get("algorithm", ["SHA1"]) != ["SHA1"] or query.get("digits", ["6"]) != ["6"]:
        raise ValueError("only SHA1, 6 digits (as the bank issues them)")
    if query.get("period", [str(STEP_SECONDS)]) != [str(STEP_SECONDS)]:
        raise ValueError(f"only a {STEP_SECONDS} s period")
    secret = query.get("secret", [""])[0]
    try:
        key = secret_bytes(secret)
    except ValueError:
        raise ValueError("its secret is not base32") from None
    if not key:
        raise ValueError("it has no secret")
    return totp(key, now), STEP_SECONDS - int(now) % STEP_SECONDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m branchline.sim.authenticator")
    parser.add_argument("uri_file", help="file holding the otpauth:// URI, or - for stdin")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        uri = sys.stdin.readline() if args.uri_file == "-" else Path(args.uri_file).read_text()
        code, left = code_of(uri, time.time())
    except (OSError, ValueError) as exc:
        print(f"authenticator: {args.uri_file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({"code": code, "valid_for_s": left}))
    else:
        print(f"{code}  (valid {left} s more)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``branchline-teller`` (see the package docstring): the parser, built from each role's
commands, and the one place a refused call becomes exit 1 with the status and the field."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

import branchline.server.teller as package
from branchline.server.teller import backoffice, calls, counter, lobby, operator, teller
from branchline.server.teller.client import Client, UsageError
from branchline.server.teller.output import notice, refusal

EXIT_REFUSED = 1
EXIT_USAGE = 2


def _global_options(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--target", default=env("BRANCHLINE_SERVER", "127.0.0.1:50051"), help="server host:port"
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=env("BRANCHLINE_TLS_DIR") or None,
        help="PKI folder: ca.pem and tellers/, lobby/, operators/, terminals/",
    )
    parser.add_argument(
        "--as",
        dest="as_",
        default=env("BRANCHLINE_AS"),
        metavar="ROLE:ID",
        help="who you sign in as: teller:ID, lobby:ID, operator:NAME or terminal:ID",
    )
    parser.add_argument("--ca", type=Path, help="CA certificate (default TLS_DIR/ca.pem)")
    parser.add_argument("--cert", type=Path, help="client certificate (default from --as)")
    parser.add_argument("--key", type=Path, help="client key (default from --as)")
    parser.add_argument(
        "--insecure", action="store_true", help="plaintext, for a server on --insecure-loopback"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")


def build_parser() -> argparse.ArgumentParser:
    doc = package.__doc__ or ""
    parser = argparse.ArgumentParser(
        prog="branchline-teller",
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[Client, argparse.Namespace], int], help: str) -> Any:
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=handler)
        return p

    teller.add_commands(command)
    lobby.add_commands(command)
    calls.add_commands(sub)
    backoffice.add_commands(sub)
    operator.add_commands(sub)
    counter.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        client = Client(args)
        return int(args.handler(client, args))
    except UsageError as exc:
        notice(str(exc))
        return EXIT_USAGE
    except grpc.RpcError as exc:
        refusal(exc, getattr(args, "json", False))
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

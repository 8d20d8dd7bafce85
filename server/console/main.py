"""``branchline-console``: the staff console on this workstation, over your certificate.

    branchline-console --tls-dir PKI --as teller:BO-1            # back office
    branchline-console --tls-dir PKI --as operator:ops --listen 127.0.0.1:8791

Serves the web app on loopback only (default 127.0.0.1:8790) and prints ``console URL``
once it listens; open that address in the workstation's browser.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from branchline.common.errors import InvalidArgument
from branchline.common.logs import log_event, setup_logging
from branchline.server.console.session import ConsoleSession
from branchline.server.console.settings import (
    DEFAULT_LISTEN,
    LANGUAGES,
    ConsoleSettings,
    credentials_for,
    default_state_dir,
    parse_identity,
    parse_listen,
    read_ice,
)
from branchline.server.console.web import ConsoleServer

log = logging.getLogger("branchline.server.console")
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="branchline-console",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--target", default=env("BRANCHLINE_SERVER", "127.0.0.1:50051"), help="server host:port"
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=env("BRANCHLINE_TLS_DIR") or None,
        help="PKI folder: ca.pem and tellers/, lobby/, operators/",
    )
    parser.add_argument(
        "--as",
        dest="as_",
        default=env("BRANCHLINE_AS"),
        metavar="ROLE:ID",
        help="who you sign in as: teller:ID, lobby:ID or operator:NAME",
    )
    parser.add_argument("--ca", type=Path, help="CA certificate (default TLS_DIR/ca.pem)")
    parser.add_argument("--cert", type=Path, help="client certificate (default from --as)")
    parser.add_argument("--key", type=Path, help="client key (default from --as)")
    parser.add_argument(
        "--insecure", action="store_true", help="plaintext, for a server on --insecure-loopback"
    )
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, help=f"loopback HOST:PORT (default {DEFAULT_LISTEN})"
    )
    parser.add_argument("--lang", choices=LANGUAGES, default="zh-CN", help="first language")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=env("BRANCHLINE_CONSOLE_STATE") or None,
        help="where recordings wait until the server has them "
        "(default $XDG_STATE_HOME/branchline-console/ROLE-ID)",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN URL for video calls (repeat; stun:, stuns:, turn:, turns:)",
    )
    parser.add_argument("--ice-username", default="", help="TURN username")
    parser.add_argument("--ice-credential-file", type=Path, help="file holding the TURN credential")
    return parser


def settings_from(args: argparse.Namespace) -> ConsoleSettings:
    identity = parse_identity(args.as_ or "")
    host, port = parse_listen(args.listen)
    credentials = (
        None
        if args.insecure
        else credentials_for(identity, args.tls_dir, args.ca, args.cert, args.key)
    )
    return ConsoleSettings(
        target=args.target,
        identity=identity,
        credentials=credentials,
        host=host,
        port=port,
        lang=args.lang,
        timeout=args.timeout,
        state_dir=args.state_dir or default_state_dir(identity),
        ice=read_ice(args.ice_server, args.ice_username, args.ice_credential_file),
    )


async def serve(settings: ConsoleSettings) -> None:
    server = ConsoleServer(ConsoleSession(settings))
    url = await server.start()
    print(f"console {url} ({settings.identity})", flush=True)
    log_event(log, "console_serving", url=url, who=str(settings.identity))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except InvalidArgument as exc:
        print(f"branchline-console: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging("console")
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        print(
            f"branchline-console: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

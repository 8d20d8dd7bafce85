"""``branchline-mobile``: serve the phone gateway over HTTPS.

Development (the dev PKI from ``branchline-server pki init DIR --mobile gw1``)::

    branchline-mobile --tls-dir DIR --name gw1 --server 127.0.0.1:50051

The HTTPS certificate defaults to the PKI's ``server.pem`` (names localhost, 127.0.0.1);
the gRPC client certificate to ``mobile/<name>.pem``. ``--insecure-server`` talks plaintext
gRPC to a server started with ``--insecure-loopback`` (development only); HTTPS stays.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from branchline.common.logs import log_event, setup_logging
from branchline.server.mobile_gateway.app import Limits, make_app
from branchline.server.mobile_gateway.backend import Backend, BackendSettings

EXIT_USAGE = 2
SHUTDOWN_GRACE = 2.0
log = logging.getLogger("branchline.mobile")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="branchline-mobile", description=__doc__)
    parser.add_argument(
        "--listen", default="127.0.0.1:8443", help="host:port (default %(default)s)"
    )
    parser.add_argument("--server", default="127.0.0.1:50051", help="the server's gRPC address")
    parser.add_argument("--tls-dir", type=Path, required=True, help="the PKI directory")
    parser.add_argument("--name", default="gw1", help="this gateway's certificate name (mobile/)")
    parser.add_argument("--https-cert", type=Path, help="HTTPS certificate (default server.pem)")
    parser.add_argument("--https-key", type=Path, help="HTTPS key (default server.key)")
    parser.add_argument(
        "--insecure-server",
        action="store_true",
        help="plaintext gRPC to a --insecure-loopback server (development only)",
    )
    parser.add_argument("--phone-rate", type=float, default=2.0, help="requests/s per phone")
    parser.add_argument("--terminal-rate", type=float, default=5.0, help="requests/s per terminal")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def https_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def serve(args: argparse.Namespace) -> int:
    tls: Path = args.tls_dir
    if args.insecure_server:
        backend_settings = BackendSettings(args.server)
    else:
        backend_settings = BackendSettings(
            args.server,
            ca=tls / "ca.pem",
            cert=tls / "mobile" / f"{args.name}.pem",
            key=tls / "mobile" / f"{args.name}.key",
        )
    context = https_context(
        args.https_cert or tls / "server.pem", args.https_key or tls / "server.key"
    )
    backend = Backend(backend_settings)
    limits = Limits(
        phone_rate=args.phone_rate,
        phone_burst=max(1, int(args.phone_rate * 10)),
        terminal_rate=args.terminal_rate,
        terminal_burst=max(1, int(args.terminal_rate * 10)),
    )
    # A phone that closes its page ends its live-list handler (and its watch on the server)
    # at once; on SIGTERM open streams get SHUTDOWN_GRACE seconds.
    runner = web.AppRunner(
        make_app(backend, limits),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    await runner.setup()
    host, _, port = args.listen.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port), ssl_context=context)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    bound = sockets[0].getsockname()[1] if sockets else int(port)
    log_event(
        log,
        "mobile_gateway_serving",
        url=f"https://{host or '127.0.0.1'}:{bound}/",
    )
    print(f"https://{host or '127.0.0.1'}:{bound}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.phone_rate <= 0 or args.terminal_rate <= 0:
        print("branchline-mobile: rates must be positive", file=sys.stderr)
        return EXIT_USAGE
    setup_logging("branchline-mobile", args.log_level)
    try:
        return asyncio.run(serve(args))
    except (OSError, ssl.SSLError) as exc:
        print(f"branchline-mobile: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

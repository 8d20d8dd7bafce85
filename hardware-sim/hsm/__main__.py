"""``python -m branchline.sim.hsm``: a simulated Thales payShield on TCP.

Prints ``branchline-sim-hsm listening on HOST:PORT`` once it accepts connections (use
``--listen 127.0.0.1:0`` for a free port). Keys come from a soft-backend keystore
(``branchline-hsm create-key ... --keystore FILE``), opened with the master key from
``BRANCHLINE_HSM_MASTER_KEY`` or ``--master-key-file``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from branchline.common.hsm.errors import HsmError
from branchline.common.hsm.keystore import DEFAULT_KEYSTORE, KEYSTORE_ENV, MasterKey
from branchline.common.hsm.soft import SoftHsm
from branchline.common.logs import setup_logging

from .emulation import PayShieldEmulation
from .server import PayShieldServer

PROG = "branchline-sim-hsm"


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="a simulated Thales payShield on TCP")
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 1500), help="HOST:PORT")
    parser.add_argument(
        "--keystore",
        type=Path,
        default=Path(os.environ.get(KEYSTORE_ENV, str(DEFAULT_KEYSTORE))),
        help=f"soft-backend keystore (default ${KEYSTORE_ENV} or {DEFAULT_KEYSTORE})",
    )
    parser.add_argument("--master-key-file", type=Path, help="file with the master key (0600)")
    parser.add_argument(
        "--header-length", type=int, default=4, choices=range(0, 33), metavar="0-32"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


async def _run(server: PayShieldServer, host: str, port: int) -> int:
    bound_host, bound_port = await server.start(host, port)
    print(f"{PROG} listening on {bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(PROG, args.log_level)
    try:
        soft = SoftHsm.open(args.keystore, MasterKey.resolve(args.master_key_file))
        soft.keystore.records()  # refuse to start on a missing, foreign or tampered keystore
    except HsmError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    server = PayShieldServer(PayShieldEmulation(soft, args.header_length))
    host, port = args.listen
    try:
        return asyncio.run(_run(server, host, port))
    except OSError as exc:
        print(f"{PROG}: --listen {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``branchline-sim``: every device emulated on its real wire protocol, faults on demand."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from branchline.common.logs import setup_logging
from branchline.sim.simulator import Simulator, device_factories


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchline-sim", description=__doc__)
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path("var/sim"),
        help="where dev/<device> links, outputs and control.sock go (default %(default)s)",
    )
    parser.add_argument(
        "--devices", default="all", help="comma-separated device names, or 'all' (default)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    known = device_factories()
    names = (
        sorted(known)
        if args.devices == "all"
        else [n.strip() for n in args.devices.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in known]
    if unknown:
        print(
            f"branchline-sim: --devices: unknown device {unknown[0]!r}; known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    setup_logging("branchline-sim", args.log_level)
    return asyncio.run(Simulator(args.run_dir.resolve(), names).run())


if __name__ == "__main__":
    sys.exit(main())

"""``branchline-agent --config agent.toml``: the terminal daemon."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from branchline.agent.config import load_config
from branchline.agent.daemon import Agent, AlreadyRunning
from branchline.common.config_reader import ConfigError
from branchline.common.logs import setup_logging

EXIT_CONFIG = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchline-agent", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="agent TOML file")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"branchline-agent: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        print(f"{args.config}: ok ({len(config.devices)} devices)")
        return 0
    setup_logging("branchline-agent", args.log_level)
    try:
        return asyncio.run(Agent(config).run())
    except AlreadyRunning as exc:
        print(f"branchline-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())

"""``python -m branchline.sim.act DEVICE ACTION [key=value ...]``: a person's hands in the
simulator — a customer loading a carrier, the back office sending one, a card inserted.

Examples::

    python -m branchline.sim.act tube_station backoffice_remove
    python -m branchline.sim.act tube_station backoffice_send carrier_id=7
    python -m branchline.sim.act card_reader insert card=visa
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc

from branchline.v1 import sim_control_pb2, sim_control_pb2_grpc


def act(run_dir: Path, device: str, action: str, params: dict[str, str]) -> dict[str, str]:
    with grpc.insecure_channel(f"unix:{run_dir / 'control.sock'}") as channel:
        reply = sim_control_pb2_grpc.SimControlStub(channel).Act(
            sim_control_pb2.ActRequest(device=device, action=action, params=params), timeout=10
        )
    return dict(reply.result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchline-sim-act", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=Path("var/sim"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("device")
    parser.add_argument("action")
    parser.add_argument("params", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    params: dict[str, str] = {}
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"branchline-sim-act: {item!r} is not key=value", file=sys.stderr)
            return 2
        params[key] = value
    try:
        result = act(args.run_dir, args.device, args.action, params)
    except grpc.RpcError as exc:
        print(f"branchline-sim-act: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for key, value in sorted(result.items()):
            print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

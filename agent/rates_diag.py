"""``branchline-diag rates [--json]``: the FX rate table the terminal shows, and how fresh it is."""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc

from branchline.v1 import customer_info_pb2 as pb
from branchline.v1 import customer_info_pb2_grpc as pb_grpc


def add_parser(sub: Any) -> None:
    rates = sub.add_parser("rates", help="the FX rates this terminal shows (stale or confirmed)")
    rates.add_argument("--json", action="store_true")


def rates_dict(view: pb.RatesView) -> dict[str, Any]:
    if not view.known:
        return {"known": False, "stale": True, "version": None, "rates": []}
    table = view.table
    return {
        "known": True,
        "stale": view.stale,
        "version": table.version,
        "as_of": table.as_of.ToDatetime().isoformat() + "Z",
        "received_at": view.received_at.ToDatetime().isoformat() + "Z",
        "base_currency": table.base_currency,
        "source": table.source,
        "rates": [{"currency": r.currency, "bid": r.bid, "ask": r.ask} for r in table.rates],
    }


def run_rates(channel: grpc.Channel, args: argparse.Namespace, timeout: float) -> int:
    view = pb_grpc.CustomerInfoStub(channel).GetRates(pb.GetRatesRequest(), timeout=timeout)
    data = rates_dict(view)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data["known"]:
        print("no FX rates received from the server yet")
        return 0
    freshness = "STALE (not confirmed by the server)" if data["stale"] else "current"
    print(f"rates v{data['version']} as of {data['as_of']}, {freshness}")
    print(f"{data['base_currency']} per unit (per gram for metals), source {data['source']}")
    for rate in data["rates"]:
        print(f"  {rate['currency']}  bid {rate['bid']:>14}  ask {rate['ask']:>14}")
    return 0

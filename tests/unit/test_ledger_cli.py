"""``branchline-server ledger ...`` (the lead wires it into server/main.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from branchline.server.ledger import cli


def run(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=f"sqlite:///{tmp_path / 'server.db'}")
    parser.add_argument("--pan-token-key", type=Path, default=tmp_path / "pan.key")
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    return cli.run(parser.parse_args(["ledger", *argv]))


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "open-account", "--customer", "c1", "--currency", "CNY", "--id", "A1") == 0
    assert run(tmp_path, "rates", "--set", "USD=7.10:7.20", "--source", "test") == 0
    capsys.readouterr()
    args = ["deposit", "--account", "A1", "--currency", "USD", "--amount", "100"]
    args += ["--branch", "north", "--ref", "d1", "--rate-version", "1", "--json"]
    assert run(tmp_path, *args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["balance"] == "710.00" and not first["replayed"]
    assert run(tmp_path, *args) == 0
    assert json.loads(capsys.readouterr().out)["replayed"]
    assert run(tmp_path, "balances", "--customer", "c1", "--json") == 0
    [account] = json.loads(capsys.readouterr().out)["accounts"]
    assert account["available"] == "710.00"
    assert run(tmp_path, "statement", "--account", "A1") == 0
    assert "710.00" in capsys.readouterr().out
    assert run(tmp_path, "audit") == 0
    assert "ledger consistent" in capsys.readouterr().out


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "open-account", "--customer", "c1", "--currency", "XYZ") == 2
    assert "account.currency: 'XYZ' is not a currency" in capsys.readouterr().err
    assert run(tmp_path, "rates", "--set", "USD=7.1") == 2
    assert "not CODE=BID:ASK" in capsys.readouterr().err
    args = ["deposit", "--account", "nope", "--currency", "CNY", "--amount", "-1"]
    assert run(tmp_path, *args, "--branch", "b", "--ref", "r") == 2
    assert "deposit.amount: -1 is negative" in capsys.readouterr().err
    assert run(tmp_path, "link", "--pan", "12ab", "--account", "x") == 2
    assert "pan: digits only" in capsys.readouterr().err

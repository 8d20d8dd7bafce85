"""Issue 6's customer information through real processes (server, simulator, agent).

FX rates set with the ledger CLI (another process) reach the agent's GetRates within
seconds; a customer signed in with card + PIN gets a statement of their own account, is
refused another customer's, and prints the statement: the simulator's PNG carries its QR code.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
import zxingcpp
from PIL import Image

from branchline.v1 import customer_info_pb2 as info_pb
from branchline.v1 import customer_info_pb2_grpc as info_grpc
from tests.integration.launch import Background, server_and_agent
from tests.integration.pin_support import (
    KSN0,
    PAN,
    PIN,
    customer_session,
    devices_online,
    hsm_cli,
    server_cli,
    soft_hsm,
)
from tests.integration.stack import Stack, wait_for


def customer_info(stack: Stack) -> info_grpc.CustomerInfoStub:
    return info_grpc.CustomerInfoStub(grpc.insecure_channel(f"unix:{stack.agent_socket}"))


def start(stack: Stack) -> None:
    stack.devices = ("card_reader", "pin_pad", "printer")
    stack.required_devices = ("card_reader", "pin_pad", "printer")
    # The simulator needs nothing of the bank's: it starts while the bank is set up.
    sim = Background(stack.start_sim)
    desk, soft = soft_hsm(stack)
    server_cli(
        stack, "cards", "enroll", "--pan", "-", "--customer", "C-1", "--name", "Test Customer",
        "--pvk", "PVK", *desk.cli_args(), "--hsm", soft, stdin=PAN + "\n",
    )  # fmt: skip
    ledger = ("ledger", "open-account", "--customer")
    server_cli(stack, *ledger, "C-1", "--currency", "CNY", "--id", "ACC-1")
    server_cli(stack, "ledger", "link", "--pan", "-", "--account", "ACC-1", stdin=PAN + "\n")
    for ref, amount in (("dep-1", "250.00"), ("dep-2", "19.90")):
        server_cli(
            stack, "ledger", "deposit", "--account", "ACC-1", "--currency", "CNY",
            "--amount", amount, "--branch", stack.branch, "--ref", ref,
        )  # fmt: skip
    server_cli(stack, *ledger, "C-2", "--currency", "CNY", "--id", "ACC-2")
    server_cli(stack, "ledger", "rates", "--set", "USD=7.10:7.20", "XAU=540.50:548.00")
    # No load balancer in front: the server stops without a drain period.
    server_and_agent(
        stack,
        ["--hsm", soft, "--pan-token-key", str(stack.root / "pan-token.key"),
         "--rate-poll-seconds", "0.5", "--shutdown-drain", "0"],
        after=sim,
    )  # fmt: skip
    wait_for(lambda: devices_online(stack) >= 3, 20, "card reader, PIN pad and printer online")
    initial = json.loads(
        hsm_cli(stack, "--json", "derive-initial-key", "--bdk", "BDK", "--ksn", KSN0).stdout
    )
    completion, problem, _ = stack.device_command(
        "pin_pad", "load_key", algorithm="tdes", key_hex=initial["initial_key"], ksn_hex=KSN0
    )
    assert completion == "success", problem


@pytest.mark.timeout(240)
def test_rates_reach_the_terminal_and_a_customer_prints_a_statement(stack: Stack) -> None:
    start(stack)
    info = customer_info(stack)
    # The table set before the agent connected arrives on registration.
    first = wait_for(
        lambda: (v := info.GetRates(info_pb.GetRatesRequest(), timeout=5)).known and v, 10, "rates"
    )
    assert not first.stale and first.table.base_currency == "CNY"
    assert {r.currency: (r.bid, r.ask) for r in first.table.rates} == {
        "USD": ("7.1", "7.2"),
        "XAU": ("540.5", "548"),
    }
    # A new version set by another process is pushed within a few seconds.
    server_cli(stack, "ledger", "rates", "--set", "USD=7.15:7.25")
    second = wait_for(
        lambda: (
            (v := info.GetRates(info_pb.GetRatesRequest(), timeout=5)).table.version
            > first.table.version
            and v
        ),
        5,
        "the new rate version at the agent",
    )
    assert {r.currency: r.bid for r in second.table.rates} == {"USD": "7.15", "XAU": "540.5"}
    shown = json.loads(stack.diag("rates", "--json").stdout)
    assert shown["version"] == second.table.version and shown["stale"] is False
    human = stack.diag("rates").stdout
    assert f"rates v{second.table.version}" in human and "current" in human and "7.15" in human

    signed_in = customer_session(stack, PIN)
    assert signed_in.verified, signed_in
    query = info_pb.StatementQuery(session_id=signed_in.session_id, account_id="ACC-1", limit=5)
    statement = info.GetStatement(query, timeout=30)
    assert [line.amount for line in statement.lines] == ["250.00", "19.90"]
    assert statement.account.balance == "269.90" and statement.customer_id == "C-1"
    with pytest.raises(grpc.RpcError) as refused:
        info.GetStatement(
            info_pb.StatementQuery(session_id=signed_in.session_id, account_id="ACC-2"), timeout=30
        )
    error: Any = refused.value
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not_your_account: statement_request.account_id: 'ACC-2'" in error.details()

    printed = info.PrintStatement(query, timeout=60)
    assert printed.completion == "success", printed
    last_entry = statement.lines[-1].entry_id
    assert printed.reference == f"BLST:{stack.terminal_id}:ACC-1:{last_entry}"
    pngs = sorted((stack.sim_dir / "printer").glob("receipt-*.png"))
    assert pngs, "the simulator rendered no statement"
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(pngs[-1]))] == [printed.reference]
    journal = json.loads(stack.diag("journal", "show", "--json").stdout)
    entries = journal["entries"] if isinstance(journal, dict) else journal
    printed_entries = [e for e in entries if e["kind"] == "statement_printed"]
    assert [e["fields"]["reference"] for e in printed_entries] == [printed.reference]

    stack.stop_all()
    for proc in stack.procs.values():
        assert PAN not in proc.log(), f"{proc.name}'s log holds the full card number"

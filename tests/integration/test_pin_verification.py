"""Issue 4 end to end, through real processes and each HSM backend.

A PIN typed on the simulated PIN pad -> the agent sends the PIN block and KSN -> the
server's HSM verifies it against the card's Visa PVV; a wrong PIN fails; the card locks
after the configured number of failures. Afterwards every log line, every database row and
every exception text is scanned for the PIN, the full PAN, the PIN blocks and the tracks.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchline.common.paycrypto import encode_format0, encrypt_pin_block_tdes
from branchline.common.paycrypto.tdes_dukpt import derive_working_key, ksn_with_counter
from branchline.sim.card.samples import SAMPLE_CARDS
from tests.integration.launch import Background, server_and_agent
from tests.integration.pin_support import (
    BDK,
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

WRONG_PIN = "555000"
TRY_LIMIT = 3


def start_payshield(stack: Stack) -> str:
    proc = stack._spawn(
        "hsm",
        [
            "branchline.sim.hsm",
            "--listen",
            "127.0.0.1:0",
            "--keystore",
            str(stack.root / "keystore.json"),
            "--master-key-file",
            str(stack.root / "hsm-master.key"),
        ],
    )

    def port() -> int:
        for line in proc.log().splitlines():
            if "listening on" in line:
                return int(line.rsplit(":", 1)[1].strip())
        assert proc.popen.poll() is None, proc.log()
        return 0

    return f"payshield://127.0.0.1:{wait_for(port, 30, 'payShield simulator')}"


@pytest.fixture(params=["soft", "payshield"])
def pin_stack(request: pytest.FixtureRequest, stack: Stack) -> Iterator[Stack]:
    # The simulator needs nothing of the bank's: it starts while the keys are made.
    stack.devices = ("card_reader", "pin_pad")
    stack.required_devices = ("card_reader", "pin_pad")
    sim = Background(stack.start_sim)
    desk, soft_url = soft_hsm(stack)
    pan_key = stack.root / "pan-token.key"
    urls = {"soft": soft_url}
    # The payShield simulator starts while the card is enrolled.
    hsm_up = Background(
        (lambda: urls.update(payshield=start_payshield(stack)))
        if request.param == "payshield"
        else (lambda: None)
    )
    enrolled = server_cli(
        stack, "cards", "enroll", "--pan", "-", "--customer", "C-1", "--name", "Test Customer",
        "--pvk", "PVK", *desk.cli_args(), "--hsm", soft_url, stdin=PAN + "\n",
    )  # fmt: skip
    assert "476173******0010" in enrolled

    hsm_up.join()
    url = urls[request.param]
    # No load balancer in front: the server stops without a drain period.
    server_and_agent(
        stack,
        ["--hsm", url, "--pan-token-key", str(pan_key), "--pin-try-limit", str(TRY_LIMIT),
         "--shutdown-drain", "0"],
        after=sim,
    )  # fmt: skip
    wait_for(lambda: devices_online(stack) >= 2, 20, "card reader and PIN pad online")
    # The technician's view says the same.
    assert stack.diag("status", "--json").stdout.count('"online"') >= 2
    # The key custodian's ceremony: derive the PIN pad's initial key in the HSM, inject it.
    initial = json.loads(
        hsm_cli(stack, "--json", "derive-initial-key", "--bdk", "BDK", "--ksn", KSN0).stdout
    )
    completion, problem, loaded = stack.device_command(
        "pin_pad", "load_key", algorithm="tdes", key_hex=initial["initial_key"], ksn_hex=KSN0
    )
    assert completion == "success", problem
    assert loaded["kcv"].upper() == initial["kcv"].upper()
    yield stack


def expected_pin_blocks(count: int) -> set[str]:
    """Every encrypted PIN block the pad produced: X9.24-1 keys for counters 1..count."""
    blocks = set()
    for counter in range(1, count + 1):
        key = derive_working_key(bytes.fromhex(BDK), ksn_with_counter(bytes.fromhex(KSN0), counter))
        for pin in (PIN, WRONG_PIN):
            block = encrypt_pin_block_tdes(key, encode_format0(pin, PAN)).hex()
            blocks |= {block, block.upper()}
    return blocks


def database_text(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


def test_pin_verified_wrong_pin_counted_card_locks_and_nothing_leaks(pin_stack: Stack) -> None:
    stack = pin_stack
    ok = customer_session(stack, PIN)
    assert (ok.verified, ok.locked, ok.completion) == (True, False, "success"), ok
    assert ok.pan_masked == "476173******0010"
    # A verified PIN opens a customer session: a local handle, never the server's token.
    assert len(ok.session_id) == 32 and ok.customer_id == "C-1"

    attempts = []
    for _ in range(TRY_LIMIT):
        attempts.append(customer_session(stack, WRONG_PIN))
    assert [(a.verified, a.attempts_left, a.locked) for a in attempts] == [
        (False, 2, False),
        (False, 1, False),
        (False, 0, True),
    ]
    assert attempts[0].message == "incorrect PIN; 2 attempt(s) left"
    assert attempts[-1].message == "incorrect PIN; the card is locked"

    # Locked means locked: even the right PIN is refused now, and says no more.
    after = customer_session(stack, PIN)
    assert (after.verified, after.locked) == (False, True)
    assert after.message == "incorrect PIN; the card is locked"

    shown = server_cli(stack, "cards", "show", "--pan", PAN, "--json")
    assert json.loads(shown)["locked"] is True

    stack.stop_all()
    card = SAMPLE_CARDS["visa"]
    secrets = {PAN, PIN, *expected_pin_blocks(8)}
    secrets |= {t for t in (card.track1, card.track2) if t}
    texts: dict[str, str] = {p.name: p.log() for p in stack.procs.values()}
    texts["server.db"] = database_text(stack.root / "server.db")
    journal = stack.state_dir / "journal.db"
    if journal.exists():
        texts["journal.db"] = database_text(journal)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{where} holds a secret ({len(secret)} characters)"
    assert "476173******0010" in texts["server.db"] or "476173******0010" in texts["server.log"]

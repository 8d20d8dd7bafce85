"""``make demo``'s bank: a soft HSM, customer C-1 with a card and accounts, FX rates, and the
cheque sale's data, each set up once per ``var/`` folder through the server's own CLIs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from branchline.sim.enrol_pin_pad import ENROL_KSN, enrolment_block
from branchline.sim.face_scenes import PEOPLE, PHOTO_DIR
from branchline.sim.id_cards import SAMPLE_CARDS

TERMINAL_ID = "T-0001"
BRANCH = "BR-001"
# The demo company's account number, as printed on its cheques.
DEMO_ACCOUNT = "6222020200112233"
CLERK = "BO-1"
# The simulator's "visa" card, enrolled with this PIN for the demo customer C-1.
DEMO_PAN = "4761739001010010"
DEMO_PIN = "1234"
# ANSI X9.24-1's example BDK and initial KSN: the simulated PIN pad's DUKPT keys.
DEMO_BDK = "0123456789ABCDEFFEDCBA9876543210"
DEMO_KSN = "FFFF9876543210E00000"


def run_cli(module: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"demo setup failed: {module} {args[:3]}: {result.stderr or result.stdout}"
        )
    return result.stdout


class Bank:
    """The demo's bank: a soft HSM, one customer with a card and accounts, FX rates."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.db = f"sqlite:///{var / 'server' / 'branchline.db'}"
        self.pan_key = var / "server" / "pan-token.key"
        self.keystore = var / "hsm" / "keystore.json"
        self.master = var / "hsm" / "master.key"

    @property
    def hsm_url(self) -> str:
        return f"soft://{self.keystore}?master_key_file={self.master}"

    def hsm(self, *args: str) -> str:
        return run_cli(
            "branchline.server.hsm_cli",
            "--keystore", str(self.keystore), "--master-key-file", str(self.master), *args,
        )  # fmt: skip

    def server(self, *args: str, stdin: str | None = None) -> str:
        return run_cli(
            "branchline.server.main", "--db", self.db, "--pan-token-key", str(self.pan_key),
            *args, stdin=stdin,
        )  # fmt: skip

    def set_up(self) -> None:
        """Once per var/ folder: keys, the customer, accounts, opening balances, rates."""
        marker = self.var / "demo" / "bank.ready"
        # The electronic teller's knowledge base (idempotent: learned entries stay).
        run_cli("branchline.server.assistant.cli", "--db", self.db, "import")
        if marker.exists():
            return
        (self.var / "hsm").mkdir(parents=True, exist_ok=True)
        (self.var / "server").mkdir(parents=True, exist_ok=True)
        if not self.master.exists():
            run_cli("branchline.server.hsm_cli", "new-master-key", "--out", str(self.master))
        self.hsm("import-key", "BDK", "--type", "bdk", "--algorithm", "tdes", "--hex", DEMO_BDK)
        self.hsm("create-key", "PVK", "--type", "pvk", "--algorithm", "tdes")
        self.hsm("create-key", "ZPK", "--type", "zpk", "--algorithm", "tdes")
        # The customer types the PIN on the desk's (simulated) PIN pad; the HSM derives the PVV.
        desk = enrolment_block(self.pin_pad_key(ENROL_KSN), DEMO_PIN, DEMO_PAN)
        self.server(
            "cards", "enroll", "--pan", "-", "--customer", "C-1", "--name", "Demo Customer",
            "--pvk", "PVK", *desk.cli_args(), "--hsm", self.hsm_url, stdin=DEMO_PAN + "\n",
        )  # fmt: skip
        for kind, currency, account, opening in (
            ("cash", "CNY", "C1-CNY", "5000.00"),
            ("metal", "XAU", "C1-XAU", "20.000"),
        ):
            self.server(
                "ledger", "open-account", "--customer", "C-1", "--kind", kind,
                "--currency", currency, "--id", account,
            )  # fmt: skip
            self.server("ledger", "link", "--pan", "-", "--account", account, stdin=DEMO_PAN + "\n")
            self.server(
                "ledger", "deposit", "--account", account, "--currency", currency,
                "--amount", opening, "--branch", BRANCH, "--ref", f"opening-{account}",
            )  # fmt: skip
        self.server("ledger", "rates", "--set", "USD=7.10:7.20", "XAU=540.50:548.00")
        marker.write_text("set up\n")

    def set_up_cheques(self) -> None:
        """Once per var/ folder: the cheque sale's rules, the demo customer's account as a
        company's basic account, its purchaser (the simulator's valid ID card, with the face
        the simulated face camera presents), and stock in the terminal's cassette."""
        marker = self.var / "demo" / "cheques.ready"
        if marker.exists():
            return
        card = SAMPLE_CARDS["valid"].card
        self.server(
            "cheques", "seed-demo", "--account-id", "C1-CNY", "--number", DEMO_ACCOUNT,
            "--company", "Demo Trading Co", "--branch", BRANCH, "--contact-name", "Li Na",
            "--contact-phone", "010-5555-0101", "--purchaser-id", "P-DEMO",
            "--id-number", card.id_number, "--name", card.name,
            "--face", str(PHOTO_DIR / PEOPLE["obama"][0]), "--terminal", TERMINAL_ID,
            "--stock", "transfer_cheque=10000001-10000250",
            "--stock", "cash_cheque=20000001-20000125",
        )  # fmt: skip
        marker.write_text("set up\n")

    def pin_pad_key(self, ksn: str = DEMO_KSN) -> str:
        """The initial DUKPT key injected into a simulated PIN pad (as a key custodian would)."""
        return str(
            json.loads(self.hsm("--json", "derive-initial-key", "--bdk", "BDK", "--ksn", ksn))[
                "initial_key"
            ]
        )


def cheques_in_background(bank: Bank) -> None:
    """``Bank.set_up_cheques`` in a background thread of the demo: says when it is done."""
    try:
        bank.set_up_cheques()
    except (OSError, subprocess.SubprocessError, SystemExit) as exc:
        print(f"cheque sale data not set up: {exc}", flush=True)
        return
    print("cheques        sale data ready (purchaser: the simulator's valid ID card)", flush=True)

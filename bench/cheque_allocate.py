"""The server's allocation of a 25-leaf book (serials + fee posting, one DB transaction) and
the journaled leaf-at-a-time print run the terminal does after it (agent/cheques/: one
``print_leaf`` per leaf, each checking the feeder OCR), until the last leaf's job completed.

Server side in process on SQLite (the cheques capability's own functions: purchase code,
ID card, face — dlib, not timed — then the timed ``cheque_order``); the printer is
``branchline-sim``'s IPP cheque printer with mechanism time 0. The ceiling, in the same run,
is the bare IPP transfer of the same 25 PDFs (Print-Job back to back, bench/cheque_print.py).
``allocation_to_last_leaf_over_raw`` is the ratio; the allocation alone is reported too.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cheque_print import BOOK, FIRST_SERIAL, _raw_transfer, simulated_printer
from branchline.drivers.base import CancelToken, DriverContext
from branchline.drivers.cheque_printer.book import book_from_params
from branchline.drivers.cheque_printer.driver import IppChequePrinterDriver
from branchline.drivers.cheque_printer.leafcmd import print_leaf
from branchline.drivers.cheque_printer.options import ChequePrinterOptions
from branchline.drivers.id_reader.identity import check_character
from branchline.server.cheques import admin, identify, order
from branchline.server.cheques.core import ChequeCore
from branchline.server.cheques.seed import Company, seed_company, seed_rules
from branchline.server.faces.dlib_backend import DlibFaceMatcher
from branchline.server.faces.settings import FaceSettings
from branchline.server.fleet_registry import register_terminal
from branchline.server.ledger.accounts import open_account
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.cards import add_customer
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import DepositRequest
from branchline.server.storage import open_database
from branchline.sim.face_scenes import make_scene
from branchline.v1 import cheques_pb2 as pb

FACES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "faces"
TERMINAL, BRANCH = "T-BENCH", "B01"
BODY = "11010519610804001"
ID_NUMBER = BODY + check_character(BODY)
COMPANY = Company(
    "ACC-BENCH", BOOK["account"], BOOK["company"], "basic", BRANCH, "Li Na", "010-5555-0101",
    "P-BENCH", "Barack Obama", ID_NUMBER,
)  # fmt: skip


def _bank(db: Path, leaves: int) -> ChequeCore:
    engine = open_database(f"sqlite:///{db}")
    now = datetime.now(UTC)
    register_terminal(engine, TERMINAL, BRANCH, "lobby", "bench", [], "r1", now)
    add_customer(engine, "C-BENCH", COMPANY.company_name, now)
    open_account(engine, "C-BENCH", "cash", "CNY", now, account_id=COMPANY.account_id)
    EmbeddedLedger(engine).post_deposit(
        DepositRequest(
            Reference("bench", "fund"), account_id=COMPANY.account_id, branch=BRANCH,
            currency="CNY", amount="10000.00", now=now,
        )
    )  # fmt: skip
    seed_rules(engine, now)
    transfer = {
        "book_type": "transfer_cheque", "name": "Transfer cheque", "prefix": BOOK["prefix"],
        "leaves_per_book": leaves, "currency": "CNY", "printing_cost_minor": 1000,
        "handling_fee_minor": 500, "period": "month", "period_limit": 10,
    }  # fmt: skip
    admin.put_book_type(engine, transfer, "bench", now)
    seed_company(engine, COMPANY, now)
    matcher = DlibFaceMatcher()
    photo = (FACES / "obama_1.jpg").read_bytes()
    admin.enrol_face(engine, matcher, FaceSettings(), COMPANY.purchaser_id, photo, "bench", now)
    admin.load_stock(engine, TERMINAL, "transfer_cheque", FIRST_SERIAL, FIRST_SERIAL + 99, "b", now)
    return ChequeCore(engine, None, lambda: matcher)


def _identified(core: ChequeCore) -> str:
    """A purchase through purchase code, ID card and live face (not timed)."""
    code, _ = admin.issue_code(core.engine, COMPANY.account_id, "bench", datetime.now(UTC))
    pid = str(uuid.uuid4())
    made = make_scene("live", "obama", 1, "")
    replies = [
        identify.start(core, TERMINAL, pb.ChequeStart(
            request_id=f"{TERMINAL}:1", purchase_id=pid,
            purchase_code=pb.PurchaseCodeMethod(account_number=COMPANY.account_number, purchase_code=code),
        )),
        identify.id_card(core, TERMINAL, pb.ChequeIdCard(
            request_id=f"{TERMINAL}:2", purchase_id=pid,
            id_card=pb.IdCardRead(
                name="Barack Obama", sex_code="1", ethnicity_code="01", birth_date="19610804",
                id_number=ID_NUMBER, issuing_authority="PSB", valid_from="20200101",
                valid_to="20400101", sam_status="ok",
            ),
        )),
        identify.face(core, TERMINAL, pb.ChequeFace(
            request_id=f"{TERMINAL}:3", purchase_id=pid,
            capture=pb.FaceCaptureReport(
                jpeg=made.jpeg, width=made.width, height=made.height, liveness="live",
                liveness_score=0.97, face_count=1, sharpness=max(made.sharpness, 0.5),
                yaw_deg=0.0, pitch_deg=0.0, roll_deg=0.0, driver="face_module",
            ),
        )),
    ]  # fmt: skip
    for reply in replies:
        if reply.kind:
            raise RuntimeError(f"purchase refused: {reply.code} {reply.message}")
    return pid


def _allocated_book(core: ChequeCore, pid: str, uri: str) -> tuple[float, float]:
    """(allocation alone, allocation to the last leaf's job completed), seconds."""
    options = ChequePrinterOptions(uri, None, 30.0, 60.0, 1.0, 0.005, "bench")
    driver = IppChequePrinterDriver(DriverContext("BENCH", "BENCH", "cheque_printer"), options)
    driver.open()
    try:
        printer = driver.book_printer()
        started = time.perf_counter()
        reply = order.order(core, TERMINAL, pb.ChequeOrder(
            request_id=f"{TERMINAL}:4", purchase_id=pid,
            lines=[pb.OrderLine(book_type="transfer_cheque", books=1)],
        ))  # fmt: skip
        allocated = time.perf_counter()
        if reply.kind:
            raise RuntimeError(f"order refused: {reply.code} {reply.message}")
        header, book = reply.purchase.header, reply.purchase.books[0]
        for serial in range(book.first_serial, book.last_serial + 1):
            params: dict[str, Any] = {
                "company": header.company_name, "account": header.account_number,
                "bank_name": header.bank_name, "bank_code": header.bank_code,
                "prefix": book.prefix, "serial": serial, "job_name": f"cheque-{serial}-{pid[:8]}",
            }  # fmt: skip
            print_leaf(printer, params, CancelToken())
        done = time.perf_counter()
    finally:
        driver.close()
    return allocated - started, done - started


def run(leaves: int = 25) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bl-bench-", dir="/tmp") as tmp:
        core = _bank(Path(tmp) / "server.db", leaves)
        pid = _identified(core)
        with simulated_printer(Path(tmp) / "sim") as (uri, act):
            act("load_stock", first=str(FIRST_SERIAL), count=str(leaves))
            book = book_from_params({**BOOK, "first_serial": FIRST_SERIAL, "count": leaves})
            _, raw_s = _raw_transfer(uri, book)
            act("load_stock", first=str(FIRST_SERIAL), count=str(leaves))
            allocation_s, total_s = _allocated_book(core, pid, uri)
        core.engine.dispose()
    return {
        "leaves": float(leaves),
        "allocation_ms": allocation_s * 1000,
        "allocation_to_last_leaf_s": total_s,
        "raw_ipp_transfer_s": raw_s,
        "allocation_to_last_leaf_over_raw": total_s / raw_s,
    }

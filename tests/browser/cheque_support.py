"""The cheque sale's branch for the browser tests: the kiosk branch with the ID reader, the
face camera and the IPP cheque printer simulated, and the bank's cheque data written through
the server's own admin functions (server/cheques/admin.py) into the server's database: the
default rules, company C-1's CNY account as a basic cheque account, its purchaser (the
simulator's "valid" ID card) with a real photograph enrolled, and the cheque printer's stock
registered for the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from sqlalchemy import Engine, create_engine, text

from branchline.server.cheques import admin
from branchline.server.cheques.seed import Company, seed_company, seed_rules
from branchline.server.faces.dlib_backend import DlibFaceMatcher
from branchline.server.faces.settings import FaceSettings
from branchline.sim.id_cards import SAMPLE_CARDS
from tests.integration.stack import Stack, wait_for

CHEQUE_DEVICES = ("id_reader", "face_camera", "cheque_printer")
FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
ACCOUNT = "C1-CNY"
ACCOUNT_NUMBER = "6222020200112233"
PURCHASER = "P-LI"
STOCK = (10000001, 10000100)  # the simulator's cassette at start
COMPANY = Company(
    account_id=ACCOUNT,
    account_number=ACCOUNT_NUMBER,
    company_name="Acme Trading Co",
    account_type="basic",
    branch="BR-001",
    contact_name="Wang Wei",
    contact_phone="010-5555-0101",
    purchaser_id=PURCHASER,
    purchaser_name=SAMPLE_CARDS["valid"].card.name,
    purchaser_id_number=SAMPLE_CARDS["valid"].card.id_number,
)


def server_db(stack: Stack) -> Engine:
    return create_engine(f"sqlite:///{stack.root / 'server.db'}")


def seed_cheques(stack: Stack) -> None:
    engine = server_db(stack)
    now = datetime.now(UTC)
    seed_rules(engine, now)
    seed_company(engine, COMPANY, now)
    photo = (FACES / "obama_2.jpg").read_bytes()
    admin.enrol_face(engine, DlibFaceMatcher(), FaceSettings(), PURCHASER, photo, "test", now)
    admin.load_stock(engine, stack.terminal_id, "transfer_cheque", *STOCK, "test", now)
    engine.dispose()


def issue_code(stack: Stack) -> str:
    engine = server_db(stack)
    code, _ = admin.issue_code(engine, ACCOUNT, "test", datetime.now(UTC))
    engine.dispose()
    return code


def serial_states(stack: Stack, purchase_id: str) -> dict[str, str]:
    """Every leaf row of the purchase: number -> state (the server's record)."""
    engine = server_db(stack)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT prefix, serial, state FROM cheque_leaves WHERE purchase_id = :p"),
            {"p": purchase_id},
        ).all()
    engine.dispose()
    return {f"{r[0]}{int(r[1]):08d}": str(r[2]) for r in rows}


def purchase_row(stack: Stack, purchase_id: str) -> dict[str, Any]:
    engine = server_db(stack)
    with engine.connect() as conn:
        row = (
            conn.execute(
                text("SELECT * FROM cheque_purchases WHERE purchase_id = :p"), {"p": purchase_id}
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def printed_numbers(stack: Stack, since: int) -> list[str]:
    """The cheque numbers the simulator's paper shows, job by job after job ``since``: read
    back from each leaf's Code 39 barcode in the rendered PNG."""
    out = []
    for path in sorted((stack.sim_dir / "cheque_printer").glob("job-*.png")):
        if int(path.stem.split("-")[1]) <= since:
            continue
        found = [r.text for r in zxingcpp.read_barcodes(Image.open(path))]
        out.append(found[0] if found else f"unreadable:{path.name}")
    return out


def last_job(stack: Stack) -> int:
    jobs = sorted((stack.sim_dir / "cheque_printer").glob("job-*.png"))
    return int(jobs[-1].stem.split("-")[1]) if jobs else 0


def take_book_when_presented(stack: Stack, timeout: float = 120) -> None:
    def presented() -> bool:
        return stack.sim_act("cheque_printer", "status").get("presenter") == "presented"

    wait_for(presented, timeout, "the book presented", interval=0.3)
    stack.sim_act("cheque_printer", "take_book")

"""The cheque sale's branch for the browser tests: the kiosk branch with the ID reader, the
face camera and the IPP cheque printer simulated, and the bank's cheque data written through
the server's own admin functions (server/cheques/admin.py) into the server's database: the
default rules, company C-1's CNY account as a basic cheque account, its purchaser (the
simulator's "valid" ID card) with a real photograph enrolled, and the cheque printer's stock
registered for the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, create_engine, text

from branchline.server.cheques import admin
from branchline.server.cheques.seed import Company, seed_company, seed_rules
from branchline.server.faces.dlib_backend import DlibFaceMatcher
from branchline.server.faces.settings import FaceSettings
from branchline.sim.id_cards import SAMPLE_CARDS
from tests.browser.kiosk_support import SCREENSHOTS, Kiosk
from tests.integration.stack import Stack, wait_for

CHEQUE_DEVICES = ("id_reader", "face_camera", "cheque_printer")
FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
ACCOUNT = "C1-CNY"
ACCOUNT_NUMBER = "6222020200112233"
PURCHASER = "P-LI"
FEE = Decimal("15.00")  # transfer cheque: printing 10.00 + handling 5.00 per book
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


def purchase_count(stack: Stack) -> int:
    engine = server_db(stack)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT COUNT(*) FROM cheque_purchases")).scalar()
    engine.dispose()
    return int(found or 0)


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


def at(step: str) -> Any:
    return lambda d: d.get("step") == step and not d.get("finished")


def identify(kiosk: Kiosk, other_face_first: bool = False) -> None:
    """On the purchase screen: the ID card, then the face (optionally someone else's first)."""
    stack = kiosk.stack
    started = kiosk.wait_screen("cheque", until=at("id"), shot="cheque-id")
    # The kiosk camera records the purchase (issue 14) from its first screen.
    assert started["record"] == {
        "txn_ref": started["purchase_id"],
        "kind": "cheque",
        "source": "kiosk",
    }, started
    kiosk.click("read_id")
    kiosk.wait_screen("cheque", until=at("face"), shot="cheque-face")
    if other_face_first:
        stack.sim_act("face_camera", "present", scene="live", person="biden")
        kiosk.click("capture")
        refused = kiosk.wait_screen(
            "cheque", until=lambda d: d.get("code") == "no_match", shot="cheque-no-match"
        )
        assert refused["attempts_left"] == 2
        assert "does not match the registered buyer" in kiosk.text()
    stack.sim_act("face_camera", "present", scene="live", person="obama", index="0")
    kiosk.click("capture")


def order_and_take(kiosk: Kiosk, display: Page | None = None) -> dict[str, Any]:
    stack = kiosk.stack
    shown = kiosk.wait_screen("cheque", until=at("order"), shot="cheque-order")
    offers = {o["book_type"]: o for o in shown["offers"]}
    assert offers["transfer_cheque"]["refused_rule"] == ""
    since = last_job(stack)
    kiosk.page.locator('input[data-book-type="transfer_cheque"]').fill("1")
    kiosk.click("order")
    kiosk.wait_screen(
        "cheque", timeout=60, until=lambda d: d.get("step") in ("printing", "take", "result")
    )
    if display is not None:
        # The order on the counter screen: the book's numbers and the fee, live.
        ordered = kiosk.data()["books"][0] if kiosk.data().get("books") else None
        first_cell = display.locator('[data-role="order"] [data-role="first"]')
        expect(first_cell).to_have_count(1, timeout=15_000)
        if ordered:
            expect(first_cell).to_contain_text(ordered["first"][2:])
        display.screenshot(path=str(SCREENSHOTS / f"{kiosk.test_name}-display.png"))
    take_book_when_presented(stack)
    done = kiosk.wait_screen(
        "cheque", timeout=60, until=lambda d: bool(d.get("finished")), shot="cheque-done"
    )
    assert done["outcome"] == "completed", done
    assert done["record"] is None  # the purchase ended: the recording is closed
    assert done["reference"].startswith("BLCQ:") and done["reference"] in kiosk.text()
    # Each book's numbers on the result screen, as a label and its range (no stray text).
    book_rows = kiosk.page.locator('[data-screen]:visible [data-role="book"]')
    expect(book_rows).to_have_count(len(done["books"]))
    assert all(b["name"] for b in done["books"])  # labelled by the type's name, not its id
    assert "[object" not in kiosk.text()
    book = done["books"][0]
    first, last = int(book["first"][2:]), int(book["last"][2:])
    numbers = [f"10{s:08d}" for s in range(first, last + 1)]
    assert len(numbers) == 25
    # The paper shows the allocated numbers, in order, once each.
    assert printed_numbers(stack, since) == numbers
    states = serial_states(stack, done["purchase_id"])
    assert states == {n: "issued" for n in numbers}
    row = purchase_row(stack, done["purchase_id"])
    assert row["state"] == "completed" and row["fee_entry_id"] and not row["refund_entry_id"]
    kiosk.click("done")
    return done

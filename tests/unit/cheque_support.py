"""A small bank for the cheque-sale tests: a terminal, two companies (basic and general
accounts) with money, the default rules, a purchaser enrolled with a real photograph, stock
loaded in the terminal's cassette, and helpers that speak the wire messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count
from pathlib import Path

from sqlalchemy import Engine

from branchline.server.cheques import admin, identify, order, settle
from branchline.server.cheques.core import ChequeCore
from branchline.server.cheques.seed import Company, id_number, seed_company, seed_rules
from branchline.server.dispatch.schema import branches, teller_skills, tellers
from branchline.server.faces.dlib_backend import DlibFaceMatcher
from branchline.server.faces.settings import FaceSettings
from branchline.server.fleet_registry import register_terminal
from branchline.server.ledger.accounts import open_account
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.cards import add_customer
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.requests import DepositRequest
from branchline.server.ledger.sessions import CustomerSessions
from branchline.sim.face_scenes import make_scene
from branchline.v1 import cheques_pb2 as pb

FACES = Path(__file__).resolve().parents[1] / "fixtures" / "faces"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TERMINAL = "T-CQ1"
BRANCH = "B01"
OBAMA_ID = id_number("110105", "19610804", "001")
BIDEN_ID = id_number("110105", "19421120", "003")
SESSIONS = CustomerSessions(b"k" * 32)


@cache
def matcher() -> DlibFaceMatcher:
    return DlibFaceMatcher()


BASIC = Company(
    "ACC-BASIC",
    "6222020200112233",
    "Acme Trading Co",
    "basic",
    BRANCH,
    "Li Na",
    "010-5555-0101",
    "P-OBAMA",
    "Barack Obama",
    OBAMA_ID,
)
GENERAL = Company(
    "ACC-GEN",
    "6222020200445566",
    "Beta Works Ltd",
    "general",
    BRANCH,
    "Wang Wei",
    "010-5555-0202",
    "P-OBAMA-G",
    "Barack Obama",
    OBAMA_ID,
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class World:
    engine: Engine
    core: ChequeCore
    clock: Clock
    seq: count = field(default_factory=lambda: count(1))

    def rid(self) -> str:
        return f"{TERMINAL}:{next(self.seq)}"

    def session(self, customer_id: str = "C-ACME") -> str:
        return SESSIONS.issue(TERMINAL, "card-token", customer_id, self.clock())

    def start_card(
        self,
        account_id: str = BASIC.account_id,
        pid: str | None = None,
        customer_id: str = "C-ACME",
        request_id: str | None = None,
    ) -> pb.ChequeReply:
        msg = pb.ChequeStart(
            request_id=request_id or self.rid(),
            purchase_id=pid or new_pid(),
            card_pin=pb.CardPinMethod(
                session_token=self.session(customer_id), account_id=account_id
            ),
        )
        return identify.start(self.core, TERMINAL, msg)

    def start_code(self, number: str, code: str, pid: str | None = None) -> pb.ChequeReply:
        msg = pb.ChequeStart(
            request_id=self.rid(),
            purchase_id=pid or new_pid(),
            purchase_code=pb.PurchaseCodeMethod(account_number=number, purchase_code=code),
        )
        return identify.start(self.core, TERMINAL, msg)

    def id_card(self, pid: str, **changes: str) -> pb.ChequeReply:
        card = good_card()
        for key, value in changes.items():
            setattr(card, key, value)
        return identify.id_card(
            self.core,
            TERMINAL,
            pb.ChequeIdCard(request_id=self.rid(), purchase_id=pid, id_card=card),
        )

    def face(
        self,
        pid: str,
        scene: str = "live",
        person: str = "obama",
        index: int = 1,
        request_id: str | None = None,
        **changes: object,
    ) -> pb.ChequeReply:
        msg = pb.ChequeFace(
            request_id=request_id or self.rid(),
            purchase_id=pid,
            capture=capture(scene, person, index, **changes),
        )
        return identify.face(self.core, TERMINAL, msg)

    def order(self, pid: str, request_id: str | None = None, **lines: int) -> pb.ChequeReply:
        msg = pb.ChequeOrder(
            request_id=request_id or self.rid(),
            purchase_id=pid,
            lines=[pb.OrderLine(book_type=k, books=v) for k, v in lines.items()],
        )
        return order.order(self.core, TERMINAL, msg)

    def leaves(
        self, pid: str, reports: list[pb.LeafReport], request_id: str | None = None
    ) -> pb.ChequeReply:
        return settle.leaves(
            self.core,
            TERMINAL,
            pb.ChequeLeaves(request_id=request_id or self.rid(), purchase_id=pid, leaves=reports),
        )

    def finish(
        self,
        pid: str,
        kind: pb.FinishKind,
        reason: str = "",
        request_id: str | None = None,
    ) -> pb.ChequeReply:
        return settle.finish(
            self.core,
            TERMINAL,
            pb.ChequeFinish(
                request_id=request_id or self.rid(), purchase_id=pid, kind=kind, reason=reason
            ),
        )

    def identified(self, account_id: str = BASIC.account_id) -> str:
        """A purchase through method, ID card and face: its id."""
        pid = new_pid()
        for reply in (self.start_card(account_id, pid), self.id_card(pid), self.face(pid)):
            assert not reply.code, reply
        return pid


def new_pid() -> str:
    return str(uuid.uuid4())


def good_card() -> pb.IdCardRead:
    return pb.IdCardRead(
        name="Barack Obama",
        sex_code="1",
        ethnicity_code="01",
        birth_date="19610804",
        id_number=OBAMA_ID,
        issuing_authority="Beijing PSB",
        valid_from="20200101",
        valid_to="20400101",
        sam_status="ok",
        photo_format="jpeg",
        photo=(FACES / "obama_1.jpg").read_bytes(),
    )


def capture(
    scene: str = "live", person: str = "obama", index: int = 1, **changes: object
) -> pb.FaceCaptureReport:
    other = "biden" if scene == "two_faces" else ""
    made = make_scene(scene, person, index, other)
    report = pb.FaceCaptureReport(
        jpeg=made.jpeg,
        width=made.width,
        height=made.height,
        liveness="live" if made.live else "not_live",
        liveness_score=0.97 if made.live else 0.05,
        face_count=made.face_count,
        sharpness=max(made.sharpness, 0.5),
        yaw_deg=0.0,
        pitch_deg=0.0,
        roll_deg=0.0,
        driver="serial_face_camera",
    )
    for key, value in changes.items():
        if value is None:
            report.ClearField(key)
        else:
            setattr(report, key, value)
    return report


def populate(engine: Engine, balance: str = "1000.00") -> None:
    register_terminal(engine, TERMINAL, BRANCH, "lobby", "test", [], "r1", T0)
    ledger = EmbeddedLedger(engine)
    for customer, company in (("C-ACME", BASIC), ("C-BETA", GENERAL)):
        add_customer(engine, customer, company.company_name, T0)
        open_account(engine, customer, "cash", "CNY", T0, account_id=company.account_id)
        ledger.post_deposit(
            DepositRequest(
                Reference("seed", f"fund-{customer}"),
                account_id=company.account_id,
                branch=BRANCH,
                currency="CNY",
                amount=balance,
                now=T0,
            )
        )
    seed_rules(engine, T0)
    for company in (BASIC, GENERAL):
        seed_company(engine, company, T0)
        admin.enrol_face(
            engine,
            matcher(),
            FaceSettings(),
            company.purchaser_id,
            (FACES / "obama_1.jpg").read_bytes(),
            "staff:S1",
            T0,
        )
    admin.load_stock(engine, TERMINAL, "transfer_cheque", 10000001, 10000100, "staff:S1", T0)
    admin.load_stock(engine, TERMINAL, "cash_cheque", 20000001, 20000050, "staff:S1", T0)


# The desk's staff: a back-office teller of the branch, a teller without the skill, and a
# back-office teller of another branch.
DESK_STAFF: tuple[tuple[str, str, list[str]], ...] = (
    ("BO-1", BRANCH, ["back_office"]),
    ("T-9", BRANCH, []),
    ("BO-2", "B02", ["back_office"]),
)


def add_desk_staff(engine: Engine) -> None:
    with engine.begin() as conn:
        for branch in (BRANCH, "B02"):
            conn.execute(branches.insert().values(branch_id=branch, name=branch, created_at=T0))
        for teller, branch, skills in DESK_STAFF:
            conn.execute(
                tellers.insert().values(
                    teller_id=teller,
                    name=teller,
                    branch_id=branch,
                    on_duty=False,
                    away=False,
                    load=0,
                    idle_since=T0,
                    handled=0,
                    updated_at=T0,
                )
            )
            for skill in skills:
                conn.execute(teller_skills.insert().values(teller_id=teller, skill=skill))


def make_world(engine: Engine, balance: str = "1000.00") -> World:
    populate(engine, balance)
    clock = Clock()
    core = ChequeCore(engine, SESSIONS, matcher, clock=clock)
    return World(engine, core, clock)

"""A small world for the cheque purchase engine's unit tests: the real journal store and the
real outbox sender, over a fake uplink that answers like the server's contract
(docs/flows/cheques.md, the terminal-visible part), and in-memory devices."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from branchline.agent.cheques.engine import ChequeEngine
from branchline.agent.config import TransactionSettings
from branchline.agent.journal.store import Store
from branchline.agent.service_state import ServiceState
from branchline.agent.tube.sender import OutboxSender
from branchline.drivers.base import Completion, DeviceError
from branchline.v1 import cheques_pb2 as pb
from branchline.v1 import terminal_link_pb2 as link_pb2

S = pb.ChequeState
LEAF = pb.LeafOutcome


@dataclass
class FakeServer:
    """The server's side as the terminal sees it: one purchase record, answers stored per
    request_id (a repeat gets the first answer)."""

    leaves_per_book: int = 3
    first_serial: int = 10000001
    face_failures: int = 0  # refuse this many faces (the third locks)
    refuse_start: str = ""
    account_number: str = "6222020200112233"  # printed on every leaf (the plan's header)
    answers: dict[str, bytes] = field(default_factory=dict)
    applied: list[tuple[str, Any]] = field(default_factory=list)
    purchase: pb.ChequePurchase = field(default_factory=pb.ChequePurchase)
    leaf_state: dict[str, str] = field(default_factory=dict)
    fee_posted: int = 0
    refunds: int = 0
    attempts: int = 0

    def handle(self, kind: str, body: Any) -> pb.ChequeReply:
        key = body.request_id
        if key in self.answers:
            return pb.ChequeReply.FromString(self.answers[key])
        reply = getattr(self, kind)(body)
        reply.request_id = key
        self.applied.append((kind, body))
        if not reply.kind:
            reply.purchase.CopyFrom(self.purchase)
        self.answers[key] = reply.SerializeToString()
        return reply

    def _refuse(self, kind: str, code: str, with_purchase: bool = False) -> pb.ChequeReply:
        reply = pb.ChequeReply(kind=kind, code=code, message=f"refused: {code}")
        if with_purchase:
            reply.purchase.CopyFrom(self.purchase)
        return reply

    def cheque_start(self, body: pb.ChequeStart) -> pb.ChequeReply:
        if self.refuse_start:
            return self._refuse("permission_denied", self.refuse_start)
        p = self.purchase
        p.purchase_id, p.state = body.purchase_id, S.CHEQUE_STATE_STARTED
        p.header.CopyFrom(
            pb.PrintHeader(
                company_name="Acme Trading",
                account_number=self.account_number,
                bank_name="Branchline Bank",
                bank_code="105100000017",
            )
        )
        p.currency = "CNY"
        p.offers.add(book_type="transfer_cheque", name="Transfer cheque", fee_per_book="12.50")
        p.offers.add(
            book_type="cash_cheque", name="Cash cheque", refused_rule="instrument_not_allowed"
        )
        p.face_attempts_left = 3
        return pb.ChequeReply()

    def cheque_id_card(self, body: pb.ChequeIdCard) -> pb.ChequeReply:
        if body.id_card.sam_status != "ok":
            return self._refuse("failed_precondition", "reader_sam_fault")
        self.purchase.state = S.CHEQUE_STATE_ID_CHECKED
        return pb.ChequeReply()

    def cheque_face(self, body: pb.ChequeFace) -> pb.ChequeReply:
        if self.attempts < self.face_failures:
            self.attempts += 1
            self.purchase.face_attempts_left = 3 - self.attempts
            if self.attempts >= 3:
                self.purchase.state = S.CHEQUE_STATE_LOCKED
                return self._refuse("permission_denied", "purchaser_locked", True)
            return self._refuse("permission_denied", "no_match", True)
        self.purchase.state = S.CHEQUE_STATE_IDENTIFIED
        return pb.ChequeReply()

    def cheque_order(self, body: pb.ChequeOrder) -> pb.ChequeReply:
        if self.purchase.state != S.CHEQUE_STATE_IDENTIFIED:
            return self._refuse("failed_precondition", "wrong_state")
        serial = self.first_serial
        for line in body.lines:
            if line.book_type != "transfer_cheque":
                return self._refuse("permission_denied", "instrument_not_allowed")
            for _ in range(line.books):
                book = self.purchase.books.add(
                    book_type=line.book_type,
                    prefix="10",
                    first_serial=serial,
                    last_serial=serial + self.leaves_per_book - 1,
                    fee="12.50",
                )
                for s in range(serial, serial + self.leaves_per_book):
                    book.leaves.add(number=f"10{s:08d}", serial=s)
                    self.leaf_state[f"10{s:08d}"] = "ALLOCATED"
                serial += self.leaves_per_book
        self.fee_posted += 1
        self.purchase.fee_total = "12.50 CNY"
        self.purchase.state = S.CHEQUE_STATE_ORDERED
        return pb.ChequeReply()

    def cheque_leaves(self, body: pb.ChequeLeaves) -> pb.ChequeReply:
        for leaf in body.leaves:
            now = self.leaf_state.get(leaf.number)
            outcome = LEAF.Name(leaf.outcome).removeprefix("LEAF_OUTCOME_")
            final = {"VOIDED", "RETURNED", "ISSUED"}
            target = "ISSUED" if outcome == "TAKEN" else outcome
            if now in final and now != target:
                return self._refuse("failed_precondition", "leaf_conflict")
            self.leaf_state[leaf.number] = target
        self.purchase.state = S.CHEQUE_STATE_PRINTING
        return pb.ChequeReply()

    def cheque_finish(self, body: pb.ChequeFinish) -> pb.ChequeReply:
        kind = body.kind
        for number, state in self.leaf_state.items():
            if kind == pb.FINISH_KIND_TAKEN and state == "PRINTED":
                self.leaf_state[number] = "ISSUED"
            elif kind == pb.FINISH_KIND_CANCEL and state == "ALLOCATED":
                self.leaf_state[number] = "RETURNED"
            elif kind == pb.FINISH_KIND_FAULT and state in ("ALLOCATED", "PRINTED"):
                self.leaf_state[number] = "VOIDED"
        if kind != pb.FINISH_KIND_TAKEN and self.fee_posted:
            self.refunds += 1
            self.purchase.refund_entry_id = 77
            self.purchase.fee_refunded = "12.50 CNY"
        self.purchase.state = {
            pb.FINISH_KIND_TAKEN: S.CHEQUE_STATE_COMPLETED,
            pb.FINISH_KIND_CANCEL: S.CHEQUE_STATE_CANCELED,
            pb.FINISH_KIND_FAULT: S.CHEQUE_STATE_FAILED,
        }[kind]
        self.purchase.reason = body.reason
        return pb.ChequeReply()


class FakeUplink:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.connected = True
        self.last_error = ""

    def on_push(self, body: str, handler: Any) -> None:
        pass

    def on_connected(self, handler: Any) -> None:
        pass

    async def request(self, timeout: float = 15.0, **body: Any) -> link_pb2.ServerMessage:
        ((kind, message),) = body.items()
        if kind == "cheque_query":
            return link_pb2.ServerMessage(
                cheque_reply=pb.ChequeReply(purchases=[self.server.purchase])
            )
        return link_pb2.ServerMessage(cheque_reply=self.server.handle(kind, message))


@dataclass
class FakePrinter:
    """The cheque printer's leaf commands, in memory, with the faults the engine handles."""

    cassette: list[int] = field(default_factory=lambda: list(range(10000001, 10000101)))
    jobs: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (serial, state)
    printed: list[str] = field(default_factory=list)
    unpresented: list[str] = field(default_factory=list)
    presenter: str = "empty"
    take: bool = True  # the customer takes a presented book
    jam_after: int | None = None
    wrong_stock: bool = False
    retained: list[str] = field(default_factory=list)

    def print_leaf(self, params: dict[str, Any]) -> dict[str, Any]:
        number = f"{params['prefix']}{params['serial']:08d}"
        name = params["job_name"]
        if name in self.jobs:
            return {"number": number, "job_id": len(self.jobs), "resumed": True}
        ocr = self.cassette[0] + (50_000_000 if self.wrong_stock else 0)
        if ocr != params["serial"]:
            raise DeviceError(Completion.HARDWARE_ERROR, "ocr_mismatch", f"OCR read {ocr:08d}")
        if self.jam_after is not None and self.jam_after <= 0:
            self.cassette.pop(0)
            raise DeviceError(Completion.HARDWARE_ERROR, "media_jam", "paper jam")
        self.cassette.pop(0)
        self.jobs[name] = (params["serial"], "completed")
        self.printed.append(number)
        self.unpresented.append(number)
        if self.jam_after is not None:
            self.jam_after -= 1
        return {"number": number, "job_id": len(self.jobs), "resumed": False}

    def present_book(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.unpresented:
            return {"book": self.presenter, "resumed": True}
        book, self.unpresented = self.unpresented, []
        if self.take:
            self.presenter = "taken"
            return {"book": "taken", "resumed": False}
        self.retained += book
        self.presenter = "retracted"
        return {"book": "retracted", "resumed": False}

    def retract_partial(self, params: dict[str, Any]) -> dict[str, Any]:
        self.retained += self.unpresented
        self.unpresented = []
        return {"retracted": True, "detail": "retracted"}


@dataclass
class FakeOwner:
    handler: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def submit(
        self, command: str, params: dict[str, Any], timeout: float | None = None
    ) -> Any:
        self.calls.append((command, dict(params)))
        await asyncio.sleep(0)
        return self.handler(command, params)


ID_CARD = {
    "name": "张三",
    "sex_code": "1",
    "ethnicity_code": "01",
    "birth_date": "19800101",
    "id_number": "11010519800101001X",
    "id_number_masked": "110105********001X",
    "issuing_authority": "北京市公安局",
    "valid_from": "20200101",
    "valid_to": "20400101",
    "photo_b64": base64.b64encode(b"WLT-PHOTO").decode(),
    "problems": [],
    "valid": True,
}
FACE = {
    "liveness": "live",
    "liveness_score": 0.96,
    "face_count": 1,
    "sharpness": 0.8,
    "yaw_deg": 1.0,
    "pitch_deg": 0.5,
    "roll_deg": 0.0,
    "width": 640,
    "height": 480,
    "image_sha256": "ab" * 32,
    "jpeg_b64": base64.b64encode(b"\xff\xd8jpeg\xff\xd9").decode(),
}


@dataclass
class World:
    store: Store
    server: FakeServer
    printer: FakePrinter
    agent: Any
    engine: ChequeEngine
    sender_task: asyncio.Task[None]
    owners: dict[str, FakeOwner]


def make_world(
    state_dir: Path,
    server: FakeServer | None = None,
    printer: FakePrinter | None = None,
    settings: TransactionSettings | None = None,
    *,
    uplink: Any = None,
    terminal_id: str = "K-1",
) -> World:
    """The engine over ``uplink`` (default: a FakeUplink answering as ``server`` does)."""
    server = server or FakeServer()
    printer = printer or FakePrinter()
    store = Store(state_dir, terminal_id)
    sender = OutboxSender(store.outbox, uplink or FakeUplink(server), retry_seconds=0.05)  # type: ignore[arg-type]

    def id_reader(command: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"sam": "ok"} if command == "sam_status" else dict(ID_CARD)

    owners = {
        "id_reader": FakeOwner(id_reader),
        "face_camera": FakeOwner(lambda command, params: dict(FACE)),
        "cheque_printer": FakeOwner(lambda command, params: getattr(printer, command)(params)),
    }
    agent = SimpleNamespace(
        store=store,
        tube=SimpleNamespace(sender=sender),
        uplink=sender._uplink,
        owners=owners,
        service=SimpleNamespace(state=ServiceState.IN_SERVICE),
        config=SimpleNamespace(
            terminal=SimpleNamespace(terminal_id=terminal_id, branch="BR-1"),
            devices=[SimpleNamespace(name="face_camera", driver_name="face_module")],
        ),
    )
    engine = ChequeEngine(
        agent,  # type: ignore[arg-type]
        settings or TransactionSettings(customer_timeout=5.0, take_timeout=2.0, poll_seconds=0.05),
    )
    engine.install()
    task = asyncio.get_running_loop().create_task(sender.run())
    return World(store, server, printer, agent, engine, task, owners)

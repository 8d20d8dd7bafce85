"""Receipts carry their transaction's reference as a QR code, and the reference finds the
transaction's ledger entries (CLI and the operators' Receipts service); bad references are
refused naming what is wrong."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import zxingcpp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import Engine

from branchline.agent.journal.store import Store
from branchline.agent.receipts import BadReceipt, ReceiptData, print_receipt, receipt_job
from branchline.common.txref import BadReference, parse_reference
from branchline.drivers.base import Completion, DeviceError
from branchline.drivers.printer.driver import job_from_params
from branchline.server.auth import PRINCIPAL_METADATA_KEY, Authorizer
from branchline.server.ledger.adapter import EmbeddedLedger
from branchline.server.ledger.lookup import lookup_transaction
from branchline.server.ledger.postings import Reference
from branchline.server.ledger.receipts_service import ReceiptsServicer
from branchline.server.ledger.requests import DepositRequest
from branchline.server.main import main as server_main
from branchline.server.teller.main import main as teller_main
from branchline.sim.printer import parse, render_receipt
from branchline.sim.printer.commands import Text
from branchline.v1 import customer_info_pb2 as pb
from branchline.v1 import customer_info_pb2_grpc as pb_grpc
from tests.unit.ledger_support import BRANCH, T0, open_account


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations of a refused call's status details."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a Call
    assert status is not None, "the status carries no details"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.reason) for v in bad.field_violations)
    return found


RECEIPT = ReceiptData(
    reference="BLTX:T-0001:tx-20260302-0007",
    title="CASH DEPOSIT",
    terminal_id="T-0001",
    branch="BR-001",
    when=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    pan_masked="476173******0010",
    lines=(("Amount", "1000.00 CNY"), ("Account", "A-1")),
    outcome="completed",
)


def test_the_printed_receipt_s_qr_code_scans_back_to_the_reference() -> None:
    image = render_receipt(parse(receipt_job(RECEIPT)))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [RECEIPT.reference]
    # The job is what the printer driver's print_job command takes.
    assert job_from_params({"data_hex": receipt_job(RECEIPT).hex()}) == receipt_job(RECEIPT)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"reference": "TX:T-0001:7"}, "receipt.reference: must start with 'BLTX:'"),
        ({"reference": "BLTX:T-0002:7"}, "receipt.reference: names terminal 'T-0002'"),
        ({"outcome": "lost"}, "receipt.outcome: 'lost' is not one of"),
        ({"pan_masked": "4761739001010010"}, "receipt.pan_masked: .* full card number"),
        ({"lines": (("Card", "4761739001010010"),)}, r"receipt.lines\[0\]\[1\]: .* full card"),
        ({"when": datetime(2026, 3, 2, 9, 30)}, "receipt.when: a timezone-aware"),
        ({"title": ""}, "receipt.title: must not be empty"),
    ],
)
def test_bad_receipts_are_refused_naming_the_field(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadReceipt, match=problem):
        receipt_job(replace(RECEIPT, **change))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must not be empty"),
        ("BLTY:T-1:7", "must start with 'BLTX:'"),
        ("BLTX:T-1", r"expected BLTX:<terminal_id>:<txn_id>"),
        ("BLTX::7", "the terminal id is empty"),
        ("BLTX:T-1:", "the transaction id is empty"),
        ("BLTX:T-1:7:step", "the transaction id '7:step' may hold only"),
        ("BLTX:T 1:7", "the terminal id 'T 1' may hold only"),
        ("BLTX:T-1:" + "7" * 200, "longer than 128"),
    ],
)
def test_bad_references_are_refused_saying_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(BadReference, match=f"^reference: .*{problem}"):
        parse_reference(text)
    assert str(parse_reference(" BLTX:T-1:tx_7 ")) == "BLTX:T-1:tx_7"


def test_print_job_parameters_are_checked() -> None:
    for params, problem in (
        ({}, "data_hex: the job as hex is required"),
        ({"data_hex": "zz"}, "data_hex: not hexadecimal"),
        ({"data_hex": "00", "copies": 2}, "print_job.copies: unknown field"),
    ):
        with pytest.raises(DeviceError, match=problem):
            job_from_params(params)


@pytest.fixture
def ledger(engine: Engine) -> Any:
    core = EmbeddedLedger(engine)
    account = open_account(engine).account_id
    for terminal, request_id, amount in (
        ("T-1", "tx_1:deposit", "10.00"),
        ("T-1", "tx_1:fee", "0.50"),
        ("T-1", "txA1:deposit", "99.00"),  # '_' must not act as a LIKE wildcard
        ("T-1", "tx_10:deposit", "7.00"),  # another transaction sharing the prefix "tx_1"
        ("T-2", "tx_1:deposit", "5.00"),  # the same txn id on another terminal
    ):
        core.post_deposit(
            DepositRequest(
                Reference(terminal, request_id),
                account_id=account,
                branch=BRANCH,
                currency="CNY",
                amount=amount,
                now=T0,
            )
        )
    return core, engine.url.render_as_string(hide_password=False)


def test_lookup_finds_exactly_the_transaction_s_entries(ledger: Any) -> None:
    core, _ = ledger
    found = lookup_transaction(core.engine, parse_reference("BLTX:T-1:tx_1"))
    # The customer's leg first, then the branch vault's.
    assert [(e.reference.request_id, str(e.legs[0].amount)) for e in found.entries] == [
        ("tx_1:deposit", "10.00"),
        ("tx_1:fee", "0.50"),
    ]
    assert found.entries[0].legs[1].account_id == "int:vault_cash:north:CNY"
    assert lookup_transaction(core.engine, parse_reference("BLTX:T-9:tx_1")).entries == ()


def test_lookup_cli_and_the_receipts_service(
    ledger: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    core, db = ledger
    assert server_main(["--db", db, "ledger", "lookup", "BLTX:T-1:tx_1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["request_id"] for e in data["entries"]] == ["tx_1:deposit", "tx_1:fee"]
    assert server_main(["--db", db, "ledger", "lookup", "BLTX:T-1"]) == 2
    assert "reference: expected BLTX:<terminal_id>:<txn_id>" in capsys.readouterr().err

    async def scenario() -> None:
        server = grpc.aio.server()
        pb_grpc.add_ReceiptsServicer_to_server(
            ReceiptsServicer(core.engine, Authorizer(insecure=True)), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ReceiptsStub(channel)

            async def ask(reference: str, who: str) -> pb.LookupReferenceResult:
                return await stub.LookupReference(
                    pb.LookupReferenceRequest(reference=reference),
                    metadata=((PRINCIPAL_METADATA_KEY, who),),
                )

            found = await ask("BLTX:T-1:tx_1", "teller:t1")
            assert [e.request_id for e in found.entries] == ["tx_1:deposit", "tx_1:fee"]
            assert [leg.amount for leg in found.entries[0].legs] == ["10.00", "-10.00"]
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await ask("BLTX::x", "operator:ops")
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad.value.details() == "reference: the terminal id is empty"
            assert violations(bad.value) == [("reference", "invalid_argument")]
            with pytest.raises(grpc.aio.AioRpcError) as long:
                await ask("BLTX:T-1:" + "7" * 5000, "operator:ops")
            assert long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert violations(long.value) == [("reference", "too_long")]
            assert "(5009 characters)" in (long.value.details() or "")
            assert len(long.value.details() or "") < 200
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await ask("BLTX:T-1:tx_1", "terminal:T-1")
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The tellers' client asks the same service.
        teller = ["--target", f"127.0.0.1:{port}", "--insecure", "--as", "teller:T01", "lookup"]
        assert await asyncio.to_thread(teller_main, [*teller, "BLTX:T-1:tx_1", "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert [e["request_id"] for e in shown["entries"]] == ["tx_1:deposit", "tx_1:fee"]
        assert await asyncio.to_thread(teller_main, [*teller, "BLTX:T-1:"]) == 1
        assert "transaction id is empty" in capsys.readouterr().err
        await server.stop(0)

    asyncio.run(scenario())


class FakePrinterOwner:
    """Stands in for the printer's device owner: takes the job, or fails as paper-out does."""

    def __init__(self, fail: DeviceError | None = None) -> None:
        self.jobs: list[bytes] = []
        self.fail = fail

    async def submit(self, name: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert name == "print_job"
        if self.fail is not None:
            raise self.fail
        self.jobs.append(job_from_params(params))
        return {"bytes": len(self.jobs[-1])}


def test_print_receipt_hands_the_job_to_the_printer_and_journals_it(tmp_path: Path) -> None:
    store = Store(tmp_path, "T-0001")
    owner = FakePrinterOwner()
    config = SimpleNamespace(terminal=SimpleNamespace(terminal_id="T-0001"))
    agent: Any = SimpleNamespace(owners={"printer": owner}, store=store, config=config)
    other = replace(RECEIPT, terminal_id="T-0002", reference="BLTX:T-0002:tx-1")
    with pytest.raises(BadReceipt, match="receipt.terminal_id: 'T-0002' is not this terminal"):
        asyncio.run(print_receipt(agent, other))
    assert asyncio.run(print_receipt(agent, RECEIPT)) == len(receipt_job(RECEIPT))
    assert owner.jobs == [receipt_job(RECEIPT)]
    paper_out = DeviceError(Completion.USER_ERROR, "paper_out", "printer: paper out")
    agent.owners["printer"] = FakePrinterOwner(paper_out)
    with pytest.raises(DeviceError, match="paper out"):
        asyncio.run(print_receipt(agent, RECEIPT))
    entries = store.ejournal.show()
    assert [(e.kind, e.fields()["reference"]) for e in entries] == [
        ("receipt_printed", RECEIPT.reference),
        ("receipt_not_printed", RECEIPT.reference),
    ]
    assert entries[-1].fields()["code"] == "paper_out"
    store.close()


def _printed_text(job: bytes) -> str:
    return b"".join(c.data for c in parse(job) if isinstance(c, Text)).decode("cp437")


def test_a_reprint_after_a_crash_says_duplicate_on_paper_and_in_the_journal(
    tmp_path: Path,
) -> None:
    assert "DUPLICATE" not in _printed_text(receipt_job(RECEIPT))
    reprint = replace(RECEIPT, duplicate=True)
    assert "DUPLICATE - same transaction as an earlier slip" in _printed_text(receipt_job(reprint))
    store = Store(tmp_path, "T-0001")
    config = SimpleNamespace(terminal=SimpleNamespace(terminal_id="T-0001"))
    agent: Any = SimpleNamespace(owners={"printer": FakePrinterOwner()}, store=store, config=config)
    asyncio.run(print_receipt(agent, RECEIPT))
    asyncio.run(print_receipt(agent, replace(RECEIPT, reference="BLTX:T-0001:tx-other")))
    asyncio.run(print_receipt(agent, reprint))
    found = store.ejournal.find("receipt_printed", RECEIPT.reference)
    assert [e.fields().get("duplicate", False) for e in found] == [False, True]
    assert store.ejournal.find("receipt_not_printed", RECEIPT.reference) == []
    assert store.ejournal.find("receipt_printed", "BLTX:T-0001:nothing") == []
    store.close()


def test_a_recorded_transaction_s_slip_says_where_to_watch_it() -> None:
    assert "My recordings" not in _printed_text(receipt_job(RECEIPT))
    printed = _printed_text(receipt_job(replace(RECEIPT, recorded=True)))
    assert "This transaction was recorded" in printed and "My recordings" in printed
    assert RECEIPT.reference in printed

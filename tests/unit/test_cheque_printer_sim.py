"""The simulated cheque printer's IPP service and mechanics in process: RFC 8011 request
checks with named refusals, the job life cycle, faults, OCR and the presenter."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer.ipp_codec import (
    CHARSET,
    INTEGER,
    KEYWORD,
    MIME_MEDIA_TYPE,
    NATURAL_LANGUAGE,
    OPERATION_GROUP,
    PRINTER_GROUP,
    URI,
    Attribute,
    IppMessage,
    attributes,
)
from branchline.sim.cheque_printer.model import ChequePrinterModel
from branchline.sim.cheque_printer.service import IppService
from branchline.sim.devices.base import SimError
from branchline.sim.devices.cheque_printer import SimulatedChequePrinter

URI_ = "ipp://127.0.0.1:631/ipp/print"


def request(op: int, data: bytes = b"", **extra: Attribute) -> IppMessage:
    message = IppMessage(code=op, request_id=9, data=data)
    group = message.add_group(OPERATION_GROUP)
    group["attributes-charset"] = Attribute(CHARSET, ["utf-8"])
    group["attributes-natural-language"] = Attribute(NATURAL_LANGUAGE, ["en"])
    group["printer-uri"] = Attribute(URI, [URI_])
    for name, value in extra.items():
        group[name.replace("_", "-")] = value
    return message


def status_message(reply: IppMessage) -> str:
    return str(reply.group(OPERATION_GROUP)["status-message"].value)


@pytest.fixture
def service() -> IppService:
    model = ChequePrinterModel()
    model.load_stock(10000001, 3)
    return IppService(model, lambda: URI_, lambda: None)


def test_charset_and_language_must_come_first(service: IppService) -> None:
    message = IppMessage(code=ipp.GET_PRINTER_ATTRIBUTES, request_id=3)
    group = message.add_group(OPERATION_GROUP)
    group["printer-uri"] = Attribute(URI, [URI_])
    group["attributes-charset"] = Attribute(CHARSET, ["utf-8"])
    reply = service.handle(message)
    assert (reply.code, reply.request_id) == (ipp.CLIENT_ERROR_BAD_REQUEST, 3)
    assert "attributes-charset and attributes-natural-language must come first" in status_message(
        reply
    )


def test_unknown_operation_and_bad_values_are_refused_by_name(service: IppService) -> None:
    reply = service.handle(request(0x0010))
    assert reply.code == ipp.SERVER_ERROR_OPERATION_NOT_SUPPORTED
    assert status_message(reply) == "operation 0x0010 not supported"
    reply = service.handle(request(ipp.GET_JOBS, which_jobs=Attribute(KEYWORD, ["mine"])))
    assert reply.code == ipp.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
    assert "which-jobs 'mine'" in status_message(reply)
    reply = service.handle(
        request(ipp.VALIDATE_JOB, document_format=Attribute(MIME_MEDIA_TYPE, ["image/jpeg"]))
    )
    assert reply.code == ipp.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
    reply = service.handle(request(ipp.GET_JOB_ATTRIBUTES))
    assert status_message(reply) == "job-id: missing or not an integer"
    reply = service.handle(request(ipp.PRESENT_BOOK))
    assert reply.code == ipp.CLIENT_ERROR_NOT_POSSIBLE
    assert status_message(reply) == "no printed leaves to present"


def test_requested_attributes_filter_and_feeder_ocr(service: IppService) -> None:
    wanted = Attribute(KEYWORD, ["printer-state", ipp.FEEDER_OCR_SERIAL])
    reply = service.handle(request(ipp.GET_PRINTER_ATTRIBUTES, requested_attributes=wanted))
    assert attributes(reply, PRINTER_GROUP) == {
        "printer-state": ipp.PRINTER_IDLE,
        ipp.FEEDER_OCR_SERIAL: "10000001",
    }
    service.model.wrong_stock = True
    reply = service.handle(request(ipp.GET_PRINTER_ATTRIBUTES, requested_attributes=wanted))
    assert attributes(reply, PRINTER_GROUP)[ipp.FEEDER_OCR_SERIAL] == "60000001"


def test_jobs_consume_leaves_faults_stop_and_jams_spoil(service: IppService) -> None:
    model = service.model
    reply = service.handle(request(ipp.PRINT_JOB, data=b"%PDF-1.4 leaf"))
    job = model.jobs[attributes(reply, 2)["job-id"]]
    assert model.start_leaf(job) and job.serial == 10000001
    model.finish_leaf(job, "out.png")
    assert job.state == ipp.JOB_COMPLETED and model.printed_unpresented == [10000001]

    model.cover_open = True
    second = model.add_job("leaf", "t", b"%PDF-")
    assert not model.start_leaf(second)
    assert (second.state, second.reasons) == (ipp.JOB_STOPPED, ["printer-stopped"])
    assert model.state_reasons() == ["cover-open"] and model.printer_state() == ipp.PRINTER_STOPPED
    model.cover_open = False
    model.media_jam = True
    assert model.state_reasons() == ["media-jam"]
    model.media_jam = False
    model.jam_after = 0
    assert not model.start_leaf(second)
    assert second.state == ipp.JOB_ABORTED and model.spoiled == [10000002]
    with pytest.raises(ValueError, match="jammed"):
        model.retract()
    model.media_jam = False
    model.retract()  # the leaf printed before the jam goes to the retain bin
    assert model.retained == [10000001] and model.presenter_state == "retracted"
    reply = service.handle(request(ipp.CANCEL_JOB, job_id=Attribute(INTEGER, [second.job_id])))
    assert reply.code == ipp.CLIENT_ERROR_NOT_POSSIBLE
    assert status_message(reply) == f"job {second.job_id} is already aborted"
    third = model.add_job("leaf", "t", b"%PDF-")
    assert model.start_leaf(third) and third.serial == 10000003
    model.finish_leaf(third, "x.png")
    assert model.state_reasons() == ["media-empty"]  # the cassette is empty now
    assert model.ocr_serial() is None


def test_device_actions_and_faults_name_what_is_wrong(tmp_path: Path) -> None:
    device = SimulatedChequePrinter(tmp_path)
    assert device.facts()["feeder_next_serial"] == "10000001"
    device.act("load_stock", {"first": "20000001", "count": "5"})
    assert device.facts()["feeder_leaves"] == "5"
    with pytest.raises(SimError, match="first: expected an integer, got 'x'"):
        device.act("load_stock", {"first": "x", "count": "5"})
    with pytest.raises(SimError, match="count: must be 1 to 10000, got 0"):
        device.act("load_stock", {"first": "1", "count": "0"})
    with pytest.raises(SimError, match=r"take_book: no book presented \(presenter is empty\)"):
        device.act("take_book", {})
    with pytest.raises(SimError, match="has no action 'fly'"):
        device.act("fly", {})
    with pytest.raises(SimError, match="on: expected true or false"):
        device.act("take_on_present", {"on": "yes"})
    with pytest.raises(SimError, match="has no fault 'smoke'"):
        device.set_fault("smoke", True)
    device.set_fault("wrong_stock", True)
    assert device.facts()["ocr_serial"] == "70000001"


def test_a_customer_at_the_slot_takes_the_book_as_it_is_presented() -> None:
    model = ChequePrinterModel()
    model.load_stock(10000001, 5)
    model.take_on_present = True
    job = model.add_job("leaf", "t", b"%PDF-")
    assert model.start_leaf(job)
    model.finish_leaf(job, "x.png")
    model.present()
    assert model.presenter_state == "taken" and model.presenter_leaves == [10000001]

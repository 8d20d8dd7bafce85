"""The IPP cheque printer driver against the simulator as a real process: a whole book read
back from the rendered PNGs, each fault ending the book cleanly, the OCR check, the
presenter, Get-Jobs and Cancel-Job, and the agent reporting and self-testing the device."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from branchline.drivers.base import (
    CancelToken,
    CommandCanceled,
    DeviceError,
    DeviceGone,
    DeviceStatus,
    DriverContext,
)
from branchline.drivers.cheque_printer.client import IppClient, IppRefused
from branchline.drivers.cheque_printer.driver import IppChequePrinterDriver
from branchline.drivers.cheque_printer.leaf import Leaf, render_leaf
from branchline.drivers.cheque_printer.options import ChequePrinterOptions
from branchline.v1 import sim_control_pb2
from tests.integration.stack import Stack, running_stack, wait_for

DEVICE = "cheque_printer"
BOOK = {
    "company": "Hengda Trading Co., Ltd.",
    "account": "6222020200112233",
    "bank_name": "China Construction Bank",
    "bank_code": "105100000017",
    "prefix": "10",
}


def sim_facts(stack: Stack) -> dict[str, str]:
    listed = stack.sim().ListDevices(sim_control_pb2.ListSimDevicesRequest(), timeout=5)
    return dict(next(d for d in listed.devices if d.name == DEVICE).facts)


def start_printer(stack: Stack) -> Stack:
    stack.start_sim()
    wait_for(lambda: (stack.sim_dir / "dev" / "cheque_printer.uri").exists(), 15, "printer URI")
    stack.sim_act(DEVICE, "set_leaf_time", seconds="0.01")
    return stack


@pytest.fixture
def printer_stack(stack: Stack) -> Stack:
    """A simulator of its own, for a test that prints: it reads back job ids, leaf counts and
    retained or spoiled serials from a printer that never printed before (the simulator has no
    reset)."""
    return start_printer(stack)


@pytest.fixture(scope="module")
def idle_printer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One simulator for the tests that leave no leaf printed and clear what they set; the
    ones asserting an empty job history run before the one job of get_jobs_and_cancel_job."""
    with running_stack(tmp_path_factory.mktemp("idle_printer")) as stack:
        yield start_printer(stack)


def make_driver(stack: Stack, take_timeout: float = 5.0) -> IppChequePrinterDriver:
    options = ChequePrinterOptions(
        uri="",
        uri_file=stack.sim_dir / "dev" / "cheque_printer.uri",
        request_timeout=10.0,
        job_timeout=10.0,
        take_timeout=take_timeout,
        job_poll_interval=0.01,
        user_name="test",
    )
    driver = IppChequePrinterDriver(DriverContext("T-0001", "BR-001", DEVICE), options)
    driver.open()
    return driver


def book(first: int, count: int) -> dict[str, Any]:
    return {**BOOK, "first_serial": first, "count": count}


def barcode(path: str | Path) -> str:
    found = zxingcpp.read_barcodes(Image.open(path))
    assert len(found) == 1, f"{path}: {len(found)} barcodes"
    return str(found[0].text)


def take_when_presented(stack: Stack) -> threading.Thread:
    def customer() -> None:
        wait_for(lambda: sim_facts(stack)["presenter"] == "presented", 60, "book presented")
        stack.sim_act(DEVICE, "take_book")

    thread = threading.Thread(target=customer, daemon=True)
    thread.start()
    return thread


def test_a_25_leaf_book_prints_in_order_and_is_taken(printer_stack: Stack) -> None:
    stack = printer_stack
    stack.sim_act(DEVICE, "load_stock", first="20000001", count="30")
    driver = make_driver(stack)
    try:
        assert driver.poll().status is DeviceStatus.ONLINE
        customer = take_when_presented(stack)
        result = driver.print_book(book(20000001, 25), CancelToken())
        customer.join(10)
    finally:
        driver.close()
    numbers = [f"10{20000001 + i}" for i in range(25)]
    assert result["printed"] == numbers
    assert result["book"] == "taken"
    pngs = sorted((stack.sim_dir / "cheque_printer").glob("job-*.png"))
    assert [barcode(p) for p in pngs] == numbers
    facts = sim_facts(stack)
    assert facts["presenter"] == "taken"
    assert facts["presenter_leaves"] == ",".join(f"{20000001 + i:08d}" for i in range(25))
    assert facts["feeder_next_serial"] == "20000026"


def test_a_book_not_taken_is_retracted(printer_stack: Stack) -> None:
    stack = printer_stack
    stack.sim_act(DEVICE, "load_stock", first="30000001", count="10")
    driver = make_driver(stack, take_timeout=0.5)
    try:
        result = driver.print_book(book(30000001, 3), CancelToken())
        assert result["book"] == "retracted"
        assert driver.poll().facts["presenter"] == "retracted"
    finally:
        driver.close()
    facts = sim_facts(stack)
    assert facts["retained"] == "30000001,30000002,30000003"
    assert facts["retained_books"] == "1"


@pytest.mark.parametrize(
    ("fault", "code", "status", "detail"),
    [
        ("media_empty", "media_empty", DeviceStatus.USER_ERROR, "paper out"),
        ("cover_open", "cover_open", DeviceStatus.USER_ERROR, "cover open"),
        ("media_jam", "media_jam", DeviceStatus.HARDWARE_ERROR, "paper jam"),
    ],
)
def test_a_fault_before_the_book_prints_nothing(
    idle_printer: Stack, fault: str, code: str, status: DeviceStatus, detail: str
) -> None:
    stack = idle_printer
    driver = make_driver(stack)
    try:
        stack.sim_fault(DEVICE, fault, True)
        report = driver.poll()
        assert (report.status, report.detail) == (status, detail)
        with pytest.raises(DeviceError) as caught:
            driver.print_book(book(10000001, 5), CancelToken())
        assert caught.value.code == code
        assert "before leaf 1010000001" in caught.value.message
        assert "none printed" in caught.value.message
        assert sim_facts(stack)["leaves_printed"] == "0"
        assert driver.jobs({"which": "all"}, CancelToken())["jobs"] == []
        stack.sim_fault(DEVICE, fault, False)
        assert driver.poll().status is DeviceStatus.ONLINE
    finally:
        driver.close()


def test_a_jam_mid_book_aborts_the_job_and_retains_nothing_it_cannot(printer_stack: Stack) -> None:
    stack = printer_stack
    stack.sim_act(DEVICE, "load_stock", first="40000001", count="25")
    stack.sim_act(DEVICE, "jam_after", leaves="3")
    driver = make_driver(stack)
    try:
        with pytest.raises(DeviceError) as caught:
            driver.print_book(book(40000001, 25), CancelToken())
        error = caught.value
        assert error.code == "media_jam"
        assert "before leaf 1040000004" in error.message
        assert "3 printed (1040000001..1040000003)" in error.message
        assert "job 4 aborted" in error.message
        # The path is jammed: the printed leaves cannot be retracted, and it says so.
        assert "not retracted" in error.message and "jammed" in error.message
        assert driver.poll().status is DeviceStatus.HARDWARE_ERROR
        jobs = driver.jobs({"which": "all"}, CancelToken())["jobs"]
        assert [(j["job-id"], j["job-state"]) for j in jobs] == [(4, 8), (3, 9), (2, 9), (1, 9)]
    finally:
        driver.close()
    facts = sim_facts(stack)
    assert facts["spoiled"] == "40000004"
    assert facts["feeder_next_serial"] == "40000005"


def test_running_out_of_stock_mid_book_stops_and_retracts_the_printed_leaves(
    printer_stack: Stack,
) -> None:
    stack = printer_stack
    stack.sim_act(DEVICE, "load_stock", first="50000001", count="2")
    driver = make_driver(stack)
    try:
        with pytest.raises(DeviceError) as caught:
            driver.print_book(book(50000001, 3), CancelToken())
        assert caught.value.code == "media_empty"
        assert "2 printed (1050000001..1050000002)" in caught.value.message
        assert caught.value.message.endswith("printed leaves retracted")
    finally:
        driver.close()
    assert sim_facts(stack)["retained"] == "50000001,50000002"


def test_wrong_stock_stops_before_printing(idle_printer: Stack) -> None:
    stack = idle_printer
    stack.sim_act(DEVICE, "load_stock", first="60000001", count="5")
    driver = make_driver(stack)
    try:
        stack.sim_fault(DEVICE, "wrong_stock", True)
        with pytest.raises(DeviceError) as caught:
            driver.print_book(book(60000001, 5), CancelToken())
        assert caught.value.code == "ocr_mismatch"
        assert "feeder OCR read serial 10000001, allocated 60000001" in caught.value.message
        assert driver.jobs({"which": "all"}, CancelToken())["jobs"] == []
        # Right stock but the wrong allocation: the same check.
        stack.sim_fault(DEVICE, "wrong_stock", False)
        with pytest.raises(DeviceError) as caught:
            driver.print_book(book(60000002, 2), CancelToken())
        assert caught.value.code == "ocr_mismatch"
    finally:
        driver.close()
    assert sim_facts(stack)["leaves_printed"] == "0"
    stack.sim_act(DEVICE, "load_stock", first="10000001", count="100")  # the power-on pack


def test_a_canceled_book_cancels_its_job_and_retracts_what_printed(printer_stack: Stack) -> None:
    stack = printer_stack
    stack.sim_act(DEVICE, "load_stock", first="70000001", count="5")
    driver = make_driver(stack)
    cancel = CancelToken()
    try:
        stack.sim_act(DEVICE, "set_leaf_time", seconds="1")
        outcome: list[BaseException] = []

        def print_it() -> None:
            try:
                driver.print_book(book(70000001, 5), cancel)
            except BaseException as exc:  # handed to the test thread
                outcome.append(exc)

        # A client of the test's own (the driver's is busy on the printing thread).
        watcher = IppClient(driver.client.uri, "watcher", 5.0)
        thread = threading.Thread(target=print_it)
        thread.start()
        try:
            wait_for(
                lambda: [j["job-id"] for j in watcher.jobs("not-completed")] == [2],
                10,
                "the second leaf on the drum",
            )
        finally:
            watcher.close()
        cancel.cancel("customer left")
        thread.join(20)
        assert len(outcome) == 1 and isinstance(outcome[0], CommandCanceled), outcome
        assert outcome[0].message.startswith("customer left")
        assert "printed leaves retracted" in outcome[0].message
        jobs = driver.jobs({"which": "all"}, CancelToken())["jobs"]
        assert [(j["job-id"], j["job-state"]) for j in jobs] == [(2, 7), (1, 9)]
    finally:
        driver.close()
    # The canceled leaf came out printed: spoiled, not back in the cassette.
    wait_for(lambda: sim_facts(stack)["spoiled"] == "70000002", 5, "the canceled leaf spoiled")
    assert sim_facts(stack)["retained"] == "70000001"


def test_bad_book_parameters_are_named(idle_printer: Stack) -> None:
    driver = make_driver(idle_printer)
    try:
        for params, words in (
            ({**book(1, 1), "company": 5}, "print_book.company: text is required"),
            ({**book(1, 1), "count": 0}, "print_book.count: expected a whole number 1..100"),
            ({**book(1, 1), "colour": "red"}, "print_book.colour: unknown parameter"),
            ({**book(1, 1), "bank_code": "12"}, "print_book.bank_code: must be the 12-digit"),
            ({**book(1, 1), "account": "12ab56"}, "print_book.account: must be 6 to 32 digits"),
            ({**book(99_999_999, 2)}, "print_book.count: the range runs past"),
        ):
            with pytest.raises(DeviceError) as caught:
                driver.print_book(params, CancelToken())
            assert caught.value.code == "invalid_parameter"
            assert caught.value.message.startswith(words)
        with pytest.raises(DeviceError) as caught:
            driver.jobs({"which": "mine"}, CancelToken())
        assert caught.value.code == "invalid_parameter"
        assert caught.value.message.startswith("jobs.which: must be one of")
    finally:
        driver.close()


def test_a_malformed_request_is_refused_naming_the_byte(idle_printer: Stack) -> None:
    printer_stack = idle_printer  # the only test sending it a malformed frame
    uri = (printer_stack.sim_dir / "dev" / "cheque_printer.uri").read_text().strip()
    url = uri.replace("ipp://", "http://")
    request = urllib.request.Request(
        url, data=b"\x01\x01\x00\x0b\x00\x00", headers={"Content-Type": "application/ipp"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert caught.value.read().decode() == (
        "IPP frame at byte 4: truncated request-id: need 4 bytes, 2 left"
    )
    assert sim_facts(printer_stack)["bad_frames"] == "1"


def test_unplugged_printer_is_gone_and_comes_back_on_the_same_uri(idle_printer: Stack) -> None:
    stack = idle_printer
    uri_file = stack.sim_dir / "dev" / "cheque_printer.uri"
    uri = uri_file.read_text().strip()
    driver = make_driver(stack)
    seen: list[tuple[str, bytes]] = []
    driver.client.tap = lambda direction, data: seen.append((direction, data))
    try:
        assert driver.poll().status is DeviceStatus.ONLINE
        # The spy sees the request (Get-Printer-Attributes, 0x000B) and the IPP reply.
        assert [d for d, _ in seen] == ["tx", "rx"]
        assert seen[0][1][2:4] == b"\x00\x0b" and seen[1][1][2:4] == b"\x00\x00"
        stack.sim().Unplug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
        assert not uri_file.exists()
        with pytest.raises(DeviceGone, match="not reachable"):
            wait_for(lambda: driver.poll() and False, 5, "the printer to drop off")
    finally:
        driver.close()
    with pytest.raises(DeviceGone, match="cheque_printer.uri"):
        make_driver(stack)
    stack.sim().Replug(sim_control_pb2.SimDeviceRequest(device=DEVICE), timeout=5)
    wait_for(uri_file.exists, 5, "the URI published again")
    assert uri_file.read_text().strip() == uri
    driver = make_driver(stack)
    try:
        assert driver.poll().status is DeviceStatus.ONLINE
    finally:
        driver.close()


def test_get_jobs_and_cancel_job(idle_printer: Stack) -> None:
    # After the tests asserting an empty job history on this printer: it leaves a job in it.
    stack = idle_printer
    stack.sim_act(DEVICE, "set_leaf_time", seconds="3")
    driver = make_driver(stack)
    try:
        pdf = render_leaf(Leaf(serial=10000001, **BOOK))
        job_id = driver.client.print_job("slow leaf", "application/pdf", pdf)
        wait_for(
            lambda: driver.client.job_attributes(job_id)["job-state"] == 5, 5, "job processing"
        )
        assert [j["job-id"] for j in driver.client.jobs("not-completed")] == [job_id]
        driver.client.cancel_job(job_id)
        attrs = driver.client.job_attributes(job_id)
        assert (attrs["job-state"], attrs["job-state-reasons"]) == (7, "job-canceled-by-user")
        assert driver.client.jobs("not-completed") == []
        with pytest.raises(IppRefused) as caught:
            driver.client.cancel_job(job_id)
        assert caught.value.status == 0x0404 and "already canceled" in caught.value.message
        with pytest.raises(IppRefused) as caught:
            driver.client.job_attributes(999)
        assert caught.value.status == 0x0406 and "job-id 999: no such job" in caught.value.message
        with pytest.raises(IppRefused) as caught:
            driver.client.print_job("not a pdf", "application/pdf", b"hello")
        assert "not a PDF" in caught.value.message
    finally:
        driver.close()
        stack.sim_act(DEVICE, "set_leaf_time", seconds="0.01")


def test_the_agent_reports_self_tests_and_prints_through_the_device(stack: Stack) -> None:
    stack.devices = (DEVICE,)
    stack.required_devices = ()
    stack.shutdown_drain = 0  # no client to drain when the test ends
    stack.start_all()

    def status() -> str:
        return str(stack.agent_device(DEVICE)["status"])

    wait_for(lambda: status() == "online", 20, "cheque printer online")
    data = json.loads(stack.diag("status", "--json").stdout)
    assert next(d["status"] for d in data["devices"] if d["name"] == DEVICE) == "online"
    result = stack.diag("selftest", DEVICE, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "specimen leaf job validated" in result.stdout
    stack.sim_fault(DEVICE, "cover_open", True)
    wait_for(lambda: status() == "user_error", 20, "cover open reported")
    stack.sim_fault(DEVICE, "cover_open", False)
    wait_for(lambda: status() == "online", 20, "cheque printer online again")
    stack.sim_act(DEVICE, "set_leaf_time", seconds="0.01")
    customer = take_when_presented(stack)
    completion, problem, reply = stack.device_command(DEVICE, "print_book", **book(10000001, 2))
    customer.join(10)
    assert completion == "success", problem
    assert reply == {"printed": ["1010000001", "1010000002"], "jobs": [1, 2], "book": "taken"}

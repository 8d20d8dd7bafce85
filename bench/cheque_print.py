"""Cheque book over IPP: 25 leaves through the driver against the raw IPP transfer time.

A 25-leaf book through the driver against the raw IPP transfer of the same PDFs, in the same
run.

The driver talks to ``branchline-sim``'s cheque printer (IPP over HTTP on loopback) with the
mechanism time set to 0, so the figures measure software: the book runs from the first
Print-Job to the last leaf's job completed (each leaf: Get-Printer-Attributes with the feeder
OCR check, Print-Job, Get-Job-Attributes until completed, the simulator rendering the PDF to
PNG); the ceiling is the same 25 PDFs sent as bare Print-Job requests back to back, each
counted until the printer accepted it (its reply). ``book_over_raw`` is the ratio;
``accepted_over_raw`` stops the book's clock at the last Print-Job's reply instead. The driver
waits for each leaf to complete before the next (the OCR check needs the next leaf under the
reader), so the book pays the simulated printing of every leaf but the last, which the raw
transfer does not.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from branchline.drivers.base import CancelToken, DriverContext
from branchline.drivers.cheque_printer.book import (
    PDF,
    BookProgress,
    BookRequest,
    book_from_params,
)
from branchline.drivers.cheque_printer.client import IppClient
from branchline.drivers.cheque_printer.driver import IppChequePrinterDriver
from branchline.drivers.cheque_printer.leaf import render_leaf
from branchline.drivers.cheque_printer.options import ChequePrinterOptions
from branchline.v1 import sim_control_pb2, sim_control_pb2_grpc

FIRST_SERIAL = 10_000_001
BOOK = {
    "company": "Hengda Trading Co., Ltd.",
    "account": "6222020200112233",
    "bank_name": "China Construction Bank",
    "bank_code": "105100000017",
    "prefix": "10",
}


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class _TimedClient(IppClient):
    """Notes when the first Print-Job goes out."""

    first_print_at: float | None = None
    last_accepted_at = 0.0

    def print_job(self, job_name: str, document_format: str, document: bytes) -> int:
        if self.first_print_at is None:
            self.first_print_at = time.perf_counter()
        job_id = super().print_job(job_name, document_format, document)
        self.last_accepted_at = time.perf_counter()
        return job_id


def _raw_transfer(uri: str, book: BookRequest) -> tuple[float, float]:
    """(seconds to make one leaf PDF, seconds for the bare Print-Jobs of them all)."""
    started = time.perf_counter()
    pdfs = [render_leaf(leaf) for leaf in book.leaves]
    pdf_s = (time.perf_counter() - started) / len(pdfs)
    client = IppClient(uri, "bench", 30.0)
    try:
        client.printer_attributes(["printer-state"])  # connection warmed like the driver's
        started = time.perf_counter()
        for leaf, pdf in zip(book.leaves, pdfs, strict=True):
            client.print_job(f"raw-{leaf.number}", PDF, pdf)
        raw_s = time.perf_counter() - started
        _wait(lambda: not client.jobs("not-completed"), 120, "the raw jobs to finish")
    finally:
        client.close()
    return pdf_s, raw_s


def _book(uri: str, book: BookRequest) -> tuple[float, float]:
    """(first Print-Job to last leaf completed, first Print-Job to last one accepted)."""
    options = ChequePrinterOptions(uri, None, 30.0, 60.0, 1.0, 0.005, "bench")
    driver = IppChequePrinterDriver(DriverContext("BENCH", "BENCH", "cheque_printer"), options)
    driver.open()
    driver.close()
    # The driver's own client, replaced by one that notes the first Print-Job.
    timed = _TimedClient(uri, "bench", 30.0)
    driver._client = timed
    try:
        progress = BookProgress()
        driver.book_printer().print_leaves(book, CancelToken(), progress)
        done = time.perf_counter()
    finally:
        driver.close()
    if len(progress.printed) != len(book.leaves) or timed.first_print_at is None:
        raise RuntimeError(f"the book printed {len(progress.printed)} of {len(book.leaves)}")
    return done - timed.first_print_at, timed.last_accepted_at - timed.first_print_at


@contextmanager
def simulated_printer(run_dir: Path) -> Iterator[tuple[str, Callable[..., None]]]:
    """``branchline-sim`` with only the cheque printer, mechanism time 0: (its URI, act)."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "branchline.sim.main", "--run-dir", str(run_dir)]
        + ["--devices", "cheque_printer", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    channel = grpc.insecure_channel(f"unix:{run_dir / 'control.sock'}")
    uri_file = run_dir / "dev" / "cheque_printer.uri"
    try:
        _wait(lambda: uri_file.exists(), 30, "the simulated cheque printer")
        control = sim_control_pb2_grpc.SimControlStub(channel)

        def act(action: str, **params: str) -> None:
            request = sim_control_pb2.ActRequest(
                device="cheque_printer", action=action, params=params
            )
            control.Act(request, timeout=5)

        act("set_leaf_time", seconds="0")
        yield uri_file.read_text().strip(), act
    finally:
        channel.close()
        sim.terminate()
        sim.wait(10)


def run(leaves: int = 25) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bl-bench-", dir="/tmp") as tmp:
        with simulated_printer(Path(tmp) / "sim") as (uri, act):
            act("load_stock", first=str(FIRST_SERIAL), count=str(leaves))
            book = book_from_params({**BOOK, "first_serial": FIRST_SERIAL, "count": leaves})
            pdf_s, raw_s = _raw_transfer(uri, book)
            # The raw jobs used the pack's leaves: staff load the same serials again.
            act("load_stock", first=str(FIRST_SERIAL), count=str(leaves))
            book_s, accepted_s = _book(uri, book)
    return {
        "leaves": float(leaves),
        "book_first_print_to_last_leaf_s": book_s,
        "book_first_print_to_last_accepted_s": accepted_s,
        "book_per_leaf_ms": book_s * 1000 / leaves,
        "raw_ipp_transfer_s": raw_s,
        "raw_ipp_per_leaf_ms": raw_s * 1000 / leaves,
        "book_over_raw": book_s / raw_s,
        "accepted_over_raw": accepted_s / raw_s,
        "leaf_pdf_make_ms": pdf_s * 1000,
    }

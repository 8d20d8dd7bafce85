"""Printing a cheque book leaf by leaf, with the feeder's OCR checked before every leaf.

For each leaf: the printer must be ready (printer-state-reasons carry no fault) and the
feeder's OCR of the next pre-printed serial must equal the allocated serial, else nothing
more is printed. Then one Print-Job of the leaf's PDF, followed with Get-Job-Attributes to
completed; a job that stops or aborts is canceled and the book ends with the fault's code.
The finished book is presented; not taken within the take timeout, it is retracted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from branchline.drivers import params as checks
from branchline.drivers.base import CancelToken, CommandCanceled, Completion, DeviceError
from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer.client import IppClient, IppRefused, VendorOperation
from branchline.drivers.cheque_printer.leaf import Leaf, LeafError, render_leaf

PDF = "application/pdf"
MAX_LEAVES = 100
BOOK_FIELDS = {"company", "account", "bank_name", "bank_code", "prefix", "first_serial", "count"}


@dataclass(frozen=True)
class BookRequest:
    leaves: list[Leaf]


@dataclass
class BookProgress:
    printed: list[str] = field(default_factory=list)  # cheque numbers accepted by the printer
    jobs: list[int] = field(default_factory=list)


def book_from_params(params: dict[str, Any]) -> BookRequest:
    """The leaves of a ``print_book`` command; a bad parameter is refused by name
    (drivers/params.py, code ``invalid_parameter``)."""
    command = "print_book"
    checks.only(params, BOOK_FIELDS, command=command)
    texts: dict[str, str] = {}
    for name in ("company", "account", "bank_name", "bank_code", "prefix"):
        value = params.get(name, "" if name == "prefix" else None)
        if not isinstance(value, str):
            raise checks.bad_parameter(f"{command}.{name}: text is required")
        texts[name] = value
    first = checks.whole_number(params, "first_serial", None, 1, 99_999_999, command=command)
    count = checks.whole_number(params, "count", None, 1, MAX_LEAVES, command=command)
    if first + count > 100_000_000:
        raise checks.bad_parameter(f"{command}.count: the range runs past serial 99999999")
    leaves = [Leaf(serial=first + i, **texts) for i in range(count)]  # type: ignore[arg-type]
    try:
        leaves[0].check()
    except LeafError as exc:
        raise checks.bad_parameter(f"{command}.{exc}") from None
    return BookRequest(leaves)


def _fault_code(reasons: list[str]) -> str | None:
    """The driver's code for the first fault in printer-state-reasons (suffixes stripped)."""
    for reason in reasons:
        if reason.endswith(("-report", "-warning")):
            continue
        base = reason.removesuffix("-error")
        if base in ipp.FAULT_REASONS:
            return ipp.FAULT_REASONS[base]
    return None


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class BookPrinter:
    """One book's print run on an open client."""

    def __init__(
        self, client: IppClient, poll_interval: float, job_timeout: float, take_timeout: float
    ) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.take_timeout = take_timeout

    def _stop(self, progress: BookProgress, leaf: Leaf, code: str, why: str) -> DeviceError:
        printed = (
            f"{len(progress.printed)} printed ({progress.printed[0]}..{progress.printed[-1]})"
            if progress.printed
            else "none printed"
        )
        completion = (
            Completion.USER_ERROR
            if code in ("media_empty", "cover_open")
            else (Completion.HARDWARE_ERROR)
        )
        return DeviceError(
            completion, code, f"book stopped before leaf {leaf.number}: {why}; {printed}"
        )

    def check_leaf_ready(self, progress: BookProgress, leaf: Leaf) -> None:
        attrs = self.client.printer_attributes(
            ["printer-state", "printer-state-reasons", ipp.FEEDER_OCR_SERIAL]
        )
        reasons = as_list(attrs.get("printer-state-reasons"))
        code = _fault_code(reasons)
        if code is not None:
            raise self._stop(progress, leaf, code, f"printer reports {', '.join(reasons)}")
        if attrs.get("printer-state") == ipp.PRINTER_STOPPED:
            raise self._stop(progress, leaf, "printer_stopped", f"stopped: {', '.join(reasons)}")
        ocr = attrs.get(ipp.FEEDER_OCR_SERIAL)
        expected = f"{leaf.serial:08d}"
        if not isinstance(ocr, str) or not ocr:
            raise self._stop(progress, leaf, "ocr_unreadable", "feeder OCR read no serial")
        if ocr != expected:
            raise self._stop(
                progress,
                leaf,
                "ocr_mismatch",
                f"feeder OCR read serial {ocr}, allocated {expected} (wrong stock)",
            )

    def follow_job(
        self, progress: BookProgress, leaf: Leaf, job_id: int, cancel: CancelToken
    ) -> None:
        deadline = time.monotonic() + self.job_timeout
        while True:
            attrs = self.client.job_attributes(job_id)
            state = attrs.get("job-state")
            if state == ipp.JOB_COMPLETED:
                return
            if state in (ipp.JOB_ABORTED, ipp.JOB_CANCELED, ipp.JOB_STOPPED):
                self._cancel_quietly(job_id)
                printer = self.client.printer_attributes(["printer-state-reasons"])
                reasons = as_list(printer.get("printer-state-reasons"))
                code = _fault_code(reasons) or "job_" + ipp.JOB_STATE_NAMES[int(state)].replace(
                    "-", "_"
                )
                job_reasons = ", ".join(as_list(attrs.get("job-state-reasons")))
                raise self._stop(
                    progress,
                    leaf,
                    code,
                    f"job {job_id} {ipp.JOB_STATE_NAMES[int(state)]} ({job_reasons}); "
                    f"printer reports {', '.join(reasons)}",
                )
            if time.monotonic() > deadline:
                self._cancel_quietly(job_id)
                raise DeviceError(
                    Completion.TIMEOUT,
                    "job_timeout",
                    f"job {job_id} (leaf {leaf.number}) not done in {self.job_timeout} s",
                )
            if cancel.wait(self.poll_interval):
                self._cancel_quietly(job_id)
                raise CommandCanceled(cancel.reason)

    def _cancel_quietly(self, job_id: int) -> None:
        try:
            self.client.cancel_job(job_id)
        except IppRefused:
            pass  # already finished: nothing to cancel

    def print_leaves(self, book: BookRequest, cancel: CancelToken, progress: BookProgress) -> None:
        self.client.validate_job(f"cheque-book-{book.leaves[0].number}", PDF)
        for leaf in book.leaves:
            cancel.raise_if_canceled()
            self.check_leaf_ready(progress, leaf)
            pdf = render_leaf(leaf)
            job_id = self.client.print_job(f"cheque-{leaf.number}", PDF, pdf)
            progress.jobs.append(job_id)
            self.follow_job(progress, leaf, job_id, cancel)
            progress.printed.append(leaf.number)

    def retract_partial(self) -> str:
        """After a stop: pull the leaves printed so far into the retain bin, if it can."""
        try:
            self.client.vendor(VendorOperation.RETRACT_BOOK, "Retract-Book")
        except DeviceError as exc:
            return f"not retracted ({exc.message})"
        return "retracted"

    def present(self, cancel: CancelToken) -> str:
        """Present the book; 'taken' or 'retracted' (not taken within the take timeout)."""
        self.client.vendor(VendorOperation.PRESENT_BOOK, "Present-Book")
        deadline = time.monotonic() + self.take_timeout
        while time.monotonic() < deadline and not cancel.canceled:
            state = self.client.printer_attributes([ipp.PRESENTER_STATE]).get(ipp.PRESENTER_STATE)
            if state == "taken":
                return "taken"
            cancel.wait(self.poll_interval)
        self.client.vendor(VendorOperation.RETRACT_BOOK, "Retract-Book")
        return "retracted"

    def run(self, book: BookRequest, cancel: CancelToken) -> dict[str, Any]:
        progress = BookProgress()
        try:
            self.print_leaves(book, cancel, progress)
        except DeviceError as exc:
            if progress.printed and exc.code != "device_gone":
                exc.message += f"; printed leaves {self.retract_partial()}"
                exc.args = (exc.message,)
            raise
        outcome = self.present(cancel)
        return {"printed": progress.printed, "jobs": progress.jobs, "book": outcome}

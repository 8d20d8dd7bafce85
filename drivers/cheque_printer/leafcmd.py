"""Leaf-at-a-time commands for a journaled issuing flow (agent/cheques/): each is safe to run
again after a crash, because each looks at the printer before it acts.

- ``print_leaf``: print one leaf under a caller-chosen ``job_name``. If the printer already
  holds a job of that name (the caller crashed after sending it), that job is followed
  instead of printing again; otherwise the usual pre-leaf checks (printer-state-reasons,
  feeder OCR = the leaf's serial) run before the Print-Job.
- ``present_book``: Present-Book, then wait until taken or ``timeout_s`` passes (then
  Retract-Book). A Present-Book the printer refuses because nothing is left to present means
  the present already happened: the presenter's state tells how it ended.
- ``retract_partial``: pull the leaves printed since the last present into the retain bin.
"""

from __future__ import annotations

import time
from typing import Any

from branchline.drivers import params as checks
from branchline.drivers.base import CancelToken, Completion, DeviceError
from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer.book import PDF, BookPrinter, BookProgress
from branchline.drivers.cheque_printer.client import IppRefused, VendorOperation
from branchline.drivers.cheque_printer.leaf import Leaf, LeafError, render_leaf

LEAF_FIELDS = ("company", "account", "bank_name", "bank_code", "prefix", "serial", "job_name")
MAX_JOB_NAME = 80


def leaf_from_params(params: dict[str, Any]) -> tuple[Leaf, str]:
    command = "print_leaf"
    checks.only(params, LEAF_FIELDS, command=command)
    texts: dict[str, str] = {}
    for name in ("company", "account", "bank_name", "bank_code", "prefix", "job_name"):
        value = params.get(name, "" if name == "prefix" else None)
        if not isinstance(value, str):
            raise checks.bad_parameter(f"{command}.{name}: text is required")
        texts[name] = value
    job_name = texts.pop("job_name")
    if not job_name or len(job_name) > MAX_JOB_NAME or not job_name.isprintable():
        raise checks.bad_parameter(f"{command}.job_name: 1 to {MAX_JOB_NAME} printable characters")
    serial = checks.whole_number(params, "serial", None, 1, 99_999_999, command=command)
    leaf = Leaf(serial=serial, **texts)  # type: ignore[arg-type]
    try:
        leaf.check()
    except LeafError as exc:
        raise checks.bad_parameter(f"{command}.{exc}") from None
    return leaf, job_name


def print_leaf(printer: BookPrinter, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
    leaf, job_name = leaf_from_params(params)
    progress = BookProgress()
    existing = find_job(printer, job_name)
    if existing is not None:
        printer.follow_job(progress, leaf, existing, cancel)
        return {"number": leaf.number, "job_id": existing, "resumed": True}
    printer.check_leaf_ready(progress, leaf)
    job_id = printer.client.print_job(job_name, PDF, render_leaf(leaf))
    printer.follow_job(progress, leaf, job_id, cancel)
    return {"number": leaf.number, "job_id": job_id, "resumed": False}


def find_job(printer: BookPrinter, job_name: str) -> int | None:
    """The newest job of that name the printer still lists."""
    found = None
    for job in printer.client.jobs_named("all"):
        if job.get("job-name") == job_name:
            job_id = int(job["job-id"])
            found = job_id if found is None else max(found, job_id)
    return found


def _presenter(printer: BookPrinter) -> str:
    attrs = printer.client.printer_attributes([ipp.PRESENTER_STATE])
    return str(attrs.get(ipp.PRESENTER_STATE, ""))


def present_book(
    printer: BookPrinter, params: dict[str, Any], cancel: CancelToken
) -> dict[str, Any]:
    checks.only(params, ("timeout_s",), command="present_book")
    timeout = checks.seconds(
        params, "timeout_s", printer.take_timeout, maximum=3600, command="present_book"
    )
    try:
        printer.client.vendor(VendorOperation.PRESENT_BOOK, "Present-Book")
        presented = "presented"
    except IppRefused as exc:
        if exc.status != ipp.CLIENT_ERROR_NOT_POSSIBLE:
            raise
        presented = _presenter(printer)  # already presented before a restart
        if presented not in ("presented", "taken", "retracted"):
            raise DeviceError(
                Completion.INVALID_DATA,
                "nothing_to_present",
                f"{exc.message}; presenter {presented}",
            ) from None
    if presented in ("taken", "retracted"):
        return {"book": presented, "resumed": True}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancel.canceled:
        if _presenter(printer) == "taken":
            return {"book": "taken", "resumed": presented != "presented"}
        cancel.wait(printer.poll_interval)
    if _presenter(printer) == "taken":
        return {"book": "taken", "resumed": False}
    printer.client.vendor(VendorOperation.RETRACT_BOOK, "Retract-Book")
    return {"book": "retracted", "resumed": False}


def retract_partial(
    printer: BookPrinter, params: dict[str, Any], cancel: CancelToken
) -> dict[str, Any]:
    checks.only(params, (), command="retract_partial")
    outcome = printer.retract_partial()
    return {"retracted": outcome == "retracted", "detail": outcome}

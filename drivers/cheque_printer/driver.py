"""Cheque printer driver over IPP (RFC 8011), with pyipp.

Options in ``[device.cheque_printer]`` (docs/configuration.md has the table): ``uri`` (an
``ipp://`` URI or a file holding it, re-read at each open), ``request_timeout``,
``job_timeout``, ``take_timeout``, ``job_poll_interval``, ``user_name``.

Status comes from Get-Printer-Attributes: ``printer-state`` and ``printer-state-reasons``
(media-empty and cover-open are user errors, media-jam a hardware error). The module's
feeder OCR and book presenter are vendor attributes and operations (interface.py,
docs/protocols/cheque-printer.md).
"""

from __future__ import annotations

from typing import Any

from branchline.common.config_reader import SectionReader
from branchline.drivers import params as checks
from branchline.drivers.base import (
    CancelToken,
    DeviceGone,
    DeviceStatus,
    Driver,
    DriverContext,
    SelfTestResult,
    StatusReport,
)
from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer import leafcmd
from branchline.drivers.cheque_printer.book import (
    PDF,
    BookPrinter,
    BookProgress,
    as_list,
    book_from_params,
)
from branchline.drivers.cheque_printer.client import IppClient
from branchline.drivers.cheque_printer.leaf import Leaf, render_leaf
from branchline.drivers.cheque_printer.options import (
    URI_SCHEMES,
    ChequePrinterOptions,
    read_cheque_printer_options,
)

USER_ERRORS = {"media-empty": "paper out", "media-needed": "paper out", "cover-open": "cover open"}
HARDWARE_ERRORS = {"media-jam": "paper jam"}
STATUS_ATTRIBUTES = [
    "printer-state",
    "printer-state-reasons",
    "printer-make-and-model",
    "document-format-supported",
    "operations-supported",
    ipp.FEEDER_LEAVES,
    ipp.FEEDER_OCR_SERIAL,
    ipp.PRESENTER_STATE,
]
# A specimen leaf for the self-test: validated by the printer, never printed (it would spend
# a pre-printed serial).
SPECIMEN = Leaf(
    company="SPECIMEN",
    account="000000000000",
    bank_name="SPECIMEN",
    bank_code="000000000000",
    prefix="",
    serial=1,
)


def status_from_attributes(attrs: dict[str, Any]) -> StatusReport:
    """The common status model from printer-state and printer-state-reasons."""
    reasons = as_list(attrs.get("printer-state-reasons")) or ["none"]
    faults = [r.removesuffix("-error") for r in reasons if not r.endswith(("-report", "-warning"))]
    facts = {"printer_state_reasons": ",".join(reasons)}
    for name, fact in (
        (ipp.FEEDER_LEAVES, "feeder_leaves"),
        (ipp.PRESENTER_STATE, "presenter"),
        ("printer-make-and-model", "model"),
    ):
        if attrs.get(name) is not None:
            facts[fact] = str(attrs[name])
    for reason, text in HARDWARE_ERRORS.items():
        if reason in faults:
            return StatusReport(DeviceStatus.HARDWARE_ERROR, text, facts)
    for reason, text in USER_ERRORS.items():
        if reason in faults:
            return StatusReport(DeviceStatus.USER_ERROR, text, facts)
    state = attrs.get("printer-state")
    if state == ipp.PRINTER_STOPPED:
        return StatusReport(DeviceStatus.OFFLINE, f"stopped: {','.join(reasons)}", facts)
    if state == ipp.PRINTER_PROCESSING:
        return StatusReport(DeviceStatus.BUSY, "printing", facts)
    return StatusReport(DeviceStatus.ONLINE, "", facts)


class IppChequePrinterDriver(Driver):
    device_class = "cheque_printer"

    def __init__(self, context: DriverContext, options: ChequePrinterOptions) -> None:
        super().__init__(context, options)
        self.options = options
        self._client: IppClient | None = None
        self._facts: dict[str, str] = {}

    @classmethod
    def read_options(cls, reader: SectionReader) -> ChequePrinterOptions:
        return read_cheque_printer_options(reader)

    # -- life cycle -------------------------------------------------------------------------

    def _resolve_uri(self) -> str:
        if self.options.uri:
            return self.options.uri
        assert self.options.uri_file is not None
        try:
            uri = self.options.uri_file.read_text().strip()
        except OSError as exc:
            raise DeviceGone(f"printer URI file {self.options.uri_file}: {exc.strerror}") from None
        if not uri.startswith(URI_SCHEMES):
            raise DeviceGone(f"printer URI file {self.options.uri_file} holds no ipp:// URI")
        return uri

    def open(self) -> None:
        client = IppClient(
            self._resolve_uri(), self.options.user_name, self.options.request_timeout
        )
        client.tap = self.tap  # every request and reply to branchline-diag spy
        try:
            attrs = client.printer_attributes(STATUS_ATTRIBUTES)
        except BaseException:
            client.close()
            raise
        self._client = client
        self._facts = {
            "model": str(attrs.get("printer-make-and-model", "")),
            "formats": ",".join(as_list(attrs.get("document-format-supported"))),
            # A plain IPP printer (no cheque module) lacks the vendor attributes.
            "feeder_ocr": str(ipp.FEEDER_LEAVES in attrs).lower(),
            "presenter": str(ipp.PRESENTER_STATE in attrs).lower(),
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> IppClient:
        if self._client is None:
            raise DeviceGone("cheque printer is not open")
        return self._client

    # -- status ------------------------------------------------------------------------------

    def poll(self) -> StatusReport:
        return status_from_attributes(self.client.printer_attributes(STATUS_ATTRIBUTES))

    def capabilities(self) -> dict[str, str]:
        return {
            "transport": "ipp",
            "uri": self.client.uri if self._client else self.options.uri,
            "pdf": "true" if PDF in self._facts.get("formats", "") else "false",
            "model": self._facts.get("model", ""),
            "feeder_ocr": self._facts.get("feeder_ocr", "false"),
            "presenter": self._facts.get("presenter", "false"),
        }

    # -- commands ------------------------------------------------------------------------------

    def book_printer(self) -> BookPrinter:
        return BookPrinter(
            self.client,
            self.options.job_poll_interval,
            self.options.job_timeout,
            self.options.take_timeout,
        )

    def print_book(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        book = book_from_params(params)
        return self.book_printer().run(book, cancel)

    def print_pdf(self, pdf: bytes, job_name: str, cancel: CancelToken) -> int:
        """Print one PDF and follow it to completion (a leaf without the feeder check)."""
        job_id = self.client.print_job(job_name, PDF, pdf)
        self.book_printer().follow_job(BookProgress(), SPECIMEN, job_id, cancel)
        return job_id

    def jobs(self, params: dict[str, Any], cancel: CancelToken) -> dict[str, Any]:
        checks.only(params, ("which",), command="jobs")
        which = checks.one_of(
            params, "which", "not-completed", ("completed", "not-completed", "all"), command="jobs"
        )
        return {"jobs": self.client.jobs(which)}

    def commands(self) -> dict[str, Any]:
        printer = self.book_printer
        return {
            "print_book": self.print_book,
            "jobs": self.jobs,
            "print_leaf": lambda params, cancel: leafcmd.print_leaf(printer(), params, cancel),
            "present_book": lambda params, cancel: leafcmd.present_book(printer(), params, cancel),
            "retract_partial": lambda params, cancel: leafcmd.retract_partial(
                printer(), params, cancel
            ),
        }

    def self_test(self, cancel: CancelToken) -> SelfTestResult:
        report = self.poll()
        if report.status not in (DeviceStatus.ONLINE, DeviceStatus.BUSY):
            return SelfTestResult(False, f"printer not ready: {report.status} {report.detail}")
        # Validate-Job of a specimen leaf: the printer checks the job, nothing is printed.
        self.client.validate_job("self-test specimen", PDF)
        render_leaf(SPECIMEN)
        leaves = report.facts.get("feeder_leaves", "unknown")
        return SelfTestResult(
            True, f"printer ready, specimen leaf job validated, {leaves} blank leaves loaded"
        )

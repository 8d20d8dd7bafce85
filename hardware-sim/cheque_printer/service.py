"""The simulated module's IPP operations: one request message in, one response message out.

Checks follow RFC 8011 section 4.1: the first two operation attributes must be
attributes-charset and attributes-natural-language; a missing target or job-id is a bad
request, an unknown job not-found. Every refusal carries a status-message saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer.ipp_codec import (
    BOOLEAN,
    CHARSET,
    ENUM,
    INTEGER,
    JOB_GROUP,
    KEYWORD,
    MIME_MEDIA_TYPE,
    NAME,
    NATURAL_LANGUAGE,
    NO_VALUE,
    OPERATION_GROUP,
    PRINTER_GROUP,
    TEXT,
    URI,
    Attribute,
    IppMessage,
)
from branchline.sim.cheque_printer.model import ChequePrinterModel, Job

PDF = "application/pdf"
FORMATS = (PDF, "application/octet-stream")
OPERATIONS = (
    ipp.PRINT_JOB,
    ipp.VALIDATE_JOB,
    ipp.CANCEL_JOB,
    ipp.GET_JOB_ATTRIBUTES,
    ipp.GET_JOBS,
    ipp.GET_PRINTER_ATTRIBUTES,
    ipp.PRESENT_BOOK,
    ipp.RETRACT_BOOK,
)
DEFAULT_JOB_ATTRIBUTES = ("job-id", "job-uri")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IppService:
    def __init__(
        self, model: ChequePrinterModel, uri: Callable[[], str], kick: Callable[[], None]
    ) -> None:
        self.model = model
        self._uri = uri  # the printer's own URI (known once the endpoint is bound)
        self._kick = kick  # wake the job runner
        self._started = time.monotonic()

    def handle(self, request: IppMessage) -> IppMessage:
        response = IppMessage(code=ipp.OK, request_id=request.request_id)
        op = response.add_group(OPERATION_GROUP)
        op["attributes-charset"] = Attribute(CHARSET, ["utf-8"])
        op["attributes-natural-language"] = Attribute(NATURAL_LANGUAGE, ["en"])
        try:
            self._check_header(request)
            self._dispatch(request, response)
        except Refused as exc:
            response.code = exc.status
            response.groups = response.groups[:1]
            op["status-message"] = Attribute(TEXT, [str(exc)])
        return response

    @staticmethod
    def _check_header(request: IppMessage) -> None:
        if request.version[0] not in (1, 2):
            raise Refused(0x0503, f"version {request.version[0]}.{request.version[1]}")
        names = list(request.group(OPERATION_GROUP))
        if names[:2] != ["attributes-charset", "attributes-natural-language"]:
            raise Refused(
                ipp.CLIENT_ERROR_BAD_REQUEST,
                "attributes-charset and attributes-natural-language must come first",
            )
        if "printer-uri" not in names and "job-uri" not in names:
            raise Refused(ipp.CLIENT_ERROR_BAD_REQUEST, "printer-uri: missing")

    def _dispatch(self, request: IppMessage, response: IppMessage) -> None:
        op = request.code
        if op == ipp.GET_PRINTER_ATTRIBUTES:
            self._printer_attributes(request, response)
        elif op == ipp.VALIDATE_JOB:
            self._check_job_request(request)
        elif op == ipp.PRINT_JOB:
            self._print_job(request, response)
        elif op == ipp.GET_JOB_ATTRIBUTES:
            self._add_job(response, self._job(request), _requested(request, None))
        elif op == ipp.GET_JOBS:
            self._get_jobs(request, response)
        elif op == ipp.CANCEL_JOB:
            job = self._job(request)
            if not self.model.cancel(job):
                raise Refused(
                    ipp.CLIENT_ERROR_NOT_POSSIBLE,
                    f"job {job.job_id} is already {ipp.JOB_STATE_NAMES[job.state]}",
                )
            self._kick()
        elif op == ipp.PRESENT_BOOK:
            self._presenter(self.model.present)
        elif op == ipp.RETRACT_BOOK:
            self._presenter(self.model.retract)
        else:
            raise Refused(
                ipp.SERVER_ERROR_OPERATION_NOT_SUPPORTED, f"operation 0x{op:04x} not supported"
            )

    @staticmethod
    def _presenter(action: Callable[[], None]) -> None:
        try:
            action()
        except ValueError as exc:
            raise Refused(ipp.CLIENT_ERROR_NOT_POSSIBLE, str(exc)) from None

    # -- printer --------------------------------------------------------------------------

    def printer_attributes(self) -> dict[str, Attribute]:
        model = self.model
        uri = self._uri()
        ocr = model.ocr_serial()
        queued = sum(1 for j in model.jobs.values() if not j.finished)
        return {
            "printer-uri-supported": Attribute(URI, [uri]),
            "uri-security-supported": Attribute(KEYWORD, ["none"]),
            "uri-authentication-supported": Attribute(KEYWORD, ["none"]),
            "printer-name": Attribute(NAME, ["branchline-cheque-printer"]),
            "printer-make-and-model": Attribute(TEXT, ["Branchline simulated cheque printer"]),
            "printer-state": Attribute(ENUM, [model.printer_state()]),
            "printer-state-reasons": Attribute(KEYWORD, model.state_reasons()),
            "printer-is-accepting-jobs": Attribute(BOOLEAN, [True]),
            "printer-up-time": Attribute(INTEGER, [int(time.monotonic() - self._started) + 1]),
            "queued-job-count": Attribute(INTEGER, [queued]),
            "ipp-versions-supported": Attribute(KEYWORD, ["1.1", "2.0"]),
            "operations-supported": Attribute(ENUM, list(OPERATIONS)),
            "charset-configured": Attribute(CHARSET, ["utf-8"]),
            "charset-supported": Attribute(CHARSET, ["utf-8"]),
            "natural-language-configured": Attribute(NATURAL_LANGUAGE, ["en"]),
            "generated-natural-language-supported": Attribute(NATURAL_LANGUAGE, ["en"]),
            "document-format-default": Attribute(MIME_MEDIA_TYPE, [PDF]),
            "document-format-supported": Attribute(MIME_MEDIA_TYPE, list(FORMATS)),
            "pdl-override-supported": Attribute(KEYWORD, ["not-attempted"]),
            "compression-supported": Attribute(KEYWORD, ["none"]),
            ipp.FEEDER_OCR_SERIAL: Attribute(TEXT, [ocr]) if ocr else Attribute(NO_VALUE, [None]),
            ipp.FEEDER_LEAVES: Attribute(INTEGER, [len(model.cassette)]),
            ipp.PRESENTER_STATE: Attribute(KEYWORD, [model.presenter_state]),
            ipp.PRESENTER_LEAVES: Attribute(INTEGER, [len(model.presenter_leaves)]),
            ipp.RETAINED_BOOKS: Attribute(INTEGER, [model.retained_books]),
        }

    def _printer_attributes(self, request: IppMessage, response: IppMessage) -> None:
        wanted = _requested(request, None)
        group = response.add_group(PRINTER_GROUP)
        for name, attribute in self.printer_attributes().items():
            if wanted is None or name in wanted:
                group[name] = attribute

    # -- jobs -----------------------------------------------------------------------------

    def _check_job_request(self, request: IppMessage) -> None:
        op = request.group(OPERATION_GROUP)
        fmt = op.get("document-format")
        if fmt is not None and fmt.value not in FORMATS:
            raise Refused(
                ipp.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                f"document-format {fmt.value!r} not supported; supported: {', '.join(FORMATS)}",
            )
        for name in ("job-name", "requesting-user-name"):
            if name in op and not isinstance(op[name].value, str):
                raise Refused(ipp.CLIENT_ERROR_BAD_REQUEST, f"{name}: must be a name")

    def _print_job(self, request: IppMessage, response: IppMessage) -> None:
        self._check_job_request(request)
        if not request.data.startswith(b"%PDF-"):
            raise Refused(
                ipp.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                "document data is not a PDF (no %PDF- header)",
            )
        op = request.group(OPERATION_GROUP)
        name = op["job-name"].value if "job-name" in op else "untitled"
        user = op["requesting-user-name"].value if "requesting-user-name" in op else "anonymous"
        job = self.model.add_job(name, user, request.data)
        self._kick()
        self._add_job(response, job, ("job-id", "job-uri", "job-state", "job-state-reasons"))

    def _job(self, request: IppMessage) -> Job:
        op = request.group(OPERATION_GROUP)
        job_id: object = None
        if "job-id" in op:
            job_id = op["job-id"].value
        elif "job-uri" in op:
            tail = str(op["job-uri"].value).rsplit("/", 1)[-1]
            job_id = int(tail) if tail.isdigit() else None
        if not isinstance(job_id, int):
            raise Refused(ipp.CLIENT_ERROR_BAD_REQUEST, "job-id: missing or not an integer")
        job = self.model.jobs.get(job_id)
        if job is None:
            raise Refused(ipp.CLIENT_ERROR_NOT_FOUND, f"job-id {job_id}: no such job")
        return job

    def job_attributes(self, job: Job) -> dict[str, Attribute]:
        attrs = {
            "job-id": Attribute(INTEGER, [job.job_id]),
            "job-uri": Attribute(URI, [f"{self._uri()}/{job.job_id}"]),
            "job-printer-uri": Attribute(URI, [self._uri()]),
            "job-name": Attribute(NAME, [job.name]),
            "job-originating-user-name": Attribute(NAME, [job.user]),
            "job-state": Attribute(ENUM, [job.state]),
            "job-state-reasons": Attribute(KEYWORD, list(job.reasons)),
            "job-impressions-completed": Attribute(
                INTEGER, [1 if job.state == ipp.JOB_COMPLETED else 0]
            ),
        }
        if job.serial is not None:
            attrs["branchline-job-serial"] = Attribute(TEXT, [f"{job.serial:08d}"])
        return attrs

    def _add_job(self, response: IppMessage, job: Job, wanted: tuple[str, ...] | None) -> None:
        group = response.add_group(JOB_GROUP)
        for name, attribute in self.job_attributes(job).items():
            if wanted is None or name in wanted:
                group[name] = attribute

    def _get_jobs(self, request: IppMessage, response: IppMessage) -> None:
        op = request.group(OPERATION_GROUP)
        which = op["which-jobs"].value if "which-jobs" in op else "not-completed"
        if which not in ("completed", "not-completed", "all"):
            raise Refused(
                ipp.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                f"which-jobs {which!r}: use completed, not-completed or all",
            )
        limit = op["limit"].value if "limit" in op else None
        wanted = _requested(request, DEFAULT_JOB_ATTRIBUTES)
        jobs = sorted(self.model.jobs.values(), key=lambda j: j.job_id, reverse=True)
        shown = 0
        for job in jobs:
            if which != "all" and job.finished != (which == "completed"):
                continue
            if isinstance(limit, int) and shown >= limit:
                break
            self._add_job(response, job, wanted)
            shown += 1


def _requested(request: IppMessage, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """requested-attributes; None means every attribute."""
    attr = request.group(OPERATION_GROUP).get("requested-attributes")
    if attr is None:
        return default
    names = tuple(str(v) for v in attr.values)
    if "all" in names or "printer-description" in names or "job-template" in names:
        return None
    return names

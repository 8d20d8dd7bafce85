"""The simulated cheque printer: an IPP printer on a loopback port (see
branchline.sim.cheque_printer) that prints each job on the next pre-printed leaf of its
cassette and renders it to ``<run-dir>/cheque_printer/job-NNNNN.png``.

Faults: media_empty, media_jam, cover_open, wrong_stock (the feeder holds leaves of another
range: its OCR reads a serial that is not the next allocated one). Actions:
``load_stock`` (first, count), ``jam_after`` (leaves), ``take_book``, ``take_on_present``
(on: true/false, a customer waiting at the slot who takes each book as it is presented),
``set_leaf_time`` (seconds), ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from branchline.common.logs import log_event
from branchline.drivers.cheque_printer import interface as ipp
from branchline.drivers.cheque_printer.ipp_codec import IppMessage
from branchline.sim.cheque_printer.endpoint import IppEndpoint
from branchline.sim.cheque_printer.model import ChequePrinterModel, Job
from branchline.sim.cheque_printer.render import render_pdf
from branchline.sim.cheque_printer.service import IppService
from branchline.sim.devices.base import SimError, SimulatedDevice

log = logging.getLogger("branchline.sim.cheque_printer")

FAULTS = ("media_empty", "media_jam", "cover_open", "wrong_stock")
DEFAULT_STOCK = (10_000_001, 100)  # a pack loaded at power-on so the device is usable
DEFAULT_LEAF_TIME = 0.05  # seconds the mechanism takes per leaf


def _int(params: dict[str, str], name: str, low: int, high: int) -> int:
    raw = params.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise SimError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SimError(f"{name}: must be {low} to {high}, got {value}")
    return value


class SimulatedChequePrinter(SimulatedDevice):
    name = "cheque_printer"
    faults_available = FAULTS

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.model = ChequePrinterModel()
        self.model.load_stock(*DEFAULT_STOCK)
        self.output_dir = run_dir / "cheque_printer"
        self.leaf_time = DEFAULT_LEAF_TIME
        self.endpoint = IppEndpoint(run_dir / "dev" / "cheque_printer.uri", self._handle)
        self.service = IppService(self.model, lambda: self.endpoint.uri, self._kick)
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self.last_output = ""

    def make_line(self) -> IppEndpoint:
        return self.endpoint

    def on_bytes(self, data: bytes) -> None:
        """No byte stream: everything arrives as IPP requests on the endpoint."""

    def _handle(self, request: IppMessage) -> IppMessage:
        self._ensure_runner()
        return self.service.handle(request)

    # -- job runner -------------------------------------------------------------------------

    def _ensure_runner(self) -> None:
        if self._runner is None or self._runner.done():
            self._wake = asyncio.Event()
            self._runner = asyncio.get_running_loop().create_task(self._run_jobs())

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run_jobs(self) -> None:
        assert self._wake is not None
        while True:
            job = self.model.next_runnable()
            if job is None or (job.state == ipp.JOB_STOPPED and self.model.stopped):
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._print(job)
            except Exception:  # a simulator bug must not stop the queue for good
                log.exception("cheque printer job %d failed", job.job_id)
                job.state, job.reasons = ipp.JOB_ABORTED, ["aborted-by-system"]

    async def _print(self, job: Job) -> None:
        if not self.model.start_leaf(job):
            log_event(log, "sim_cheque_job_stopped", job=job.job_id, reasons=job.reasons)
            return
        await asyncio.sleep(self.leaf_time)
        path = self.output_dir / f"job-{job.job_id:05d}.png"
        try:
            await asyncio.to_thread(render_pdf, job.document, path)
        except ValueError as exc:
            job.state, job.reasons = ipp.JOB_ABORTED, ["document-format-error"]
            log_event(log, "sim_cheque_bad_document", job=job.job_id, error=str(exc))
            return
        self.model.finish_leaf(job, str(path))
        self.last_output = str(path)
        log_event(log, "sim_cheque_leaf_printed", job=job.job_id, serial=job.serial, path=str(path))

    # -- control ------------------------------------------------------------------------------

    def set_fault(self, fault: str, active: bool) -> None:
        super().set_fault(fault, active)
        setattr(self.model, fault, active)
        self._kick()

    def act(self, action: str, params: dict[str, str]) -> dict[str, str]:
        try:
            if action == "load_stock":
                first = _int(params, "first", 1, 99_999_999)
                count = _int(params, "count", 1, 10_000)
                self.model.load_stock(first, count)
                self._kick()
            elif action == "jam_after":
                self.model.jam_after = _int(params, "leaves", 0, 10_000)
            elif action == "take_book":
                self.model.take()
            elif action == "take_on_present":
                on = params.get("on", "")
                if on not in ("true", "false"):
                    raise SimError("on: expected true or false")
                self.model.take_on_present = on == "true"
            elif action == "set_leaf_time":
                try:
                    seconds = float(params.get("seconds", ""))
                except ValueError:
                    raise SimError("seconds: expected a number") from None
                if not 0 <= seconds <= 10:
                    raise SimError("seconds: must be 0 to 10")
                self.leaf_time = seconds
            elif action != "status":
                raise SimError(
                    f"action: cheque_printer has no action {action!r}; have load_stock, "
                    "jam_after, take_book, take_on_present, set_leaf_time, status"
                )
        except ValueError as exc:
            raise SimError(f"{action}: {exc}") from None
        return self.facts()

    def facts(self) -> dict[str, str]:
        model = self.model
        return {
            "uri": self.endpoint.uri if self.endpoint.plugged else "",
            "feeder_leaves": str(len(model.cassette)),
            "feeder_next_serial": f"{model.cassette[0]:08d}" if model.cassette else "",
            "ocr_serial": model.ocr_serial() or "",
            "leaves_printed": str(model.leaves_printed),
            "spoiled": ",".join(f"{s:08d}" for s in model.spoiled),
            "presenter": model.presenter_state,
            "presenter_leaves": ",".join(f"{s:08d}" for s in model.presenter_leaves),
            "retained_books": str(model.retained_books),
            "retained": ",".join(f"{s:08d}" for s in model.retained),
            "printer_state_reasons": ",".join(model.state_reasons()),
            "bad_frames": str(self.endpoint.bad_frames),
            "last_output": self.last_output,
            "output_dir": str(self.output_dir),
        }

    async def aclose(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

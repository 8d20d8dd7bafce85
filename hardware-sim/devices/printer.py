"""The simulated ESC/POS receipt printer: parses what it receives, answers DLE EOT status
requests from its sensors, and renders each cut receipt to a PNG in ``<run-dir>/printer/``."""

from __future__ import annotations

import logging
from pathlib import Path

from branchline.common.logs import log_event
from branchline.sim.devices.base import SimulatedDevice
from branchline.sim.printer.commands import Command, Cut, Garbage, StatusRequest, Unknown
from branchline.sim.printer.parser import EscPosParser
from branchline.sim.printer.render import render_receipt, save_receipt
from branchline.sim.printer.state import PrinterModel

log = logging.getLogger("branchline.sim.printer")

FAULTS = {
    "paper_out": "paper_out",
    "paper_near_end": "paper_near_end",
    "cover_open": "cover_open",
    "autocutter_error": "autocutter_error",
}
# A job that never gets its cut must not grow without bound.
MAX_PENDING_COMMANDS = 100_000


class SimulatedPrinter(SimulatedDevice):
    name = "printer"
    faults_available = tuple(FAULTS)

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.model = PrinterModel()
        self.parser = EscPosParser()
        self.output_dir = run_dir / "printer"
        self._job: list[Command] = []
        self.printed = 0
        self.discarded = 0
        self.garbage_bytes = 0
        self.last_receipt = ""

    def set_fault(self, fault: str, active: bool) -> None:
        super().set_fault(fault, active)
        setattr(self.model, FAULTS[fault], active)

    def reset_line(self) -> None:
        self.parser.reset()
        self._job.clear()

    def on_bytes(self, data: bytes) -> None:
        for command in self.parser.feed(data):
            if isinstance(command, StatusRequest):
                # Real-time: answered at once, whatever the printer is doing.
                self.send(self.model.answer(command))
            elif isinstance(command, Garbage | Unknown):
                self.garbage_bytes += len(command.data)
            elif not self.model.can_print:
                # An offline printer does not print; what it is sent is lost, as on hardware.
                self.discarded += 1
            else:
                self._job.append(command)
                if isinstance(command, Cut):
                    self._finish_job()
                elif len(self._job) > MAX_PENDING_COMMANDS:
                    self._job.clear()

    def _finish_job(self) -> None:
        job, self._job = self._job, []
        image = render_receipt(job)
        path = save_receipt(image, self.output_dir)
        self.printed += 1
        self.last_receipt = str(path)
        log_event(log, "sim_receipt_printed", path=str(path))

    def facts(self) -> dict[str, str]:
        return {
            "receipts_printed": str(self.printed),
            "commands_discarded_offline": str(self.discarded),
            "garbage_bytes": str(self.garbage_bytes),
            "last_receipt": self.last_receipt,
            "output_dir": str(self.output_dir),
        }

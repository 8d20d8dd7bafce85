"""The cheque printer's mechanics: cassette of pre-printed blank stock, the feeder's OCR of
the next leaf's serial, the print queue, faults and the book presenter.

Pure state; the IPP service (service.py) reads and changes it, the job runner advances jobs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from branchline.drivers.cheque_printer import interface as ipp

# Wrong stock: the feeder holds leaves of another range; its OCR reads this far off.
WRONG_STOCK_OFFSET = 50_000_000
SERIAL_LIMIT = 10**8


@dataclass
class Job:
    job_id: int
    name: str
    user: str
    document: bytes
    state: int = ipp.JOB_PENDING
    reasons: list[str] = field(default_factory=lambda: ["none"])
    serial: int | None = None  # the pre-printed serial of the leaf it was printed on
    output: str = ""  # PNG path once printed

    @property
    def finished(self) -> bool:
        return self.state in (ipp.JOB_CANCELED, ipp.JOB_ABORTED, ipp.JOB_COMPLETED)


@dataclass
class ChequePrinterModel:
    cassette: deque[int] = field(default_factory=deque)
    jobs: dict[int, Job] = field(default_factory=dict)
    next_job_id: int = 1
    media_jam: bool = False
    cover_open: bool = False
    media_empty: bool = False  # the sensor forced empty even with stock loaded
    wrong_stock: bool = False
    jam_after: int | None = None  # jam when this many more leaves have printed
    printed_unpresented: list[int] = field(default_factory=list)
    presenter_state: str = "empty"
    # A customer waiting at the slot: takes each book the moment it is presented.
    take_on_present: bool = False
    presenter_leaves: list[int] = field(default_factory=list)
    retained_books: int = 0
    retained: list[int] = field(default_factory=list)  # serials in the retain bin
    spoiled: list[int] = field(default_factory=list)
    leaves_printed: int = 0

    # -- stock --------------------------------------------------------------------------

    def load_stock(self, first: int, count: int) -> None:
        """Staff load a pack of pre-printed leaves; it replaces what the cassette held."""
        if not 0 < first < SERIAL_LIMIT or count < 1 or first + count > SERIAL_LIMIT:
            raise ValueError(f"serial range {first}+{count} is not within 1..{SERIAL_LIMIT - 1}")
        self.cassette = deque(range(first, first + count))

    def ocr_serial(self) -> str | None:
        """What the feeder's OCR reads on the next leaf (None: no leaf under the reader)."""
        if not self.cassette or self.media_empty:
            return None
        serial = self.cassette[0]
        if self.wrong_stock:
            serial = (serial + WRONG_STOCK_OFFSET) % SERIAL_LIMIT
        return f"{serial:08d}"

    # -- state ----------------------------------------------------------------------------

    def state_reasons(self) -> list[str]:
        reasons = []
        if self.media_jam:
            reasons.append("media-jam")
        if self.cover_open:
            reasons.append("cover-open")
        if self.media_empty or not self.cassette:
            reasons.append("media-empty")
        return reasons or ["none"]

    @property
    def stopped(self) -> bool:
        return self.media_jam or self.cover_open or self.media_empty or not self.cassette

    def printer_state(self) -> int:
        if self.stopped:
            return ipp.PRINTER_STOPPED
        if any(j.state == ipp.JOB_PROCESSING for j in self.jobs.values()):
            return ipp.PRINTER_PROCESSING
        return ipp.PRINTER_IDLE

    # -- jobs -----------------------------------------------------------------------------

    def add_job(self, name: str, user: str, document: bytes) -> Job:
        job = Job(self.next_job_id, name, user, document)
        self.next_job_id += 1
        self.jobs[job.job_id] = job
        # Keep the history bounded the way a printer's job list is.
        for old in sorted(self.jobs)[:-500]:
            if self.jobs[old].finished:
                del self.jobs[old]
        return job

    def next_runnable(self) -> Job | None:
        for job_id in sorted(self.jobs):
            job = self.jobs[job_id]
            if job.state in (ipp.JOB_PENDING, ipp.JOB_STOPPED, ipp.JOB_PROCESSING):
                return job
        return None

    def start_leaf(self, job: Job) -> bool:
        """Feed a leaf for ``job``; False (job stopped) when the printer cannot."""
        if self.stopped:
            job.state = ipp.JOB_STOPPED
            job.reasons = ["printer-stopped"]
            return False
        job.state = ipp.JOB_PROCESSING
        job.reasons = ["job-printing"]
        if self.jam_after is not None and self.jam_after <= 0:
            self.jam_after = None
            self.media_jam = True
        if self.media_jam:
            # The leaf jammed in the path: it is spoiled, the job aborted.
            self.spoiled.append(self.cassette.popleft())
            job.state = ipp.JOB_ABORTED
            job.reasons = ["aborted-by-system"]
            return False
        job.serial = self.cassette.popleft()
        return True

    def finish_leaf(self, job: Job, output: str) -> None:
        job.output = output
        if job.state == ipp.JOB_CANCELED:
            # Canceled while on the drum: the leaf came out printed, it is spoiled.
            if job.serial is not None:
                self.spoiled.append(job.serial)
            return
        job.state = ipp.JOB_COMPLETED
        job.reasons = ["job-completed-successfully"]
        self.leaves_printed += 1
        if job.serial is not None:
            self.printed_unpresented.append(job.serial)
        if self.jam_after is not None:
            self.jam_after -= 1

    def cancel(self, job: Job) -> bool:
        if job.finished:
            return False
        job.state = ipp.JOB_CANCELED
        job.reasons = ["job-canceled-by-user"]
        return True

    # -- presenter --------------------------------------------------------------------------

    def present(self) -> None:
        if self.presenter_state == "presented":
            raise ValueError("a book is already presented")
        if not self.printed_unpresented:
            raise ValueError("no printed leaves to present")
        self.presenter_leaves, self.printed_unpresented = self.printed_unpresented, []
        self.presenter_state = "taken" if self.take_on_present else "presented"

    def take(self) -> None:
        if self.presenter_state != "presented":
            raise ValueError(f"no book presented (presenter is {self.presenter_state})")
        self.presenter_state = "taken"

    def retract(self) -> None:
        """Pull the presented book, or the leaves of a book cut short, into the retain bin."""
        if self.media_jam:
            raise ValueError("the paper path is jammed")
        if self.presenter_state == "presented":
            self.retained.extend(self.presenter_leaves)
            self.presenter_leaves = []
        elif self.printed_unpresented:
            self.retained.extend(self.printed_unpresented)
            self.printed_unpresented = []
        else:
            raise ValueError(f"nothing to retract (presenter is {self.presenter_state})")
        self.presenter_state = "retracted"
        self.retained_books += 1

"""ID-card read (find + select + read text and photo) through the driver, against serial wire time.

The driver talks to ``branchline-sim``'s ID reader over a real pseudo-terminal at 115200 baud.
Figures are the median time of one ``read_card`` and its ratio to the wire time of the bytes
it moved (request and reply bytes, 10 bits each at the configured baud rate).

A pty does not enforce baud timing, so the unpaced ratio can come out below 1: it measures
the driver and the pty, not the wire. The paced run has the simulated reader send its replies
at 115200 baud (the device's ``set_baud`` option), which is what a real line costs; its ratio
shows the driver's overhead on top of the wire (1.0 would be none).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from branchline.drivers.base import CancelToken, DriverContext
from branchline.drivers.id_reader.driver import Ga467IdReaderDriver
from branchline.drivers.id_reader.options import IdReaderOptions
from branchline.v1 import sim_control_pb2, sim_control_pb2_grpc

BAUD = 115200  # the configured (and default) rate of the ID reader
READS = 10
NOTE = (
    "note: a pty does not enforce baud timing, so the unpaced ratio can be below 1; "
    f"the paced run has the simulator send at {BAUD} baud"
)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _measure(driver: Ga467IdReaderDriver, moved: list[int]) -> tuple[float, int]:
    """Median seconds of one read and the bytes one read moves."""
    driver.read_card({"timeout_s": 5}, CancelToken())  # warm-up
    times: list[float] = []
    sizes: list[int] = []
    for _ in range(READS):
        moved[0] = 0
        started = time.perf_counter()
        result = driver.read_card({"timeout_s": 5}, CancelToken())
        times.append(time.perf_counter() - started)
        sizes.append(moved[0])
        if result["photo_bytes"] != 1024:
            raise RuntimeError("the read returned no photo")
    return statistics.median(times), max(sizes)


# long: a benchmark script: set-up, timed loop and report in reading order
def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bl-bench-", dir="/tmp") as tmp:
        run_dir = Path(tmp) / "sim"
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "branchline.sim.main",
                "--run-dir",
                str(run_dir),
                "--devices",
                "id_reader",
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        channel = grpc.insecure_channel(f"unix:{run_dir / 'control.sock'}")
        driver: Ga467IdReaderDriver | None = None
        try:
            _wait(lambda: (run_dir / "control.sock").exists(), 30, "the simulator")
            control = sim_control_pb2_grpc.SimControlStub(channel)

            def act(action: str, **params: str) -> None:
                control.Act(
                    sim_control_pb2.ActRequest(device="id_reader", action=action, params=params),
                    timeout=5,
                )

            act("place", card="valid")
            options = IdReaderOptions(
                port=str(run_dir / "dev" / "id_reader"),
                baudrate=BAUD,
                status_timeout=0.5,
                reply_timeout=3.0,
                find_interval=0.2,
            )
            driver = Ga467IdReaderDriver(DriverContext("BENCH", "BENCH", "id_reader"), options)
            moved = [0]

            def count(direction: str, data: bytes) -> None:
                moved[0] += len(data)

            driver.tap = count
            driver.open()
            unpaced, size = _measure(driver, moved)
            act("set_baud", baud=str(BAUD))
            paced, _ = _measure(driver, moved)
        finally:
            if driver is not None:
                driver.close()
            channel.close()
            sim.terminate()
            sim.wait(10)
    wire = size * 10 / BAUD
    print(f"   {NOTE}")
    return {
        "bytes_per_read": float(size),
        "wire_seconds": wire,
        "unpaced_read_seconds": unpaced,
        "unpaced_ratio_to_wire": unpaced / wire,
        "paced_read_seconds": paced,
        "paced_ratio_to_wire": paced / wire,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:40} {value:14.4f}")

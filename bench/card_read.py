"""Card reader: a full card read (read_tracks + read_chip) against the serial wire time.

The driver talks to the simulated reader over a real pseudo-terminal, in process. A pty
moves bytes as fast as the kernel can, whatever baud rate the port is set to, so the wire
time (every byte both ways at 10 bits per byte at the configured rate) is the ceiling a real
line would impose; ``measured / wire`` below 1 means the driver and the exchange protocol
add less than the wire itself would. Card travel time is set to zero in the simulator so
only the protocol is measured.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from branchline.drivers.base import CancelToken, DriverContext
from branchline.drivers.card_reader.driver import Crt591CardReaderDriver
from branchline.drivers.card_reader.options import CardReaderOptions
from branchline.sim.card.inprocess import InProcessSim
from branchline.sim.devices.card_reader import SimulatedCardReader

BAUDRATE = 38400  # the rate the integration stack configures for the card reader
ROUNDS = 20


class ByteCounter:
    def __init__(self) -> None:
        self.tx = 0
        self.rx = 0

    def __call__(self, direction: str, data: bytes) -> None:
        if direction == "tx":
            self.tx += len(data)
        else:
            self.rx += len(data)


def _insert(sim: InProcessSim, driver: Crt591CardReaderDriver) -> None:
    device = sim.device
    assert isinstance(device, SimulatedCardReader)
    waiter = threading.Thread(
        target=lambda: driver.accept_card({"timeout_s": 5}, CancelToken()), daemon=True
    )
    waiter.start()
    deadline = time.monotonic() + 5
    while not device.insertion_enabled:
        if time.monotonic() > deadline:
            raise RuntimeError("the driver never enabled card insertion")
        time.sleep(0.001)
    sim.call(device.act, "insert", {"card": "visa"})
    waiter.join(5)


def run(baudrate: int = BAUDRATE, rounds: int = ROUNDS) -> dict[str, float]:
    device = SimulatedCardReader(Path(tempfile.gettempdir()), travel_seconds=0.0)
    with InProcessSim(device) as sim:
        options = CardReaderOptions(port=str(sim.path), baudrate=baudrate, insert_poll=0.005)
        driver = Crt591CardReaderDriver(DriverContext("BENCH", "BENCH", "card_reader"), options)
        counter = ByteCounter()
        driver.tap = counter
        driver.open()
        try:
            _insert(sim, driver)
            cancel = CancelToken()

            def measure(count: int) -> float:
                counter.tx = counter.rx = 0
                started = time.perf_counter()
                for _ in range(count):
                    driver.read_tracks({}, cancel)
                    driver.read_chip({}, cancel)
                return (time.perf_counter() - started) / count

            unpaced = measure(rounds)
            wire_bytes = (counter.tx + counter.rx) / rounds
            # Now the simulated cable runs at the configured rate, as a real line does.
            sim.call(sim.line.set_baud, baudrate)
            paced = measure(max(3, rounds // 4))
        finally:
            driver.close()
    wire = wire_bytes * 10 / baudrate
    return {
        "baudrate": float(baudrate),
        "bytes_per_read": wire_bytes,
        "wire_ms_per_read": wire * 1000,
        "unpaced_ms_per_read": unpaced * 1000,
        "paced_ms_per_read": paced * 1000,
        "paced_over_wire": paced / wire,
    }


if __name__ == "__main__":
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else BAUDRATE
    print(json.dumps(run(rate), indent=2))

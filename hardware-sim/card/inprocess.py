"""One simulated device on a real pseudo-terminal, its asyncio loop on a background thread.

For tests and benchmarks that drive a driver directly (no agent, no simulator process):

    with InProcessSim(SimulatedCardReader(tmp)) as sim:
        driver = ...(port=str(sim.path))
        sim.call(sim.device.act, "insert", {"card": "visa"})
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from branchline.sim.devices.base import SimulatedDevice
from branchline.sim.pty_line import PtyLine

T = TypeVar("T")


class InProcessSim:
    def __init__(self, device: SimulatedDevice, run_dir: Path | None = None) -> None:
        self.device = device
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if run_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bl-sim-")
            run_dir = Path(self._tmp.name)
        self.path = run_dir / "dev" / device.name
        self.line = PtyLine(self.path, device.on_bytes)
        device.send = self.line.write
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> InProcessSim:
        self._thread.start()
        self.call(self.line.plug)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.call(self.line.unplug)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on the simulator's loop thread and return its result."""

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(5)

    def unplug(self) -> None:
        self.call(self.line.unplug)

    def replug(self) -> None:
        self.call(self.device.reset_line)
        self.call(self.line.plug)

"""The hardware simulator: one pseudo-terminal per device plus the control socket."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc

from branchline.common.logs import log_event
from branchline.sim.control import SimControlServicer
from branchline.sim.devices.base import Line, SimulatedDevice
from branchline.sim.pty_line import PtyLine
from branchline.v1 import sim_control_pb2_grpc

log = logging.getLogger("branchline.sim")

CONTROL_SOCKET = "control.sock"


@dataclass
class Slot:
    device: SimulatedDevice
    line: Line


# Every simulated device: name -> "module:class". One line per device.
SIM_DEVICES = {
    "printer": "branchline.sim.devices.printer:SimulatedPrinter",
    "tube_station": "branchline.sim.devices.tube_station:SimulatedTubeStation",
    "card_reader": "branchline.sim.devices.card_reader:SimulatedCardReader",
    "id_reader": "branchline.sim.devices.id_reader:SimulatedIdReader",
    "pin_pad": "branchline.sim.devices.pin_pad:SimulatedPinPad",
    "face_camera": "branchline.sim.devices.face_camera:SimulatedFaceCamera",
    "cheque_printer": "branchline.sim.devices.cheque_printer:SimulatedChequePrinter",
}


def device_factories() -> dict[str, type[SimulatedDevice]]:
    """Every simulated device class by name."""
    factories: dict[str, type[SimulatedDevice]] = {}
    for name, target in SIM_DEVICES.items():
        module_name, _, class_name = target.partition(":")
        factories[name] = getattr(importlib.import_module(module_name), class_name)
    return factories


class Simulator:
    def __init__(self, run_dir: Path, devices: list[str]) -> None:
        self.run_dir = run_dir
        factories = device_factories()
        self.slots: dict[str, Slot] = {}
        for name in devices:
            device = factories[name](run_dir)
            # A network device brings its own endpoint; the others sit on a pseudo-terminal.
            line = device.make_line() or PtyLine(run_dir / "dev" / name, device.on_bytes)
            device.send = line.write
            self.slots[name] = Slot(device, line)
        self._stop = asyncio.Event()

    def unplug(self, name: str) -> None:
        self.slots[name].line.unplug()
        log_event(log, "sim_unplug", device=name)

    def replug(self, name: str) -> None:
        slot = self.slots[name]
        slot.device.reset_line()
        slot.line.plug()
        log_event(log, "sim_replug", device=name, tty=slot.line.slave_name)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in self.slots:
            self.replug(name)
        control_path = self.run_dir / CONTROL_SOCKET
        with contextlib.suppress(FileNotFoundError):
            control_path.unlink()
        server = grpc.aio.server()
        sim_control_pb2_grpc.add_SimControlServicer_to_server(SimControlServicer(self), server)
        old = os.umask(0o117)
        try:
            server.add_insecure_port(f"unix:{control_path}")
            await server.start()
        finally:
            os.umask(old)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        log_event(
            log,
            "sim_ready",
            run_dir=str(self.run_dir),
            control=str(control_path),
            devices=sorted(self.slots),
        )
        print(
            f"branchline-sim ready: devices in {self.run_dir / 'dev'}, control {control_path}",
            flush=True,
        )
        await self._stop.wait()
        await server.stop(1.0)
        for name in self.slots:
            self.slots[name].line.unplug()
        with contextlib.suppress(FileNotFoundError):
            control_path.unlink()
        return 0

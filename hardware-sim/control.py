"""SimControl: scripted customers and fault injection over a Unix socket. Thin servicer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from branchline.sim.devices.base import SimError
from branchline.v1 import sim_control_pb2 as pb
from branchline.v1 import sim_control_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.sim.simulator import Simulator

MAX_GARBAGE = 64 * 1024


class SimControlServicer(pb_grpc.SimControlServicer):
    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def _describe(self, name: str) -> pb.SimDevice:
        slot = self._sim.slots[name]
        return pb.SimDevice(
            name=name,
            path=str(slot.line.link_path),
            plugged=slot.line.plugged,
            faults_available=list(slot.device.faults_available),
            faults_active=sorted(slot.device.faults_active),
            facts=slot.device.facts(),
        )

    async def _slot(self, name: str, context: grpc.aio.ServicerContext) -> str:
        if name not in self._sim.slots:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"device: no simulated device {name!r}; have {', '.join(sorted(self._sim.slots))}",
            )
        return name

    async def ListDevices(
        self, request: pb.ListSimDevicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSimDevicesResponse:
        return pb.ListSimDevicesResponse(
            devices=[self._describe(n) for n in sorted(self._sim.slots)]
        )

    async def Unplug(
        self, request: pb.SimDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        self._sim.unplug(name)
        return self._describe(name)

    async def Replug(
        self, request: pb.SimDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        self._sim.replug(name)
        return self._describe(name)

    async def InjectGarbage(
        self, request: pb.InjectGarbageRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        if not request.data:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "data: must not be empty")
        if len(request.data) > MAX_GARBAGE:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"data: more than {MAX_GARBAGE} bytes"
            )
        self._sim.slots[name].line.write(request.data)
        return self._describe(name)

    async def SetFault(
        self, request: pb.SetFaultRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        try:
            self._sim.slots[name].device.set_fault(request.fault, request.active)
        except SimError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return self._describe(name)

    async def Act(
        self, request: pb.ActRequest, context: grpc.aio.ServicerContext
    ) -> pb.ActResponse:
        name = await self._slot(request.device, context)
        if request.action == "set_baud":
            # Every line can be paced like a real one (benchmarks against wire time).
            try:
                self._sim.slots[name].line.set_baud(int(request.params.get("baud", "")))
            except ValueError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"set_baud: {exc}")
            return pb.ActResponse(
                device=self._describe(name), result={"baud": str(self._sim.slots[name].line.baud)}
            )
        try:
            result = self._sim.slots[name].device.act(request.action, dict(request.params))
        except SimError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.ActResponse(device=self._describe(name), result=result)

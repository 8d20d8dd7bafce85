"""SimControl: scripted customers and fault injection over a Unix socket. Thin servicer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from branchline.common.errors import InvalidArgument, NotFound, check_text
from branchline.common.grpc_errors import refusals
from branchline.sim.devices.base import SimError
from branchline.v1 import sim_control_pb2 as pb
from branchline.v1 import sim_control_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.sim.simulator import Simulator

MAX_GARBAGE = 64 * 1024
MAX_NAME = 64


def _invalid(exc: SimError, default_field: str) -> InvalidArgument:
    return InvalidArgument(exc.field or default_field, str(exc), reason=exc.reason)


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
        check_text("device", name, max_len=MAX_NAME)
        if name not in self._sim.slots:
            raise NotFound(
                f"device: no simulated device {name!r}; have {', '.join(sorted(self._sim.slots))}",
                field="device",
                reason="unknown_device",
            )
        return name

    async def ListDevices(
        self, request: pb.ListSimDevicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSimDevicesResponse:
        return pb.ListSimDevicesResponse(
            devices=[self._describe(n) for n in sorted(self._sim.slots)]
        )

    @refusals
    async def Unplug(
        self, request: pb.SimDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        self._sim.unplug(name)
        return self._describe(name)

    @refusals
    async def Replug(
        self, request: pb.SimDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        self._sim.replug(name)
        return self._describe(name)

    @refusals
    async def InjectGarbage(
        self, request: pb.InjectGarbageRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        if not request.data:
            raise InvalidArgument("data", "must not be empty", reason="required")
        if len(request.data) > MAX_GARBAGE:
            raise InvalidArgument("data", f"more than {MAX_GARBAGE} bytes", reason="too_long")
        self._sim.slots[name].line.write(request.data)
        return self._describe(name)

    @refusals
    async def SetFault(
        self, request: pb.SetFaultRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimDevice:
        name = await self._slot(request.device, context)
        check_text("fault", request.fault, max_len=MAX_NAME)
        try:
            self._sim.slots[name].device.set_fault(request.fault, request.active)
        except SimError as exc:
            raise _invalid(exc, "fault") from None
        return self._describe(name)

    @refusals
    async def Act(
        self, request: pb.ActRequest, context: grpc.aio.ServicerContext
    ) -> pb.ActResponse:
        name = await self._slot(request.device, context)
        if request.action == "set_baud":
            # Every line can be paced like a real one (benchmarks against wire time).
            try:
                self._sim.slots[name].line.set_baud(int(request.params.get("baud", "")))
            except ValueError as exc:
                raise InvalidArgument("params.baud", f"set_baud: {exc}") from None
            return pb.ActResponse(
                device=self._describe(name), result={"baud": str(self._sim.slots[name].line.baud)}
            )
        check_text("action", request.action, max_len=MAX_NAME)
        try:
            result = self._sim.slots[name].device.act(request.action, dict(request.params))
        except SimError as exc:
            raise _invalid(exc, "params") from None
        return pb.ActResponse(device=self._describe(name), result=result)

"""SimControl refusals carry the field that was wrong as data (google.rpc.BadRequest)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from branchline.sim.control import SimControlServicer
from branchline.sim.simulator import Simulator
from branchline.v1 import sim_control_pb2 as pb
from branchline.v1 import sim_control_pb2_grpc as pb_grpc


def _refusal(call: str, request: object) -> grpc.aio.AioRpcError:
    async def run() -> grpc.aio.AioRpcError:
        with tempfile.TemporaryDirectory(prefix="bl-sim-", dir="/tmp") as tmp:
            sim = Simulator(Path(tmp), ["pin_pad"])
            server = grpc.aio.server()
            pb_grpc.add_SimControlServicer_to_server(SimControlServicer(sim), server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = pb_grpc.SimControlStub(channel)
                    try:
                        await getattr(stub, call)(request)
                    except grpc.aio.AioRpcError as exc:
                        return exc
                    raise AssertionError(f"{call} was not refused")
            finally:
                await server.stop(None)

    return asyncio.run(run())


def _violation(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a Call
    assert status is not None, "no status details"
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return bad.field_violations[0].field, bad.field_violations[0].reason
    raise AssertionError("no BadRequest in the details")


@pytest.mark.parametrize(
    ("call", "request_", "code", "field"),
    [
        ("Unplug", pb.SimDeviceRequest(device="toaster"), "NOT_FOUND", "device"),
        ("Unplug", pb.SimDeviceRequest(device="d" * 5000), "INVALID_ARGUMENT", "device"),
        ("InjectGarbage", pb.InjectGarbageRequest(device="pin_pad"), "INVALID_ARGUMENT", "data"),
        (
            "SetFault",
            pb.SetFaultRequest(device="pin_pad", fault="no_such_fault", active=True),
            "INVALID_ARGUMENT",
            "fault",
        ),
        (
            "Act",
            pb.ActRequest(device="pin_pad", action="press", params={"keys": "zz"}),
            "INVALID_ARGUMENT",
            "params",
        ),
        (
            "Act",
            pb.ActRequest(device="pin_pad", action="set_baud", params={"baud": "fast"}),
            "INVALID_ARGUMENT",
            "params.baud",
        ),
    ],
)
def test_a_refused_control_request_names_its_field(
    call: str, request_: object, code: str, field: str
) -> None:
    error = _refusal(call, request_)
    assert error.code().name == code
    assert _violation(error)[0] == field
    assert len(error.details() or "") < 300

"""The error model: domain errors converted once at the gRPC boundary, read back as data."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from branchline.common.errors import (
    MAX_ID,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_text,
    echo,
)
from branchline.common.grpc_errors import describe, error_details, refusals


class _Refusing(health_pb2_grpc.HealthServicer):
    """A real servicer whose methods raise domain errors from plain code."""

    @refusals
    async def Check(self, request, context):  # type: ignore[no-untyped-def]
        check_text("service", request.service, max_len=MAX_ID)
        if request.service == "deny":
            raise PermissionDenied("tellers act only on their own branch", rule="own_branch")
        raise NotFound(f"no service {echo(request.service)}", reason="unknown_service")

    @refusals
    async def Watch(self, request, context):  # type: ignore[no-untyped-def]
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        raise InvalidArgument("service", "watch refused after the first answer")


def _call(service: str, method: str = "Check") -> grpc.aio.AioRpcError:
    async def run() -> grpc.aio.AioRpcError:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(_Refusing(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                request = health_pb2.HealthCheckRequest(service=service)
                try:
                    if method == "Check":
                        await stub.Check(request)
                    else:
                        async for _ in stub.Watch(request):
                            pass
                except grpc.aio.AioRpcError as exc:
                    return exc
                raise AssertionError("the call was not refused")
        finally:
            await server.stop(None)

    return asyncio.run(run())


def test_an_over_long_id_is_refused_with_a_field_violation_and_a_truncated_echo() -> None:
    error = _call("x" * 5000)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a Call
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert bad.field_violations[0].field == "service"
    assert bad.field_violations[0].reason == "too_long"
    message = error.details() or ""
    assert len(message) < 200
    assert "5000 characters" in message


def test_an_empty_required_field_names_it() -> None:
    details = error_details(_call(""))
    assert (details.status, details.field, details.reason) == (
        "INVALID_ARGUMENT",
        "service",
        "required",
    )
    assert describe(_call("")).startswith("INVALID_ARGUMENT (field service): service:")


def test_not_found_carries_its_reason_and_no_field() -> None:
    details = error_details(_call("nope"))
    assert details.status == "NOT_FOUND"
    assert details.reason == "unknown_service"
    assert details.field == ""


def test_permission_denied_names_the_rule() -> None:
    details = error_details(_call("deny"))
    assert (details.status, details.reason) == ("PERMISSION_DENIED", "own_branch")


def test_a_streaming_method_is_converted_too() -> None:
    details = error_details(_call("svc", method="Watch"))
    assert (details.status, details.field) == ("INVALID_ARGUMENT", "service")


def test_invalid_argument_message_starts_with_the_field_once() -> None:
    assert InvalidArgument("amount", "must be positive").message == "amount: must be positive"
    assert (
        InvalidArgument("amount", "amount: must be positive").message == "amount: must be positive"
    )


@pytest.mark.parametrize("value", ["a" * 41, "b" * 5000])
def test_echo_is_bounded(value: str) -> None:
    assert len(echo(value)) < 80

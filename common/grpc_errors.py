"""The gRPC boundary of the error model (``branchline.common.errors``).

Servers: ``rpc_status_for(exc)`` builds a ``google.rpc.Status`` whose details hold a
``BadRequest`` (one field violation naming the field) for invalid arguments and an
``ErrorInfo`` (domain ``branchline``, the stable reason, metadata) for every error; the
``@refusals`` decorator (or ``await abort(context, exc)``) ends the call with it.

Clients: ``error_details(rpc_error)`` reads them back (``grpc_status.rpc_status.from_call``)
into an ``ErrorDetails`` with the field and reason as data; ``describe`` gives the one line a
CLI prints.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from branchline.common.errors import DomainError

DOMAIN = "branchline"

F = TypeVar("F", bound=Callable[..., Any])


def rpc_status_for(exc: DomainError) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    if exc.field:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=exc.field,
                    description=getattr(exc, "description", exc.message),
                    reason=exc.reason,
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata)
    packed = any_pb2.Any()
    packed.Pack(info)
    details.append(packed)
    return status_pb2.Status(
        code=getattr(code_pb2, exc.status), message=exc.message, details=details
    )


def grpc_status_for(exc: DomainError) -> grpc.Status:
    return rpc_status.to_status(rpc_status_for(exc))


async def abort(context: grpc.aio.ServicerContext, exc: DomainError) -> NoReturn:
    """End the call with ``exc`` and its details."""
    status = grpc_status_for(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("abort returned")  # abort always raises


def refusals(method: F) -> F:
    """Decorate an async servicer method (unary or streaming): a DomainError raised inside
    ends the call with its status and details."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> Any:
            try:
                async for item in method(self, request, context):
                    yield item
            except DomainError as exc:
                await abort(context, exc)

        return stream  # type: ignore[return-value]  # same signature as method

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except DomainError as exc:
            await abort(context, exc)

    return unary  # type: ignore[return-value]  # same signature as method


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str = ""


@dataclass(frozen=True)
class ErrorDetails:
    """What a refused call carried: status name, message, reason and field violations."""

    status: str
    message: str
    reason: str = ""
    violations: tuple[FieldViolation, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def field(self) -> str:
        return self.violations[0].field if self.violations else ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.reason:
            out["reason"] = self.reason
        if self.violations:
            out["field"] = self.field
            out["violations"] = [
                {"field": v.field, "description": v.description, "reason": v.reason}
                for v in self.violations
            ]
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """Read a failed call's status details (works for sync and asyncio calls)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else "") or ""
    status_name = code.name if code is not None else "UNKNOWN"
    try:
        rich = rpc_status.from_call(error)  # type: ignore[arg-type]  # an RpcError is a Call
    except (ValueError, AttributeError, TypeError):
        rich = None
    if rich is None:
        return ErrorDetails(status_name, message)
    reason = ""
    violations: list[FieldViolation] = []
    metadata: dict[str, str] = {}
    for detail in rich.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend(
                FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
            )
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
            metadata = dict(info.metadata)
    return ErrorDetails(status_name, message, reason, tuple(violations), metadata)


def describe(error: grpc.RpcError) -> str:
    """One line for a person: ``INVALID_ARGUMENT (field amount): amount: must be positive``."""
    details = error_details(error)
    where = f" (field {details.field})" if details.field else ""
    return f"{details.status}{where}: {details.message}"

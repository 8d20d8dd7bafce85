"""The gRPC and TerminalLink boundary of dispatch and calls: who is calling, every text field
of a request bounded before anything reads it, refusals as statuses with details (gRPC) or
RequestErrors with the field path (TerminalLink).

``@rpc`` on a servicer method: the request's text fields are bounded (``bound``), and a
``DomainError`` raised inside (by the method, the service it calls, or the role check of
``identify``) ends the call with its status, ``BadRequest`` and ``ErrorInfo`` details.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from branchline.common.errors import (
    MAX_ID,
    DomainError,
    InvalidArgument,
    PermissionDenied,
    check_text,
)
from branchline.common.grpc_errors import refusals
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer, roles_phrase
from branchline.server.dispatch import validate
from branchline.server.dispatch.calls import model as call_model
from branchline.server.dispatch.model import Actor
from branchline.v1 import terminal_link_pb2 as link_pb2

F = TypeVar("F", bound=Callable[..., Any])

ALL_ROLES = (TERMINAL, OPERATOR, TELLER, LOBBY)

# The longest text each request field may carry, by field name; any other text field is
# an id, a kind or a branch: at most MAX_ID. Each is the operation's own limit (never less,
# so the boundary refuses nothing the operation would take).
LIMITS: Mapping[str, int] = {
    "title": validate.MAX_TITLE,
    "name": validate.MAX_NAME,
    "note": validate.MAX_NOTE,
    "reason": validate.MAX_REASON,
    "detail": validate.MAX_REASON,
    "request_id": validate.MAX_REQUEST_ID,
    "customer_ref": validate.MAX_CUSTOMER_REF,
    "content_type": validate.MAX_CONTENT_TYPE,
    "lines": call_model.MAX_LINE,
    # An SDP offer or answer is checked in bytes by the service; characters bound it here.
    "payload": call_model.MAX_SDP,
}
MAX_LIST = 64  # entries of a repeated text field or a map (skills, lines, fields)
# Text that may hold a card number (by mistake, from a device): bounded, never repeated.
SECRET = frozenset({"pan", "detail", "fields"})


def bound(request: Message, prefix: str = "") -> None:
    """Raise InvalidArgument naming the first text field of ``request`` (nested messages
    included) longer than its limit, or a list or map with too many entries."""
    for field, value in request.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            _bound_message(field, value, path)
        elif field.type == FieldDescriptor.TYPE_STRING:
            limit = LIMITS.get(field.name, MAX_ID)
            check = validate.bounded if field.name in SECRET else _bound_text
            if field.is_repeated:
                _bound_count(path, value)
                for i, item in enumerate(value):
                    check(f"{path}[{i}]", item, limit)
            else:
                check(path, value, limit)


def _bound_text(path: str, value: str, limit: int) -> str:
    return check_text(path, value, max_len=limit, required=False)


def _bound_message(field: FieldDescriptor, value: Any, path: str) -> None:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        _bound_count(path, value)
        for key, item in value.items():
            _bound_text(path, str(key), validate.MAX_FIELD_KEY)
            if isinstance(item, str):
                validate.bounded(f"{path}[{key}]", item, validate.MAX_FIELD_VALUE)
    elif field.is_repeated:
        _bound_count(path, value)
        for i, item in enumerate(value):
            bound(item, f"{path}[{i}].")
    else:
        bound(value, f"{path}.")


def _bound_count(path: str, values: Sequence[Any] | Mapping[Any, Any]) -> None:
    if len(values) > MAX_LIST:
        raise InvalidArgument(path, f"at most {MAX_LIST} entries", reason="too_many")


def rpc(method: F) -> F:
    """A servicer method at the boundary: its request bounded first, every refusal a status
    with details (``refusals``)."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Message, context: Any) -> Any:
            bound(request)
            async for item in method(self, request, context):
                yield item

        return refusals(stream)  # type: ignore[return-value]  # same signature as method

    @functools.wraps(method)
    async def unary(self: Any, request: Message, context: Any) -> Any:
        bound(request)
        return await method(self, request, context)

    return refusals(unary)  # type: ignore[return-value]  # same signature as method


async def identify(
    auth: Authorizer, context: grpc.aio.ServicerContext, roles: Sequence[str], rpc: str
) -> Actor:
    """The caller, who must hold one of ``roles`` (PermissionDenied naming the rule
    ``role`` otherwise)."""
    principal = await auth.identify(context, ALL_ROLES, rpc)
    if principal.role not in roles:
        raise PermissionDenied(
            f"{rpc} is for {roles_phrase(roles)} only; the caller is {principal}", rule="role"
        )
    return Actor(principal.role, principal.name)


def link_refusal(
    message: link_pb2.TerminalMessage, body: str, exc: DomainError
) -> link_pb2.ServerMessage:
    """A refused call request on TerminalLink: the field as its path in the TerminalMessage
    (``call_request.request_id``), and the status name as the code, not the finer reason
    the link's ``request_error`` gives other bodies: the agent turns a call refusal's code
    into the gRPC status the kiosk page gets (``agent/local_api.py``)."""
    return link_pb2.ServerMessage(
        ack_seq=message.seq,
        error=link_pb2.RequestError(
            code=exc.status.lower(),
            message=exc.message,
            field=f"{body}.{exc.field}" if exc.field else "",
        ),
    )

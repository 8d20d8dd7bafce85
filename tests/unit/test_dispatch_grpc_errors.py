"""Dispatch and calls at the gRPC boundary: every refusal carries its details.

For each service (Dispatch, Tasks, DispatchAdmin, Calls) a malformed request's status holds
a ``google.rpc.BadRequest`` naming the field, read through ``grpc_status.rpc_status``; an
over-long id is refused as INVALID_ARGUMENT whose message repeats only a truncated piece of
it; a role refusal names its rule in ``ErrorInfo``. The servers run in-process over real
gRPC (insecure loopback mode: the caller is named in metadata).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from branchline.common.errors import ECHO_LIMIT
from branchline.server import fleet_registry
from branchline.server.auth import PRINCIPAL_METADATA_KEY, Authorizer
from branchline.server.dispatch import call_servicer
from branchline.server.dispatch.calls import CallService
from branchline.server.dispatch.servicer import add_dispatch_services
from branchline.server.dispatch.tasks import DispatchService
from branchline.server.storage import open_database
from branchline.v1 import calls_pb2, calls_pb2_grpc
from branchline.v1 import dispatch_pb2 as pb
from branchline.v1 import dispatch_pb2_grpc as pb_grpc
from branchline.v1 import terminal_link_pb2 as link_pb2
from tests.unit.sqlite_template import migrated_sqlite

LONG_ID = "T" * 5000
Call = Callable[[grpc.aio.Channel], Awaitable[Any]]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[DispatchService]:
    engine = open_database(migrated_sqlite(tmp_path / "server.db"))
    service = DispatchService(engine)
    service.add_branch("B", "South")
    service.add_teller("T1", "Teller T1", "B", ["loan"])
    fleet_registry.register_terminal(
        engine, "MC-1", "A", "mobile_counter", "0.1.0", [], "r1", datetime.now(UTC)
    )
    yield service
    engine.dispose()


def refusal(service: DispatchService, who: str, call: Call) -> grpc.aio.AioRpcError:
    """Run ``call`` as ``who`` against the dispatch and calls servicers; the refusal."""

    async def run() -> grpc.aio.AioRpcError:
        server = grpc.aio.server()
        auth = Authorizer(insecure=True)
        add_dispatch_services(server, service, auth, service.engine)
        calls_pb2_grpc.add_CallsServicer_to_server(
            call_servicer.CallsServicer(CallService(service), auth), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        interceptors: list[Any] = [_UnaryPrincipal(who), _StreamPrincipal(who)]
        try:
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", interceptors=interceptors
            ) as channel:
                try:
                    await call(channel)
                except grpc.aio.AioRpcError as exc:
                    return exc
                raise AssertionError("the call was not refused")
        finally:
            await server.stop(None)

    return asyncio.run(run())


class _Principal:
    """Names the caller in metadata, as the CLI does in insecure loopback mode."""

    def __init__(self, who: str) -> None:
        self.who = who

    def _with(self, details: Any) -> Any:
        metadata = list(details.metadata or ()) + [(PRINCIPAL_METADATA_KEY, self.who)]
        return details._replace(metadata=metadata)


class _UnaryPrincipal(_Principal, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with(details), request)


# grpc.aio files an interceptor under its first kind only: one class per kind.
class _StreamPrincipal(_Principal, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return await continuation(self._with(details), request)


def violations(error: grpc.aio.AioRpcError) -> tuple[list[str], str]:
    """The BadRequest field paths and the ErrorInfo reason of a refused call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a Call
    assert status is not None, f"no rich status: {error.code()} {error.details()}"
    fields: list[str] = []
    reason = ""
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "branchline"
            reason = info.reason
    return fields, reason


def _stream(call: Any) -> Call:
    async def drain(channel: grpc.aio.Channel) -> None:
        async for _ in call(channel):
            pass

    return drain


MALFORMED: list[tuple[str, str, Call, str]] = [
    (
        "Dispatch",
        "teller:T1",
        lambda ch: pb_grpc.DispatchStub(ch).AnswerOffer(pb.AnswerOfferRequest(task_id="tk-1")),
        "answer",
    ),
    (
        "Dispatch",
        "teller:T1",
        _stream(
            lambda ch: pb_grpc.DispatchStub(ch).WatchDispatch(
                pb.WatchDispatchRequest(after_event_id=-1)
            )
        ),
        "after_event_id",
    ),
    (
        "Tasks",
        "terminal:MC-1",
        lambda ch: pb_grpc.TasksStub(ch).SendTask(
            pb.SendTaskRequest(
                request_id="r1", target_branch="B", business_type="Loan Type", title="t"
            )
        ),
        "business_type",
    ),
    (
        "DispatchAdmin",
        "operator:ops",
        lambda ch: pb_grpc.DispatchAdminStub(ch).AddTeller(
            pb.AddTellerRequest(teller_id="T5", name="T5", branch="B", skills=["Loans"])
        ),
        "skills[0]",
    ),
    (
        "Calls",
        "teller:T1",
        lambda ch: calls_pb2_grpc.CallsStub(ch).SendSignal(
            calls_pb2.SendSignalRequest(call_id="C-1", kind="bye", payload="x")
        ),
        "kind",
    ),
    (
        "Calls",
        "teller:T1",
        lambda ch: calls_pb2_grpc.CallsStub(ch).GetSignature(
            calls_pb2.GetSignatureRequest(call_id="C-1", command_id=0)
        ),
        "command_id",
    ),
]


@pytest.mark.parametrize(
    ("service", "who", "call", "field"), MALFORMED, ids=[m[0] + "-" + m[3] for m in MALFORMED]
)
def test_a_malformed_request_names_the_field_in_bad_request(
    services: DispatchService, service: str, who: str, call: Call, field: str
) -> None:
    error = refusal(services, who, call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (service, error.details())
    fields, _ = violations(error)
    assert fields == [field], (service, error.details())
    assert (error.details() or "").startswith(f"{field}: ")


OVER_LONG: list[tuple[str, str, Call, str]] = [
    (
        "Dispatch",
        "teller:T1",
        lambda ch: pb_grpc.DispatchStub(ch).GetTask(pb.GetTaskRequest(task_id=LONG_ID)),
        "task_id",
    ),
    (
        "Tasks",
        "terminal:MC-1",
        lambda ch: pb_grpc.TasksStub(ch).CancelTask(pb.CancelTaskRequest(task_id=LONG_ID)),
        "task_id",
    ),
    (
        "DispatchAdmin",
        "operator:ops",
        lambda ch: pb_grpc.DispatchAdminStub(ch).AddBranch(
            pb.AddBranchRequest(branch_id=LONG_ID, name="x")
        ),
        "branch_id",
    ),
    (
        "Calls",
        "teller:T1",
        lambda ch: calls_pb2_grpc.CallsStub(ch).AnswerCall(
            calls_pb2.AnswerCallRequest(call_id=LONG_ID)
        ),
        "call_id",
    ),
    (
        "Calls",
        "teller:T1",
        _stream(
            lambda ch: calls_pb2_grpc.CallsStub(ch).WatchSignals(
                calls_pb2.WatchSignalsRequest(call_id=LONG_ID)
            )
        ),
        "call_id",
    ),
    (
        "Calls",
        "teller:T1",
        lambda ch: calls_pb2_grpc.CallsStub(ch).GetSignature(
            calls_pb2.GetSignatureRequest(call_id=LONG_ID, command_id=1)
        ),
        "call_id",
    ),
]


@pytest.mark.parametrize(
    ("service", "who", "call", "field"), OVER_LONG, ids=[m[0] + "-" + m[3] for m in OVER_LONG]
)
def test_an_over_long_id_is_refused_with_a_truncated_echo(
    services: DispatchService, service: str, who: str, call: Call, field: str
) -> None:
    error = refusal(services, who, call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (service, error.details())
    fields, reason = violations(error)
    assert (fields, reason) == ([field], "too_long")
    details = error.details() or ""
    assert details.startswith(f"{field}: is 5000 characters, at most 64 allowed")
    assert "T" * ECHO_LIMIT in details and "T" * (ECHO_LIMIT + 1) not in details
    assert len(details) < 200


def test_a_role_refusal_names_the_rule(services: DispatchService) -> None:
    error = refusal(
        services,
        "teller:T1",
        lambda ch: pb_grpc.DispatchAdminStub(ch).AddBranch(pb.AddBranchRequest(branch_id="C")),
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        error.details() == "DispatchAdmin.AddBranch is for operators only; the caller is teller T1"
    )
    assert violations(error) == ([], "role")
    error = refusal(
        services,
        "terminal:MC-2",
        lambda ch: pb_grpc.TasksStub(ch).GetTask(pb.GetTaskRequest(task_id="tk-1")),
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert violations(error) == ([], "mobile_counter_only")


def test_not_found_names_the_field_and_echoes_the_id(services: DispatchService) -> None:
    error = refusal(
        services,
        "teller:T1",
        lambda ch: pb_grpc.DispatchStub(ch).GetTask(pb.GetTaskRequest(task_id="tk-nope")),
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "task_id: no task 'tk-nope'"
    assert violations(error) == (["task_id"], "not_found")


class _Link:
    """What CallLink registers with: the handlers per TerminalMessage body."""

    def __init__(self) -> None:
        self.handlers: dict[
            str, Callable[[str, link_pb2.TerminalMessage], Coroutine[Any, Any, Any]]
        ] = {}

    def add_handler(self, body: str, handler: Any) -> None:
        self.handlers[body] = handler

    def on_connect(self, hook: Any) -> None:
        pass


def test_a_terminal_link_refusal_carries_the_field_path(services: DispatchService) -> None:
    link = _Link()
    call_servicer.CallLink(CallService(services), link, services.engine)  # type: ignore[arg-type]

    def reply(body: str, message: link_pb2.TerminalMessage) -> link_pb2.ServerMessage:
        answer: Any = asyncio.run(link.handlers[body]("K-1", message))
        assert isinstance(answer, link_pb2.ServerMessage) and answer.ack_seq == message.seq
        return answer

    too_long = reply(
        "call_request",
        link_pb2.TerminalMessage(
            seq=7,
            call_request=calls_pb2.CallRequest(
                request_id="r" * 5000,
                business_type="loan",
                mode=calls_pb2.CALL_MODE_VIDEO_TELLER,
            ),
        ),
    )
    assert too_long.error.code == "invalid_argument"
    assert too_long.error.field == "call_request.request_id"
    assert too_long.error.message.startswith("request_id: is 5000 characters")
    assert len(too_long.error.message) < 200
    bad_kind = reply(
        "call_signal",
        link_pb2.TerminalMessage(
            seq=8, call_signal=calls_pb2.TerminalSignal(call_id="C-1", kind="bye", payload="x")
        ),
    )
    assert (bad_kind.error.code, bad_kind.error.field) == ("invalid_argument", "call_signal.kind")
    # A card number a device put into the detail by mistake is never repeated.
    secret = reply(
        "command_outcome",
        link_pb2.TerminalMessage(
            seq=9,
            command_outcome=calls_pb2.CommandOutcome(
                command_id=1, call_id="C-1", completion="success", detail="4111111111111111" * 100
            ),
        ),
    )
    assert secret.error.field == "command_outcome.detail"
    # A refusal's code is its status name: the agent maps it to the kiosk page's status.
    leave = reply(
        "call_leave",
        link_pb2.TerminalMessage(seq=10, call_leave=calls_pb2.CallLeave(call_id="C-nope")),
    )
    assert (leave.error.code, leave.error.field) == ("not_found", "call_leave.call_id")
    assert "4111" not in secret.error.message

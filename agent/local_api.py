"""AgentLocal: the agent's local gRPC API on a Unix socket (mode 0660) under its state dir.

Thin servicer: each RPC calls the daemon's plain methods and converts the result. Refusals
are the one error model (``branchline.common.errors``), ended by ``@refusals`` with the field
in BadRequest and the stable code in ErrorInfo; ids and names are bounded here.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import grpc

from branchline.agent.customer.authenticate import authenticate
from branchline.agent.customer.call import CallRefused
from branchline.agent.customer_info_api import CustomerInfoServicer
from branchline.agent.journal import rpc as journal_rpc
from branchline.agent.service_state import NotInService
from branchline.agent.tube.api import TubeCustomerServicer
from branchline.agent.uplink import UplinkUnavailable
from branchline.agent.wire import device_to_pb
from branchline.common.enum_maps import SERVICE_STATE_TO_PB
from branchline.common.errors import (
    MAX_ID,
    MAX_TEXT,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    check_text,
    echo,
)
from branchline.common.grpc_errors import refusals
from branchline.v1 import agent_local_pb2 as pb
from branchline.v1 import agent_local_pb2_grpc as pb_grpc
from branchline.v1 import calls_pb2, common_pb2, customer_info_pb2_grpc, tube_pb2_grpc

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent
    from branchline.agent.device_owner import DeviceOwner

R = TypeVar("R")

SOCKET_NAME = "agent.sock"


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class AgentLocalServicer(pb_grpc.AgentLocalServicer):
    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def _status(self) -> pb.AgentStatus:
        agent = self._agent
        return pb.AgentStatus(
            terminal_id=agent.config.terminal.terminal_id,
            branch=agent.config.terminal.branch,
            service_state=SERVICE_STATE_TO_PB[agent.service.state],
            service_detail=agent.service.detail,
            server_connected=agent.uplink.connected,
            server_address=agent.config.terminal.server,
            devices=[device_to_pb(s) for s in agent.device_snapshots()],
        )

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.AgentStatus:
        return self._status()

    def _owner(self, name: str) -> DeviceOwner:
        check_text("device", name, max_len=MAX_ID)
        owner = self._agent.owners.get(name)
        if owner is None:
            known = ", ".join(sorted(self._agent.owners)) or "none"
            raise NotFound(
                f"device: no device {echo(name)} configured (configured: {known})",
                field="device",
                reason="no_such_device",
            )
        return owner

    @refusals
    async def GetCapabilities(
        self, request: pb.DeviceRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.Device:
        owner = self._owner(request.device)
        return device_to_pb(owner.snapshot)

    @refusals
    async def SelfTest(
        self, request: pb.DeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SelfTestResult:
        owner = self._owner(request.device)
        result, completion, seconds = await owner.self_test()
        return pb.SelfTestResult(
            device=request.device,
            ok=result.ok,
            completion=completion.value,
            detail=result.detail,
            seconds=seconds,
        )

    @refusals
    async def RunCommand(
        self, request: pb.DeviceCommandRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeviceCommandResult:
        owner = self._owner(request.device)
        check_text("command", request.command, max_len=MAX_ID)
        check_text("params_json", request.params_json, max_len=MAX_TEXT, required=False)
        try:
            params = json.loads(request.params_json) if request.params_json else {}
        except json.JSONDecodeError as exc:
            raise InvalidArgument("params_json", f"not JSON: {exc}", reason="not_json") from None
        if not isinstance(params, dict):
            raise InvalidArgument("params_json", "must be a JSON object", reason="not_an_object")
        if request.timeout_seconds < 0:
            raise InvalidArgument("timeout_seconds", "must not be negative", reason="negative")
        completion, code, detail, result, seconds = await owner.run_command(
            request.command, params, request.timeout_seconds or None
        )
        return pb.DeviceCommandResult(
            device=request.device,
            command=request.command,
            completion=completion.value,
            code=code,
            detail=detail,
            result_json=json.dumps(result, default=str),
            seconds=seconds,
        )

    @refusals
    async def Spy(
        self, request: pb.DeviceRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SpyChunk]:
        owner = self._owner(request.device)
        with owner.spy.listen() as queue:
            while True:
                chunk = await queue.get()
                yield pb.SpyChunk(
                    device=request.device,
                    direction=chunk.direction,
                    data=chunk.data,
                    monotonic=chunk.monotonic,
                )

    @refusals
    async def AuthenticateCustomer(
        self, request: pb.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> pb.AuthenticateResult:
        for field in ("card_timeout_seconds", "pin_timeout_seconds"):
            value = getattr(request, field)
            if value < 0 or value > 600:
                raise InvalidArgument(field, "0 to 600 seconds", reason="out_of_range")
        try:
            outcome = await authenticate(
                self._agent,
                request.card_timeout_seconds or 60.0,
                request.pin_timeout_seconds or 30.0,
                request.eject_after,
            )
        except NotInService as exc:
            raise FailedPrecondition(str(exc), reason="not_in_service") from None
        return pb.AuthenticateResult(
            verified=outcome.verified,
            attempts_left=outcome.attempts_left,
            locked=outcome.locked,
            message=outcome.message,
            pan_masked=outcome.pan_masked,
            completion=outcome.completion.value,
            code=outcome.code,
            session_id=outcome.session.session_id if outcome.session else "",
            customer_id=outcome.session.customer_id if outcome.session else "",
            accounts=[
                pb.CustomerAccount(
                    account_id=a.account_id,
                    kind=a.kind,
                    currency=a.currency,
                    balance=a.balance,
                    available=a.available,
                )
                for a in (outcome.session.accounts if outcome.session else ())
            ],
        )

    async def SetMaintenance(
        self, request: pb.SetMaintenanceRequest, context: grpc.aio.ServicerContext
    ) -> pb.AgentStatus:
        self._agent.service.set_maintenance(request.on)
        return self._status()

    @refusals
    async def VerifyJournal(
        self, request: pb.VerifyJournalRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyJournalResult:
        return await journal_rpc.run(lambda: self._agent.store, journal_rpc.verify_journal)

    @refusals
    async def ShowJournal(
        self, request: pb.ShowJournalRequest, context: grpc.aio.ServicerContext
    ) -> pb.ShowJournalResult:
        return await journal_rpc.run(lambda: self._agent.store, journal_rpc.show_journal, request)

    @refusals
    async def ListOutbox(
        self, request: pb.ListOutboxRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOutboxResult:
        return await journal_rpc.run(lambda: self._agent.store, journal_rpc.list_outbox, request)

    # -- video-teller calls: the customer's side -------------------------------------------

    async def _call(self, work: Awaitable[R]) -> R:
        """Await a call request; the server's refusal becomes the status its code names, with
        the field the server named."""
        try:
            return await work
        except CallRefused as exc:
            raise exc.as_domain() from None
        except UplinkUnavailable as exc:
            raise Unavailable(
                f"the bank cannot be reached: {exc}", reason="server_unavailable"
            ) from None

    @refusals
    async def RequestTeller(
        self, request: pb.RequestTellerRequest, context: grpc.aio.ServicerContext
    ) -> calls_pb2.Call:
        check_text("business_type", request.business_type, max_len=MAX_ID)
        if request.mode == calls_pb2.CALL_MODE_UNSPECIFIED:
            raise InvalidArgument(
                "mode", "super_counter, video_service or video_teller", reason="required"
            )
        return await self._call(
            self._agent.calls.request_teller(request.business_type, request.mode)
        )

    @refusals
    async def LeaveQueue(
        self, request: pb.LeaveQueueRequest, context: grpc.aio.ServicerContext
    ) -> calls_pb2.Call:
        check_text("call_id", request.call_id, max_len=MAX_ID, required=False)
        return await self._call(self._agent.calls.leave(request.call_id))

    async def WatchCall(
        self, request: pb.WatchCallRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CallEvent]:
        with self._agent.calls.watch() as queue:
            while True:
                yield await queue.get()

    @refusals
    async def SendCallSignal(
        self, request: pb.SendCallSignalRequest, context: grpc.aio.ServicerContext
    ) -> calls_pb2.CallAck:
        check_text("call_id", request.call_id, max_len=MAX_ID, required=False)
        check_text("kind", request.kind, max_len=MAX_ID, required=False)
        return await self._call(
            self._agent.calls.send_signal(request.call_id, request.kind, request.payload),
        )

    @refusals
    async def Sign(
        self, request: pb.SignRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignResult:
        if request.command_id <= 0:
            raise InvalidArgument("command_id", "must be positive", reason="out_of_range")
        if request.timeout_seconds < 0 or request.timeout_seconds > 300:
            raise InvalidArgument("timeout_seconds", "0 to 300", reason="out_of_range")
        outcome: calls_pb2.CommandOutcome = await self._call(
            self._agent.calls.sign(
                request.command_id, request.confirm, request.timeout_seconds or 60.0
            ),
        )
        return pb.SignResult(
            completion=outcome.completion,
            code=outcome.code,
            detail=outcome.detail,
            signature_sha256=outcome.signature_sha256,
            signature_size=len(outcome.signature_png),
        )


async def start_local_api(agent: Agent, path: Path) -> grpc.aio.Server:
    server = grpc.aio.server()
    pb_grpc.add_AgentLocalServicer_to_server(AgentLocalServicer(agent), server)
    customer_info_pb2_grpc.add_CustomerInfoServicer_to_server(CustomerInfoServicer(agent), server)
    tube_pb2_grpc.add_TubeCustomerServicer_to_server(TubeCustomerServicer(agent.tube), server)
    if path.exists() or path.is_symlink():
        path.unlink()
    # The socket is created by grpc's core; a restrictive umask makes it 0660 from birth.
    old_umask = os.umask(0o117)
    try:
        server.add_insecure_port(f"unix:{path}")
        await server.start()
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o660)
    return server

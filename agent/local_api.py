"""AgentLocal: the agent's local gRPC API on a Unix socket (mode 0660) under its state dir.

Thin servicer: each RPC calls the daemon's plain methods and converts the result.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from branchline.v1 import agent_local_pb2 as pb
from branchline.v1 import agent_local_pb2_grpc as pb_grpc
from branchline.v1 import calls_pb2, common_pb2, customer_info_pb2_grpc, tube_pb2_grpc

if TYPE_CHECKING:
    from branchline.agent.daemon import Agent

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

    async def _owner_or_abort(self, name: str, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        owner = self._agent.owners.get(name)
        if owner is None:
            known = ", ".join(sorted(self._agent.owners)) or "none"
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"device: no device {name!r} configured (configured: {known})",
            )
        return owner

    async def GetCapabilities(
        self, request: pb.DeviceRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.Device:
        owner = await self._owner_or_abort(request.device, context)
        return device_to_pb(owner.snapshot)

    async def SelfTest(
        self, request: pb.DeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.SelfTestResult:
        owner = await self._owner_or_abort(request.device, context)
        result, completion, seconds = await owner.self_test()
        return pb.SelfTestResult(
            device=request.device,
            ok=result.ok,
            completion=completion.value,
            detail=result.detail,
            seconds=seconds,
        )

    async def RunCommand(
        self, request: pb.DeviceCommandRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeviceCommandResult:
        owner = await self._owner_or_abort(request.device, context)
        if not request.command:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "command: must not be empty")
        try:
            params = json.loads(request.params_json) if request.params_json else {}
        except json.JSONDecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"params_json: not JSON: {exc}")
        if not isinstance(params, dict):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "params_json: must be a JSON object"
            )
        if request.timeout_seconds < 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "timeout_seconds: must not be negative"
            )
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

    async def Spy(
        self, request: pb.DeviceRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SpyChunk]:
        owner = await self._owner_or_abort(request.device, context)
        with owner.spy.listen() as queue:
            while True:
                chunk = await queue.get()
                yield pb.SpyChunk(
                    device=request.device,
                    direction=chunk.direction,
                    data=chunk.data,
                    monotonic=chunk.monotonic,
                )

    async def AuthenticateCustomer(
        self, request: pb.AuthenticateRequest, context: grpc.aio.ServicerContext
    ) -> pb.AuthenticateResult:
        for field in ("card_timeout_seconds", "pin_timeout_seconds"):
            value = getattr(request, field)
            if value < 0 or value > 600:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: 0 to 600 seconds")
        try:
            outcome = await authenticate(
                self._agent,
                request.card_timeout_seconds or 60.0,
                request.pin_timeout_seconds or 30.0,
                request.eject_after,
            )
        except NotInService as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
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

    async def VerifyJournal(
        self, request: pb.VerifyJournalRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyJournalResult:
        return await journal_rpc.run(lambda: self._agent.store, context, journal_rpc.verify_journal)

    async def ShowJournal(
        self, request: pb.ShowJournalRequest, context: grpc.aio.ServicerContext
    ) -> pb.ShowJournalResult:
        return await journal_rpc.run(
            lambda: self._agent.store, context, journal_rpc.show_journal, request
        )

    async def ListOutbox(
        self, request: pb.ListOutboxRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOutboxResult:
        return await journal_rpc.run(
            lambda: self._agent.store, context, journal_rpc.list_outbox, request
        )

    # -- video-teller calls: the customer's side -------------------------------------------

    async def _call(self, context: grpc.aio.ServicerContext, work: Any) -> Any:
        """Await a call request; the server's refusal becomes the status it names."""
        try:
            return await work
        except CallRefused as exc:
            status = getattr(grpc.StatusCode, exc.code.upper(), grpc.StatusCode.UNKNOWN)
            await context.abort(status, exc.message)
        except UplinkUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the bank cannot be reached: {exc}")

    async def RequestTeller(
        self, request: pb.RequestTellerRequest, context: grpc.aio.ServicerContext
    ) -> calls_pb2.Call:
        if not request.business_type:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "business_type: must not be empty"
            )
        if request.mode == calls_pb2.CALL_MODE_UNSPECIFIED:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "mode: super_counter, video_service or video_teller",
            )
        call: calls_pb2.Call = await self._call(
            context, self._agent.calls.request_teller(request.business_type, request.mode)
        )
        return call

    async def LeaveQueue(
        self, request: pb.LeaveQueueRequest, context: grpc.aio.ServicerContext
    ) -> calls_pb2.Call:
        call: calls_pb2.Call = await self._call(context, self._agent.calls.leave(request.call_id))
        return call

    async def WatchCall(
        self, request: pb.WatchCallRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CallEvent]:
        with self._agent.calls.watch() as queue:
            while True:
                yield await queue.get()

    async def SendCallSignal(
        self, request: pb.SendCallSignalRequest, context: grpc.aio.ServicerContext
    ) -> calls_pb2.CallAck:
        ack: calls_pb2.CallAck = await self._call(
            context,
            self._agent.calls.send_signal(request.call_id, request.kind, request.payload),
        )
        return ack

    async def Sign(
        self, request: pb.SignRequest, context: grpc.aio.ServicerContext
    ) -> pb.SignResult:
        if request.command_id <= 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "command_id: must be positive")
        if request.timeout_seconds < 0 or request.timeout_seconds > 300:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "timeout_seconds: 0 to 300")
        outcome: calls_pb2.CommandOutcome = await self._call(
            context,
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

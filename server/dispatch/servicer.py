"""gRPC servicers of the dispatch core: who is calling, then one service call each.

Roles: ``Dispatch`` is for tellers and lobby managers, ``Tasks`` for mobile-counter
terminals, ``DispatchAdmin`` for operators. Scope rules (own offers, own branch, own
tasks) are the service's. Every method is ``@rpc`` (``boundary``): its request's text
fields bounded first, each refusal a status whose details name the field (``BadRequest``)
and the reason or rule (``ErrorInfo``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import grpc
from sqlalchemy import Engine

from branchline.common.errors import InvalidArgument, PermissionDenied
from branchline.common.logs import log_event
from branchline.server import fleet_registry
from branchline.server.applier import Applier
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer
from branchline.server.delivery.bus import TOPIC_DISPATCH, LocalBus, wait_or_sleep
from branchline.server.dispatch import convert
from branchline.server.dispatch.boundary import identify, rpc
from branchline.server.dispatch.model import Actor, LobbyManager
from branchline.server.dispatch.tasks import DispatchService, EventScope
from branchline.server.writes import apply_write
from branchline.v1 import dispatch_pb2 as pb
from branchline.v1 import dispatch_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.server.dispatch")

WATCH_POLL_SECONDS = 0.2
MOBILE_COUNTER = "mobile_counter"
STAFF = (TELLER, LOBBY)


async def _watch(
    service: DispatchService,
    scope: EventScope,
    after_event_id: int,
    bus: LocalBus | None = None,
) -> AsyncIterator[pb.DispatchEvent]:
    if after_event_id < 0:
        raise InvalidArgument("after_event_id", "must not be negative", reason="out_of_range")
    last = after_event_id
    if last == 0:
        last = await asyncio.to_thread(service.latest_event_id)
        for task in await asyncio.to_thread(service.open_tasks, scope):
            yield convert.snapshot_to_pb(task, last)
    # From here on every event is sent as it happens; the client knows where it stands
    # even when nothing is open yet.
    yield pb.DispatchEvent(event_id=last, kind="live", detail=f"live after event {last}")
    while True:
        events = await asyncio.to_thread(service.events_after, scope, last)
        for event in events:
            last = event.event_id
            current = (
                await asyncio.to_thread(service.read_task, event.task_id) if event.task_id else None
            )
            yield convert.event_to_pb(event, current)
        if not events:
            await wait_or_sleep(bus, TOPIC_DISPATCH, WATCH_POLL_SECONDS)


class DispatchServicer(pb_grpc.DispatchServicer):
    """Tellers and lobby managers."""

    def __init__(self, service: DispatchService, auth: Authorizer) -> None:
        self._service = service
        self._auth = auth
        self.bus: LocalBus | None = None
        # Writes join the TerminalLink's group-commit batches (server/writes.py).
        self.applier: Applier | None = None

    async def _staff(
        self, context: grpc.aio.ServicerContext, method: str, roles: Sequence[str] = STAFF
    ) -> Actor:
        return await identify(self._auth, context, roles, f"Dispatch.{method}")

    @rpc
    async def WhoAmI(
        self, request: pb.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> pb.StaffMember:
        actor = await self._staff(context, "WhoAmI")
        return convert.staff_to_pb(await asyncio.to_thread(self._service.staff, actor))

    @rpc
    async def SetDuty(
        self, request: pb.SetDutyRequest, context: grpc.aio.ServicerContext
    ) -> pb.StaffMember:
        actor = await self._staff(context, "SetDuty")
        record = await apply_write(
            self.applier, self._service.set_duty, actor, request.on_duty, request.teller_id or None
        )
        log_event(
            log, "duty", actor=str(actor), teller=request.teller_id or actor.id, on=request.on_duty
        )
        return convert.staff_to_pb(record)

    @rpc
    async def SetPresence(
        self, request: pb.SetPresenceRequest, context: grpc.aio.ServicerContext
    ) -> pb.StaffMember:
        actor = await self._staff(context, "SetPresence", (TELLER,))
        return convert.staff_to_pb(
            await apply_write(self.applier, self._service.set_presence, actor, request.away)
        )

    @rpc
    async def GetRoster(
        self, request: pb.GetRosterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Roster:
        actor = await self._staff(context, "GetRoster", (LOBBY,))
        return await _roster(self._service, actor, request.branch)

    @rpc
    async def WatchDispatch(
        self, request: pb.WatchDispatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DispatchEvent]:
        actor = await self._staff(context, "WatchDispatch")
        record = await asyncio.to_thread(self._service.staff, actor)
        if isinstance(record, LobbyManager):
            scope = EventScope(branch=record.branch_id)
        else:
            scope = EventScope(teller_id=actor.id)
        async for event in _watch(self._service, scope, request.after_event_id, self.bus):
            yield event

    @rpc
    async def ListTasks(
        self, request: pb.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTasksResponse:
        actor = await self._staff(context, "ListTasks")
        return await _list(self._service, actor, request)

    @rpc
    async def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor = await self._staff(context, "GetTask")
        return convert.task_to_pb(
            await asyncio.to_thread(self._service.get_task, actor, request.task_id)
        )

    @rpc
    async def AnswerOffer(
        self, request: pb.AnswerOfferRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor = await self._staff(context, "AnswerOffer", (TELLER,))
        answer = convert.ANSWER_BY_PB.get(request.answer)
        if answer is None:
            raise InvalidArgument("answer", "must be accept, wait or reject", reason="required")
        task = await apply_write(
            self.applier,
            self._service.answer_offer,
            actor,
            request.task_id,
            answer,
            offer_id=request.offer_id or None,
            estimate_seconds=request.estimate_seconds,
            reason=request.reason,
        )
        log_event(log, "offer_answered", task_id=request.task_id, teller=actor.id, answer=answer)
        return convert.task_to_pb(task)

    @rpc
    async def Reassign(
        self, request: pb.ReassignRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor = await self._staff(context, "Reassign")
        task = await apply_write(
            self.applier,
            self._service.reassign,
            actor,
            request.task_id,
            request.to_teller_id,
            request.reason,
        )
        log_event(
            log, "task_reassigned", task_id=request.task_id, to=request.to_teller_id, by=str(actor)
        )
        return convert.task_to_pb(task)

    @rpc
    async def Designate(
        self, request: pb.DesignateRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor = await self._staff(context, "Designate", (LOBBY,))
        task = await apply_write(
            self.applier,
            self._service.designate,
            actor,
            request.task_id,
            request.teller_id,
            request.reason,
        )
        log_event(
            log, "task_designated", task_id=request.task_id, to=request.teller_id, by=str(actor)
        )
        return convert.task_to_pb(task)

    @rpc
    async def GetMaterial(
        self, request: pb.GetMaterialRequest, context: grpc.aio.ServicerContext
    ) -> pb.MaterialData:
        actor = await self._staff(context, "GetMaterial")
        # A write: the read is audited (material_audit) in the transaction that reads it.
        material, data = await apply_write(
            self.applier, self._service.get_material, actor, request.task_id, request.sha256
        )
        # A customer's documents: every read by whom, in the log too.
        log_event(
            log,
            "material_read",
            task_id=request.task_id,
            name=material.name,
            sha256=material.sha256,
            by=str(actor),
        )
        return pb.MaterialData(material=convert.material_to_pb(material), data=data)

    @rpc
    async def CompleteTask(
        self, request: pb.CompleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor = await self._staff(context, "CompleteTask", (TELLER,))
        if request.outcome not in (pb.RESULT_OUTCOME_SUCCESS, pb.RESULT_OUTCOME_FAILURE):
            raise InvalidArgument("outcome", "must be success or failure", reason="required")
        success = request.outcome == pb.RESULT_OUTCOME_SUCCESS
        task = await apply_write(
            self.applier, self._service.complete, actor, request.task_id, success, request.reason
        )
        log_event(log, "task_completed", task_id=request.task_id, teller=actor.id, success=success)
        return convert.task_to_pb(task)


class TasksServicer(pb_grpc.TasksServicer):
    """Mobile counters: the origin of cross-branch tasks."""

    def __init__(self, service: DispatchService, auth: Authorizer, engine: Engine) -> None:
        self._service = service
        self._auth = auth
        self._engine = engine
        self.bus: LocalBus | None = None
        # Writes join the TerminalLink's group-commit batches (server/writes.py).
        self.applier: Applier | None = None

    async def _origin(self, context: grpc.aio.ServicerContext, method: str) -> tuple[Actor, str]:
        """The calling terminal and its branch; it must be registered as a mobile counter."""
        name = f"Tasks.{method}"
        actor = await identify(self._auth, context, (TERMINAL,), name)
        terminal = await asyncio.to_thread(fleet_registry.get_terminal, self._engine, actor.id)
        if terminal is None:
            raise PermissionDenied(
                f"{name} is for mobile-counter terminals: terminal {actor.id} has never "
                "registered over TerminalLink",
                rule="mobile_counter_only",
            )
        if terminal.kind != MOBILE_COUNTER:
            raise PermissionDenied(
                f"{name} is for mobile-counter terminals: terminal {actor.id} is registered "
                f"as {terminal.kind}",
                rule="mobile_counter_only",
            )
        return actor, terminal.branch

    @rpc
    async def SendTask(
        self, request: pb.SendTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor, branch = await self._origin(context, "SendTask")
        task = await apply_write(
            self.applier,
            self._service.send_task,
            actor,
            branch,
            request.request_id,
            request.target_branch,
            request.business_type,
            request.title,
            dict(request.fields),
            request.note,
            request.customer_ref,
        )
        log_event(
            log,
            "task_sent",
            task_id=task.task_id,
            origin=actor.id,
            target_branch=task.target_branch,
            state=task.state,
        )
        return convert.task_to_pb(task)

    @rpc
    async def UploadMaterial(
        self, request: pb.UploadMaterialRequest, context: grpc.aio.ServicerContext
    ) -> pb.Material:
        actor, _ = await self._origin(context, "UploadMaterial")
        material = await apply_write(
            self.applier,
            self._service.upload_material,
            actor,
            request.task_id,
            request.name,
            request.content_type,
            request.data,
            request.sha256,
        )
        log_event(
            log,
            "material_uploaded",
            task_id=request.task_id,
            size=material.size,
            sha256=material.sha256,
        )
        return convert.material_to_pb(material)

    @rpc
    async def GetTask(
        self, request: pb.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor, _ = await self._origin(context, "GetTask")
        return convert.task_to_pb(
            await asyncio.to_thread(self._service.get_task, actor, request.task_id)
        )

    @rpc
    async def ListTasks(
        self, request: pb.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTasksResponse:
        actor, _ = await self._origin(context, "ListTasks")
        return await _list(self._service, actor, request)

    @rpc
    async def CancelTask(
        self, request: pb.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.Task:
        actor, _ = await self._origin(context, "CancelTask")
        task = await apply_write(
            self.applier, self._service.cancel_task, actor, request.task_id, request.reason
        )
        return convert.task_to_pb(task)

    @rpc
    async def WatchTasks(
        self, request: pb.WatchTasksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DispatchEvent]:
        actor, _ = await self._origin(context, "WatchTasks")
        if request.task_id:
            await asyncio.to_thread(self._service.get_task, actor, request.task_id)  # access check
        scope = EventScope(origin_terminal=actor.id, task_id=request.task_id or None)
        async for event in _watch(self._service, scope, request.after_event_id, self.bus):
            yield event


class DispatchAdminServicer(pb_grpc.DispatchAdminServicer):
    """Operators: branches and staff records."""

    def __init__(self, service: DispatchService, auth: Authorizer) -> None:
        self._service = service
        self._auth = auth
        # Writes join the TerminalLink's group-commit batches (server/writes.py).
        self.applier: Applier | None = None

    async def _operator(self, context: grpc.aio.ServicerContext, method: str) -> Actor:
        return await identify(self._auth, context, (OPERATOR,), f"DispatchAdmin.{method}")

    @rpc
    async def AddBranch(
        self, request: pb.AddBranchRequest, context: grpc.aio.ServicerContext
    ) -> pb.Branch:
        await self._operator(context, "AddBranch")
        branch = await apply_write(
            self.applier,
            self._service.add_branch,
            request.branch_id,
            request.name,
            request.routing_strategy or None,
        )
        return convert.branch_to_pb(branch)

    @rpc
    async def ListBranches(
        self, request: pb.ListBranchesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListBranchesResponse:
        await self._operator(context, "ListBranches")
        branches = await asyncio.to_thread(self._service.list_branches)
        return pb.ListBranchesResponse(branches=[convert.branch_to_pb(b) for b in branches])

    @rpc
    async def AddTeller(
        self, request: pb.AddTellerRequest, context: grpc.aio.ServicerContext
    ) -> pb.StaffMember:
        await self._operator(context, "AddTeller")
        teller = await apply_write(
            self.applier,
            self._service.add_teller,
            request.teller_id,
            request.name,
            request.branch,
            list(request.skills),
        )
        return convert.staff_to_pb(teller)

    @rpc
    async def AddLobbyManager(
        self, request: pb.AddLobbyManagerRequest, context: grpc.aio.ServicerContext
    ) -> pb.StaffMember:
        await self._operator(context, "AddLobbyManager")
        manager = await apply_write(
            self.applier,
            self._service.add_lobby_manager,
            request.manager_id,
            request.name,
            request.branch,
        )
        return convert.staff_to_pb(manager)

    @rpc
    async def GetRoster(
        self, request: pb.GetRosterRequest, context: grpc.aio.ServicerContext
    ) -> pb.Roster:
        actor = await self._operator(context, "GetRoster")
        return await _roster(self._service, actor, request.branch)


async def _roster(service: DispatchService, actor: Actor, branch: str) -> pb.Roster:
    tellers, managers = await asyncio.to_thread(service.roster, actor, branch or None)
    shown = branch or (managers[0].branch_id if actor.role == LOBBY and managers else "")
    return pb.Roster(
        branch=shown,
        tellers=[convert.staff_to_pb(t) for t in tellers],
        lobby_managers=[convert.staff_to_pb(m) for m in managers],
    )


async def _list(
    service: DispatchService,
    actor: Actor,
    request: pb.ListTasksRequest,
) -> pb.ListTasksResponse:
    states = []
    for i, state in enumerate(request.states):
        name = convert.TASK_STATE_BY_PB.get(state)
        if name is None:
            raise InvalidArgument(f"states[{i}]", f"unknown task state {state}")
        states.append(name)
    tasks = await asyncio.to_thread(service.list_tasks, actor, states, request.branch or None)
    return pb.ListTasksResponse(tasks=[convert.task_to_pb(t) for t in tasks])


def add_dispatch_services(
    server: grpc.aio.Server,
    service: DispatchService,
    auth: Authorizer,
    engine: Engine,
    bus: LocalBus | None = None,
    applier: Applier | None = None,
) -> None:
    """``bus``: the delivery bus whose ``dispatch`` topic wakes watch streams at once;
    ``applier``: the TerminalLink's, which every write joins."""
    dispatch = DispatchServicer(service, auth)
    tasks = TasksServicer(service, auth, engine)
    admin = DispatchAdminServicer(service, auth)
    dispatch.bus = tasks.bus = bus
    dispatch.applier = tasks.applier = admin.applier = applier
    pb_grpc.add_DispatchServicer_to_server(dispatch, server)
    pb_grpc.add_TasksServicer_to_server(tasks, server)
    pb_grpc.add_DispatchAdminServicer_to_server(admin, server)


SERVICE_NAMES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in ("Dispatch", "Tasks", "DispatchAdmin")
)


async def sweep(service: DispatchService, interval: float, applier: Applier | None = None) -> None:
    """Move expired offers on and match free tellers with waiting tasks, forever."""
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await apply_write(applier, service.expire_offers)
            matched = await apply_write(applier, service.match_free_tellers)
        except Exception:  # the database may be briefly unreachable; keep sweeping
            log.exception("dispatch sweep failed")
            continue
        for task_id in expired:
            log_event(log, "offer_expired", logging.WARNING, task_id=task_id)
        if matched:
            log_event(log, "free_tellers_matched", count=matched)

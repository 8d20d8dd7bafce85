"""Cross-branch tasks on the console: a teller's duty and presence, live offers with their
expiry (accept / wait / reject), own tasks with their materials, results and reassignment;
a lobby manager's roster, the tasks waiting for designation, designate and reassign.

``Dispatch.WatchDispatch`` starts with a snapshot of the open tasks, then every event with
the task as it is now; a lost stream resumes after the last event seen, missing nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import grpc

from branchline.common.errors import (
    MAX_TEXT,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    check_text,
    echo,
)
from branchline.common.grpc_errors import error_details
from branchline.common.image_types import image_type
from branchline.common.logs import log_event
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import business_name, format_time
from branchline.server.console.task_facts import (
    field_rows,
    is_text,
    masked_fields,
    material_view,
)
from branchline.server.console.watch import follow
from branchline.v1 import dispatch_pb2 as pb

TELLER_ACTIONS = (
    "duty",
    "presence",
    "accept",
    "wait",
    "reject",
    "open",
    "close",
    "complete",
    "reassign",
)
LOBBY_ACTIONS = ("duty", "designate", "reassign", "open", "close", "teller_duty")
ANSWERS = {
    "accept": pb.OFFER_ANSWER_ACCEPT,
    "wait": pb.OFFER_ANSWER_WAIT,
    "reject": pb.OFFER_ANSWER_REJECT,
}
OPEN_STATES = (
    pb.TASK_STATE_QUEUED,
    pb.TASK_STATE_AT_LOBBY,
    pb.TASK_STATE_OFFERED,
    pb.TASK_STATE_WAITING,
    pb.TASK_STATE_ACCEPTED,
)
MAX_WAIT_MINUTES = 240
MAX_INDEX_DIGITS = 6
log = logging.getLogger("branchline.server.console")


def state_name(value: int) -> str:
    return str(pb.TaskState.Name(value)).removeprefix("TASK_STATE_").lower()


def _ts(message: Any, name: str) -> str:
    return format_time(getattr(message, name).ToDatetime()) if message.HasField(name) else ""


def material_url(task_id: str, index: int) -> str:
    """Where the page loads a task's material image (materials_web.py): by its place in the
    task's list as the console opened it."""
    return f"/tasks/{quote(task_id, safe='')}/materials/{index}"


def task_view(task: pb.Task, now: float, lang: str) -> dict[str, Any]:
    expires = (
        max(0, int(task.offer_expires_at.ToDatetime().timestamp() - now))
        if task.HasField("offer_expires_at") and task.state == pb.TASK_STATE_OFFERED
        else None
    )
    return {
        "task_id": task.task_id,
        "title": task.title,
        "business_type": task.business_type,
        "business_name": business_name(lang, task.business_type),
        "origin_terminal": task.origin_terminal,
        "origin_branch": task.origin_branch,
        "target_branch": task.target_branch,
        "state": state_name(task.state),
        "teller_id": task.teller_id,
        "offer_id": task.offer_id,
        "expires_in": expires,
        "customer_ref": task.customer_ref,
        "fields": masked_fields(task.fields),
        "note": task.note,
        "result": {
            "outcome": str(pb.ResultOutcome.Name(task.result.outcome))
            .removeprefix("RESULT_OUTCOME_")
            .lower(),
            "reason": task.result.reason,
        }
        if task.HasField("result")
        else None,
        "created_at": _ts(task, "created_at"),
    }


def member_view(member: pb.StaffMember) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "on_duty": member.on_duty,
        "presence": str(pb.Presence.Name(member.presence)).removeprefix("PRESENCE_").lower(),
        "held_tasks": member.held_tasks,
        "skills": list(member.skills),
    }


def _reason(data: dict[str, Any], required: bool) -> str:
    return check_text(
        "reason", str(data.get("reason", "")).strip(), max_len=MAX_TEXT, required=required
    )


def _task_id(data: dict[str, Any]) -> str:
    return check_text("task_id", str(data.get("task_id", "")))


class TaskDesk:
    """One person's tasks (a teller's own, a lobby manager's branch), kept live."""

    def __init__(self, client: StaffClient, me: dict[str, Any], changed: Callable[[], None]):
        self._client = client
        self._me = me
        self._changed = changed
        self.lobby = me["role"] == "lobby"
        self.tasks: dict[str, pb.Task] = {}
        self.roster: list[pb.StaffMember] = []
        self.detail: pb.Task | None = None
        self.materials: list[dict[str, Any]] = []
        # The open task's materials as the server listed them: materials_web.py serves an
        # image by its place here, read from the server for each request (which audits it),
        # never sent in the state nor kept on the console.
        self._material_list: list[pb.Material] = []
        self.last_event_id = 0

    async def run(self, on_down: Callable[[], None]) -> None:
        await follow(
            lambda: self._client.stream(
                self._client.dispatch.WatchDispatch,
                pb.WatchDispatchRequest(after_event_id=self.last_event_id),
            ),
            self._on_event,
            lambda: None,
            on_down,
        )

    def _mine(self, task: pb.Task) -> bool:
        if task.state not in OPEN_STATES:
            return False
        return self.lobby or task.teller_id == self._me["id"]

    def _on_event(self, event: pb.DispatchEvent) -> None:
        self._client.online = True
        if event.kind != "snapshot":
            self.last_event_id = max(self.last_event_id, event.event_id)
        if event.HasField("task") and event.task.task_id:
            task = event.task
            if self._mine(task):
                self.tasks[task.task_id] = task
            else:
                self.tasks.pop(task.task_id, None)
            if self.detail is not None and self.detail.task_id == task.task_id:
                self.detail.MergeFrom(task)
                self.detail.state = task.state
        if self.lobby:  # duty, presence and held tasks change the roster
            asyncio.ensure_future(self._roster_then_publish())
        self._changed()

    async def _roster_then_publish(self) -> None:
        try:
            await self.refresh_roster()
        except grpc.aio.AioRpcError:
            return  # the stream's reconnect brings it back
        self._changed()

    def snapshot(self, lang: str) -> dict[str, Any]:
        now = time.time()
        tasks = sorted(self.tasks.values(), key=lambda t: (t.state, t.task_id))
        detail = None
        if self.detail is not None:
            detail = {
                **task_view(self.detail, now, lang),
                "facts": field_rows(lang, self.detail.fields),
                "materials": self.materials,
            }
        return {
            "tasks": [task_view(t, now, lang) for t in tasks],
            "roster": [member_view(m) for m in self.roster],
            "detail": detail,
        }

    async def refresh_roster(self) -> None:
        if self.lobby:
            roster = await self._client.call(self._client.dispatch.GetRoster, pb.GetRosterRequest())
            self.roster = list(roster.tellers)

    # -- acting -----------------------------------------------------------------------------

    async def handle(self, action: str, data: dict[str, Any]) -> pb.StaffMember | None:
        """Carry out ``action``; a changed staff record of the person is returned."""
        dispatch = self._client.dispatch
        call = self._client.call
        if action == "duty":
            on = data.get("on")
            if not isinstance(on, bool):
                raise InvalidArgument("on", "true (on duty) or false (off duty)")
            return await call(dispatch.SetDuty, pb.SetDutyRequest(on_duty=on))  # type: ignore[no-any-return]
        if action == "presence":
            away = data.get("away")
            if not isinstance(away, bool):
                raise InvalidArgument("away", "true (away) or false (back)")
            return await call(dispatch.SetPresence, pb.SetPresenceRequest(away=away))  # type: ignore[no-any-return]
        if action == "teller_duty":
            teller = check_text("teller_id", str(data.get("teller_id", "")))
            on = bool(data.get("on"))
            await call(dispatch.SetDuty, pb.SetDutyRequest(on_duty=on, teller_id=teller))
        elif action in ANSWERS:
            self._keep(await call(dispatch.AnswerOffer, self._answer(action, data)))
        elif action == "complete":
            outcome = {"success": pb.RESULT_OUTCOME_SUCCESS, "failure": pb.RESULT_OUTCOME_FAILURE}
            chosen = outcome.get(str(data.get("outcome", "")))
            if chosen is None:
                raise InvalidArgument("outcome", "success or failure")
            reason = _reason(data, required=chosen == pb.RESULT_OUTCOME_FAILURE)
            done = pb.CompleteTaskRequest(task_id=_task_id(data), outcome=chosen, reason=reason)
            self._keep(await call(dispatch.CompleteTask, done))
        elif action == "reassign":
            to = check_text("to_teller_id", str(data.get("to_teller_id", "")).strip())
            moved = pb.ReassignRequest(
                task_id=_task_id(data), to_teller_id=to, reason=_reason(data, required=False)
            )
            self._keep(await call(dispatch.Reassign, moved))
        elif action == "designate":
            teller = check_text("teller_id", str(data.get("teller_id", "")).strip())
            chosen_task = pb.DesignateRequest(
                task_id=_task_id(data), teller_id=teller, reason=_reason(data, required=False)
            )
            self._keep(await call(dispatch.Designate, chosen_task))
        elif action == "open":
            await self._open(_task_id(data))
        elif action == "close":
            self.detail, self.materials, self._material_list = None, [], []
        await self.refresh_roster()
        return None

    def _answer(self, action: str, data: dict[str, Any]) -> pb.AnswerOfferRequest:
        """Accept, wait (minutes) or reject the offer the teller holds now."""
        task = self._held(data)
        estimate = 0
        if action == "wait":
            raw = str(data.get("minutes", "")).strip()
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_WAIT_MINUTES:
                raise InvalidArgument("minutes", f"a wait of 1 to {MAX_WAIT_MINUTES} minutes")
            estimate = int(raw) * 60
        return pb.AnswerOfferRequest(
            task_id=task.task_id,
            offer_id=task.offer_id,
            answer=ANSWERS[action],
            estimate_seconds=estimate,
            reason=_reason(data, required=False),
        )

    def _held(self, data: dict[str, Any]) -> pb.Task:
        task = self.tasks.get(_task_id(data))
        if task is None:
            raise FailedPrecondition("task_id: no such task is offered to you", field="task_id")
        return task

    def _keep(self, task: pb.Task) -> None:
        if self._mine(task):
            self.tasks[task.task_id] = task
        else:
            self.tasks.pop(task.task_id, None)
        if self.detail is not None and self.detail.task_id == task.task_id:
            self.detail.state = task.state
            self.detail.teller_id = task.teller_id  # reassigned: no longer this teller's
            self.detail.result.CopyFrom(task.result)

    async def _open(self, task_id: str) -> None:
        """The task with its materials (the server checks that it is the caller's): images
        by their route (read when the page loads them), text read now to be shown."""
        task = await self._client.call(
            self._client.dispatch.GetTask, pb.GetTaskRequest(task_id=task_id)
        )
        shown = []
        for index, material in enumerate(task.materials):
            url = material_url(task_id, index)
            data = None
            if is_text(material) and not material.HasField("deleted_at"):
                data = await self._read(task_id, material)
            if data is not None:
                self._viewed(task_id, index, material)  # shown in the state now
            # By the task's own entry: two materials of the same content share one sha256.
            shown.append(material_view(material, url, data))
        self.detail, self.materials, self._material_list = task, shown, list(task.materials)

    async def _read(self, task_id: str, material: pb.Material) -> bytes | None:
        """The material's bytes from the server, which audits the read; None once its
        retention deleted them (``material`` is then marked so, with when the server says)."""
        try:
            found = await self._client.call(
                self._client.dispatch.GetMaterial,
                pb.GetMaterialRequest(task_id=task_id, sha256=material.sha256),
            )
        except grpc.aio.AioRpcError as exc:
            refusal = error_details(exc)
            if refusal.reason != "material_deleted":
                raise
            try:
                when = datetime.fromisoformat(refusal.metadata.get("deleted_at", ""))
                material.deleted_at.FromDatetime(when)
            except ValueError:
                material.deleted_at.GetCurrentTime()  # the server always says; never unmarked
            material.image_type = ""
            return None
        return bytes(found.data)

    async def _mark_deleted(self, task_id: str, detail: pb.Task) -> None:
        """The open task's materials the retention deleted, as the server lists them now
        (it deletes all of an ended task's at once: a PDF, never read by a route, is marked
        too); no bytes are read, so nothing is audited as viewed."""
        task = await self._client.call(
            self._client.dispatch.GetTask, pb.GetTaskRequest(task_id=task_id)
        )
        if self.detail is not detail:
            return  # another task was opened meanwhile
        for index, found in enumerate(task.materials):
            if index >= len(self._material_list) or not found.HasField("deleted_at"):
                continue
            known = self._material_list[index]
            if known.sha256 != found.sha256:
                continue
            known.deleted_at.CopyFrom(found.deleted_at)
            known.image_type = ""
            if index < len(self.materials):
                self.materials[index] = material_view(known, "")
        self._changed()

    def _viewed(self, task_id: str, index: int, material: pb.Material) -> None:
        # A customer's documents: who looked at which, as for recordings.
        log_event(
            log,
            "task_material_viewed",
            who=f"{self._me['role']}:{self._me['id']}",
            task_id=task_id,
            index=index,
            name=material.name,
            sha256=material.sha256,
        )

    async def material_image(self, task_id: str, index: str) -> tuple[bytes, str]:
        """The open task's material image ``index`` (its bytes, read from the server for
        this request, which audits it, and their sniffed type), logged as viewed by this
        person; refused, naming what was wrong, when this console has no such task open, a
        teller no longer holds it, the index names no image, or its bytes were deleted."""
        detail = self.detail
        if detail is None or detail.task_id != task_id:
            raise NotFound(
                f"task_id: no task {echo(task_id)} is open on this console (open it first)",
                field="task_id",
            )
        if not self.lobby and detail.teller_id != self._me["id"]:
            holder = f"teller {detail.teller_id}" if detail.teller_id else "no teller"
            raise PermissionDenied(
                f"task_id: task {task_id} is held by {holder}, not by teller {self._me['id']}: "
                "its materials are shown to the teller who holds it",
                rule="task_holder_only",
                field="task_id",
            )
        if not index.isascii() or not index.isdigit():
            raise InvalidArgument("index", f"{echo(index)} is not a material number (0, 1, ...)")
        count = len(self._material_list)
        # A number of more digits than any list of materials has: out of range, unparsed.
        if len(index) > MAX_INDEX_DIGITS or int(index) >= count:
            have = f"materials 0 to {count - 1}" if count else "no materials"
            raise NotFound(
                f"index: task {task_id} has {have}, no material {echo(index)}", field="index"
            )
        number = int(index)
        material = self._material_list[number]
        data = None
        if material.image_type and not material.HasField("deleted_at"):
            data = await self._read(task_id, material)
            if data is None and self.detail is detail:
                # Deleted since the task was opened: the page says so, not a broken image.
                await self._mark_deleted(task_id, detail)
        if material.HasField("deleted_at"):  # before, or as this read found
            raise FailedPrecondition(
                f"index: material {number} of task {task_id} ({material.name}) was deleted: "
                "the server keeps a task's materials only for a set time after it ended",
                field="index",
                reason="material_deleted",
            )
        kind = image_type(data or b"")
        if data is None or not kind:
            raise NotFound(
                f"index: material {number} of task {task_id} ({material.name}) is not an image",
                field="index",
            )
        self._viewed(task_id, number, material)
        return data, kind

"""Dispatch records to and from branchline.v1 messages."""

from __future__ import annotations

from branchline.server.convert import timestamp
from branchline.server.dispatch import model
from branchline.server.dispatch.model import (
    Branch,
    DispatchEvent,
    LobbyManager,
    Material,
    Offer,
    Task,
    Teller,
)
from branchline.v1 import dispatch_pb2 as pb

TASK_STATES = {
    model.QUEUED: pb.TASK_STATE_QUEUED,
    model.AT_LOBBY: pb.TASK_STATE_AT_LOBBY,
    model.OFFERED: pb.TASK_STATE_OFFERED,
    model.WAITING: pb.TASK_STATE_WAITING,
    model.ACCEPTED: pb.TASK_STATE_ACCEPTED,
    model.DONE: pb.TASK_STATE_DONE,
    model.CANCELLED: pb.TASK_STATE_CANCELLED,
}
TASK_STATE_BY_PB = {v: k for k, v in TASK_STATES.items()}

PRESENCES = {
    model.OFF_DUTY: pb.PRESENCE_OFF_DUTY,
    model.IDLE: pb.PRESENCE_IDLE,
    model.BUSY: pb.PRESENCE_BUSY,
    model.AWAY: pb.PRESENCE_AWAY,
}

ANSWER_BY_PB = {
    pb.OFFER_ANSWER_ACCEPT: model.ACCEPT,
    pb.OFFER_ANSWER_WAIT: model.WAIT,
    pb.OFFER_ANSWER_REJECT: model.REJECT,
}

OUTCOMES = {model.SUCCESS: pb.RESULT_OUTCOME_SUCCESS, model.FAILURE: pb.RESULT_OUTCOME_FAILURE}


def branch_to_pb(branch: Branch) -> pb.Branch:
    return pb.Branch(
        branch_id=branch.branch_id,
        name=branch.name,
        routing_strategy=branch.routing_strategy or "",
        created_at=timestamp(branch.created_at),
    )


def staff_to_pb(record: Teller | LobbyManager) -> pb.StaffMember:
    if isinstance(record, Teller):
        return pb.StaffMember(
            role=pb.STAFF_ROLE_TELLER,
            id=record.teller_id,
            name=record.name,
            branch=record.branch_id,
            skills=list(record.skills),
            on_duty=record.on_duty,
            presence=PRESENCES[record.presence],
            held_tasks=record.load,
            handled=record.handled,
            idle_since=timestamp(record.idle_since),
        )
    return pb.StaffMember(
        role=pb.STAFF_ROLE_LOBBY_MANAGER,
        id=record.manager_id,
        name=record.name,
        branch=record.branch_id,
        on_duty=record.on_duty,
        presence=pb.PRESENCE_IDLE if record.on_duty else pb.PRESENCE_OFF_DUTY,
    )


def material_to_pb(material: Material) -> pb.Material:
    return pb.Material(
        name=material.name,
        content_type=material.content_type,
        sha256=material.sha256,
        size=material.size,
        uploaded_at=timestamp(material.uploaded_at),
        image_type=material.image_type,
        deleted_at=timestamp(material.deleted_at),
    )


def offer_to_pb(offer: Offer) -> pb.Offer:
    return pb.Offer(
        offer_id=offer.offer_id,
        teller_id=offer.teller_id,
        via=offer.via,
        offered_by=offer.offered_by,
        offered_at=timestamp(offer.offered_at),
        expires_at=timestamp(offer.expires_at),
        answer=offer.answer or "",
        answered_at=timestamp(offer.answered_at),
        reason=offer.reason,
    )


def task_to_pb(task: Task) -> pb.Task:
    result = None
    if task.result_outcome is not None:
        result = pb.TaskResult(
            outcome=OUTCOMES.get(task.result_outcome, pb.RESULT_OUTCOME_UNSPECIFIED),
            reason=task.result_reason or "",
        )
    return pb.Task(
        task_id=task.task_id,
        request_id=task.request_id,
        origin_terminal=task.origin_terminal,
        origin_branch=task.origin_branch,
        target_branch=task.target_branch,
        business_type=task.business_type,
        title=task.title,
        fields=task.fields,
        note=task.note,
        customer_ref=task.customer_ref,
        state=TASK_STATES.get(task.state, pb.TASK_STATE_UNSPECIFIED),
        teller_id=task.teller_id or "",
        offer_id=task.offer_id or 0,
        offer_expires_at=timestamp(task.offer_expires_at),
        lobby_manager_id=task.lobby_manager_id or "",
        wait_estimate_seconds=task.wait_estimate_seconds or 0,
        result=result,
        created_at=timestamp(task.created_at),
        updated_at=timestamp(task.updated_at),
        materials=[material_to_pb(m) for m in task.materials],
        offers=[offer_to_pb(o) for o in task.offers],
        history=[event_to_pb(e) for e in task.events],
    )


def event_to_pb(event: DispatchEvent, task: Task | None = None) -> pb.DispatchEvent:
    return pb.DispatchEvent(
        event_id=event.event_id,
        kind=event.kind,
        task_id=event.task_id or "",
        teller_id=event.teller_id or "",
        state=TASK_STATES.get(event.state, pb.TASK_STATE_UNSPECIFIED),
        detail=event.detail,
        at=timestamp(event.at),
        branch=event.branch,
        task=task_to_pb(task) if task is not None else None,
    )


def snapshot_to_pb(task: Task, event_id: int) -> pb.DispatchEvent:
    """What a watch stream starts with: one event per open task, as it is now."""
    return pb.DispatchEvent(
        event_id=event_id,
        kind="snapshot",
        task_id=task.task_id,
        teller_id=task.teller_id or "",
        state=TASK_STATES.get(task.state, pb.TASK_STATE_UNSPECIFIED),
        detail=f"{task.state}",
        at=timestamp(task.updated_at),
        branch=task.target_branch,
        task=task_to_pb(task),
    )

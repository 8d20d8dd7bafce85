"""One-line views of dispatch tasks, events and staff, shared by the roles."""

from __future__ import annotations

from branchline.server.teller.output import enum_name, when
from branchline.v1 import dispatch_pb2 as pb


def task_line(task: pb.Task) -> str:
    state = enum_name(task.state, pb.TaskState, "TASK_STATE_")
    holder = f" teller {task.teller_id}" if task.teller_id else ""
    extra = ""
    if task.state == pb.TASK_STATE_OFFERED:
        extra = f" (offer {task.offer_id}, answer by {when(task.offer_expires_at)})"
    elif task.state == pb.TASK_STATE_WAITING:
        extra = f" (wait about {task.wait_estimate_seconds} s)"
    elif task.state == pb.TASK_STATE_AT_LOBBY:
        extra = f" (lobby manager {task.lobby_manager_id})"
    elif task.HasField("result"):
        outcome = enum_name(task.result.outcome, pb.ResultOutcome, "RESULT_OUTCOME_")
        extra = f" ({outcome}{': ' + task.result.reason if task.result.reason else ''})"
    return (
        f"{task.task_id}  {state:9} {task.business_type:16} {task.title!r} "
        f"from {task.origin_terminal} ({task.origin_branch}) to {task.target_branch}"
        f"{holder}{extra}"
    )


def event_line(event: pb.DispatchEvent) -> str:
    state = enum_name(event.state, pb.TaskState, "TASK_STATE_") if event.state else ""
    subject = event.task_id or event.teller_id
    return f"#{event.event_id} {when(event.at)} {event.kind:14} {subject} {state} {event.detail}"


def staff_line(member: pb.StaffMember) -> str:
    role = enum_name(member.role, pb.StaffRole, "STAFF_ROLE_")
    presence = enum_name(member.presence, pb.Presence, "PRESENCE_")
    skills = f" skills {','.join(member.skills)}" if member.skills else ""
    held = f" holds {member.held_tasks}" if member.role == pb.STAFF_ROLE_TELLER else ""
    return f"{role} {member.id} ({member.name}) branch {member.branch}: {presence}{held}{skills}"


STATE_CHOICES = [
    v.name.removeprefix("TASK_STATE_").lower() for v in pb.TaskState.DESCRIPTOR.values if v.number
]

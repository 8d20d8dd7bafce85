"""A teller's commands: sign in, duty and presence, offers, tasks, results, the live watch,
and a receipt's transaction (``lookup``)."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from branchline.server import receipts_cli
from branchline.server.teller.client import Client
from branchline.server.teller.output import emit, notice, to_dict, when
from branchline.server.teller.views import STATE_CHOICES, event_line, staff_line, task_line
from branchline.server.teller.watch import follow
from branchline.v1 import dispatch_pb2 as pb

EXIT_REFUSED = 1
Command = Callable[[str, Callable[[Client, argparse.Namespace], int], str], Any]


def cmd_whoami(client: Client, args: argparse.Namespace) -> int:
    member = client.call(client.dispatch.WhoAmI, pb.WhoAmIRequest())
    emit(args, member, staff_line(member))
    return 0


def cmd_duty(client: Client, args: argparse.Namespace) -> int:
    request = pb.SetDutyRequest(on_duty=args.state == "on", teller_id=args.teller or "")
    member = client.call(client.dispatch.SetDuty, request)
    emit(args, member, staff_line(member))
    return 0


def cmd_presence(client: Client, args: argparse.Namespace) -> int:
    member = client.call(client.dispatch.SetPresence, pb.SetPresenceRequest(away=args.away))
    emit(args, member, staff_line(member))
    return 0


def cmd_tasks(client: Client, args: argparse.Namespace) -> int:
    states = ["TASK_STATE_" + s.upper() for s in args.state or []]
    request = pb.ListTasksRequest(states=states, branch=args.branch or "")
    method = client.tasks.ListTasks if args.origin else client.dispatch.ListTasks
    reply = client.call(method, request)
    emit(args, reply, "\n".join(task_line(t) for t in reply.tasks) or "(no tasks)")
    return 0


def cmd_show(client: Client, args: argparse.Namespace) -> int:
    method = client.tasks.GetTask if args.origin else client.dispatch.GetTask
    task = client.call(method, pb.GetTaskRequest(task_id=args.task))
    lines = [task_line(task)]
    lines += [f"  {k}: {v}" for k, v in sorted(task.fields.items())]
    if task.note:
        lines.append(f"  note: {task.note}")
    lines += [
        f"  material {m.name} {m.content_type} {m.size} bytes sha256 {m.sha256}{_deleted(m)}"
        for m in task.materials
    ]
    lines += [f"  {event_line(e)}" for e in task.history]
    emit(args, task, "\n".join(lines))
    return 0


def cmd_answer(client: Client, args: argparse.Namespace) -> int:
    answers = {
        "accept": pb.OFFER_ANSWER_ACCEPT,
        "wait": pb.OFFER_ANSWER_WAIT,
        "reject": pb.OFFER_ANSWER_REJECT,
    }
    estimate = 0
    if args.command == "wait":
        estimate = int(args.seconds if args.seconds is not None else args.minutes * 60)
    request = pb.AnswerOfferRequest(
        task_id=args.task,
        offer_id=args.offer or 0,
        answer=answers[args.command],
        estimate_seconds=estimate,
        reason=args.reason or "",
    )
    task = client.call(client.dispatch.AnswerOffer, request)
    emit(args, task, task_line(task))
    return 0


def cmd_reassign(client: Client, args: argparse.Namespace) -> int:
    """``reassign`` (a teller's or lobby manager's) and ``designate`` (lobby managers)."""
    if args.command == "designate":
        request: Message = pb.DesignateRequest(
            task_id=args.task, teller_id=args.teller, reason=args.reason or ""
        )
        task = client.call(client.dispatch.Designate, request)
    else:
        request = pb.ReassignRequest(
            task_id=args.task, to_teller_id=args.teller, reason=args.reason or ""
        )
        task = client.call(client.dispatch.Reassign, request)
    emit(args, task, task_line(task))
    return 0


def cmd_result(client: Client, args: argparse.Namespace) -> int:
    outcome = pb.RESULT_OUTCOME_SUCCESS if args.outcome == "success" else pb.RESULT_OUTCOME_FAILURE
    request = pb.CompleteTaskRequest(task_id=args.task, outcome=outcome, reason=args.reason or "")
    task = client.call(client.dispatch.CompleteTask, request)
    emit(args, task, task_line(task))
    return 0


def _deleted(material: pb.Material) -> str:
    """What a listing adds for a material whose bytes the retention deleted."""
    if not material.HasField("deleted_at"):
        return ""
    return f"  (deleted {when(material.deleted_at, with_date=True)} by retention)"


def cmd_materials(client: Client, args: argparse.Namespace) -> int:
    """List a task's materials; with --save, fetch each and check its SHA-256 (a material
    the retention deleted is listed as such and not fetched: its bytes are gone)."""
    task = client.call(client.dispatch.GetTask, pb.GetTaskRequest(task_id=args.task))
    saved: list[dict[str, Any]] = []
    lines = []
    for material in task.materials:
        entry = to_dict(material)
        line = f"{material.name}  {material.content_type}  {material.size} bytes  {material.sha256}"
        line += _deleted(material)
        if args.save is not None and not material.HasField("deleted_at"):
            reply = client.call(
                client.dispatch.GetMaterial,
                pb.GetMaterialRequest(task_id=args.task, sha256=material.sha256),
            )
            if hashlib.sha256(reply.data).hexdigest() != material.sha256:
                notice(f"{material.name}: SHA-256 mismatch")
                return EXIT_REFUSED
            args.save.mkdir(parents=True, exist_ok=True)
            path = args.save / Path(material.name).name
            path.write_bytes(reply.data)
            entry["saved_to"] = str(path)
            line += f"  -> {path}"
        saved.append(entry)
        lines.append(line)
    if args.json:
        print(json.dumps({"task_id": args.task, "materials": saved}, sort_keys=True), flush=True)
    else:
        print("\n".join(lines) or "(no materials)", flush=True)
    return 0


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    """Events as they come (offers, task changes; the origin's with ``counter watch``),
    resumed after the last one on a lost stream."""

    def open_stream(after: int) -> Any:
        if args.origin:
            request: Message = pb.WatchTasksRequest(after_event_id=after, task_id=args.task or "")
            return client.stream(client.tasks.WatchTasks, request)
        return client.stream(
            client.dispatch.WatchDispatch, pb.WatchDispatchRequest(after_event_id=after)
        )

    def show(event: pb.DispatchEvent) -> None:
        human = event_line(event)
        if event.kind == "snapshot":
            human = f"#{event.event_id} now     {task_line(event.task)}"
        emit(args, event, human)

    return follow(open_stream, lambda e: e.event_id, show, after=args.after, count=args.count)


def add_commands(command: Command) -> None:
    command("whoami", cmd_whoami, "sign in: who the server takes you for")
    p = command("lookup", receipts_cli.cmd_lookup, "a receipt's transaction: BLTX:TERMINAL:TXN")
    p.add_argument("reference")
    p = command("duty", cmd_duty, "go on or off duty (lobby managers: --teller for the roster)")
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--teller", help="a teller of your branch (lobby managers)")
    command("away", cmd_presence, "step away: no offers until back").set_defaults(away=True)
    command("back", cmd_presence, "back from away").set_defaults(away=False)
    p = command("tasks", cmd_tasks, "your tasks (lobby managers: your branch's)")
    p.add_argument("--state", action="append", choices=STATE_CHOICES, help="repeatable")
    p.add_argument("--branch")
    p.set_defaults(origin=False)
    p = command("show", cmd_show, "a task with its materials and history")
    p.add_argument("task")
    p.set_defaults(origin=False)
    p = command("watch", cmd_watch, "offers and task events as they happen (reconnects)")
    p.add_argument("--after", type=int, default=0, help="resume after this event id")
    p.add_argument("--count", type=int, default=0, help="exit after this many events")
    p.set_defaults(origin=False, task=None)
    for name, help_text in (
        ("accept", "accept an offer"),
        ("wait", "ask the origin to wait, with an estimate"),
        ("reject", "reject an offer: it moves on"),
    ):
        p = command(name, cmd_answer, help_text)
        p.add_argument("task")
        p.add_argument("--offer", type=int, help="the offer id you are answering")
        p.add_argument("--reason")
        if name == "wait":
            group = p.add_mutually_exclusive_group(required=True)
            group.add_argument("--minutes", type=float)
            group.add_argument("--seconds", type=int)
    p = command("reassign", cmd_reassign, "hand a task to a named teller of its branch")
    p.add_argument("task")
    p.add_argument("teller")
    p.add_argument("--reason")
    p = command("materials", cmd_materials, "a task's materials; --save DIR fetches them")
    p.add_argument("task")
    p.add_argument("--save", type=Path, metavar="DIR")
    p = command("result", cmd_result, "return the result to the origin")
    p.add_argument("task")
    p.add_argument("outcome", choices=["success", "failure"])
    p.add_argument("--reason", help="required for a failure")

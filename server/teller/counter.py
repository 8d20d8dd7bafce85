"""The mobile counter's side (a terminal certificate), for demos and checks: send a task,
upload a material, cancel, and follow the tasks it sent."""

from __future__ import annotations

import argparse
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from branchline.server.teller.client import Client, UsageError
from branchline.server.teller.output import emit
from branchline.server.teller.teller import cmd_show, cmd_tasks, cmd_watch
from branchline.server.teller.views import STATE_CHOICES, task_line
from branchline.v1 import dispatch_pb2 as pb


def _fields(items: list[str]) -> dict[str, str]:
    fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--field: {item!r} is not KEY=VALUE")
        fields[key] = value
    return fields


def cmd_counter(client: Client, args: argparse.Namespace) -> int:
    if args.counter_command == "send":
        task = client.call(
            client.tasks.SendTask,
            pb.SendTaskRequest(
                request_id=args.request_id or f"cli-{datetime.now(UTC).timestamp():.6f}",
                target_branch=args.to,
                business_type=args.type,
                title=args.title,
                fields=_fields(args.field or []),
                note=args.note or "",
                customer_ref=args.customer or "",
            ),
        )
        emit(args, task, task_line(task))
    elif args.counter_command == "upload":
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise UsageError(f"FILE: cannot read {args.file}: {exc.strerror}") from None
        material = client.call(
            client.tasks.UploadMaterial,
            pb.UploadMaterialRequest(
                task_id=args.task,
                name=args.name or args.file.name,
                content_type=args.content_type,
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
            ),
        )
        emit(args, material, f"{material.name} {material.size} bytes sha256 {material.sha256}")
    elif args.counter_command == "cancel":
        task = client.call(
            client.tasks.CancelTask,
            pb.CancelTaskRequest(task_id=args.task, reason=args.reason or ""),
        )
        emit(args, task, task_line(task))
    return 0


def add_commands(sub: Any) -> None:
    counter = sub.add_parser("counter", help="the mobile counter's side (terminal certificate)")
    counter_sub = counter.add_subparsers(dest="counter_command", required=True)
    counter.set_defaults(handler=cmd_counter)

    def counter_command(name: str, help: str, handler: Any = None) -> Any:
        p = counter_sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true")
        if handler is not None:
            p.set_defaults(handler=handler, origin=True)
        return p

    p = counter_command("send", "send a task to a branch")
    p.add_argument("--to", required=True, help="target branch")
    p.add_argument("--type", required=True, help="business type")
    p.add_argument("--title", required=True)
    p.add_argument("--field", action="append", metavar="KEY=VALUE")
    p.add_argument("--note")
    p.add_argument("--customer")
    p.add_argument("--request-id")
    p = counter_command("upload", "attach a file to a task")
    p.add_argument("task")
    p.add_argument("file", type=Path)
    p.add_argument("--name")
    p.add_argument("--content-type", default="application/octet-stream")
    p = counter_command("cancel", "withdraw a task")
    p.add_argument("task")
    p.add_argument("--reason")
    p = counter_command("show", "a task you sent", cmd_show)
    p.add_argument("task")
    p = counter_command("tasks", "the tasks you sent", cmd_tasks)
    p.add_argument("--state", action="append", choices=STATE_CHOICES)
    p.add_argument("--branch")
    p = counter_command("watch", "events of your tasks (reconnects)", cmd_watch)
    p.add_argument("--task")
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--count", type=int, default=0)

"""``branchline-teller``: the teller and lobby-manager client of the dispatch server.

Signing in is choosing a certificate: ``--tls-dir PKI --as teller:T01`` uses
``PKI/tellers/T01.pem`` (``lobby:ID`` → ``lobby/``, ``operator:NAME`` → ``operators/``,
``terminal:ID`` → ``terminals/``). ``whoami`` shows who the server takes you for.

    branchline-teller --as teller:T01 duty on
    branchline-teller --as teller:T01 watch                # offers and task events, live
    branchline-teller --as teller:T01 accept TASK | wait TASK --minutes 5 | reject TASK
    branchline-teller --as teller:T01 materials TASK --save DIR
    branchline-teller --as teller:T01 result TASK success | failure --reason "..."
    branchline-teller --as lobby:L01 roster | designate TASK T02 | reassign TASK T03
    branchline-teller --as operator:ops admin add-teller T01 --name ... --branch B --skill loan
    branchline-teller --as terminal:MC-1 counter send --to B --type loan --title ...
    branchline-teller --as teller:T01 call queue | current --wait 60 | answer | end CALL
    branchline-teller --as teller:T01 call signal CALL offer --file offer.sdp
    branchline-teller --as teller:T01 call signals CALL          # the terminal's SDP / ICE
    branchline-teller --as teller:T01 call device CALL read_card | pin | print --line ... --wait
    branchline-teller --as teller:T01 call results CALL          # device outcomes, live
    branchline-teller --as teller:BO1 tube list | show TXN | watch | receive TXN --carrier N
    branchline-teller --as teller:BO1 tube count TXN --kind cash --currency CNY --amount 490.00
    branchline-teller --as teller:BO1 tube send TXN --carrier N | incidents | resolve ID ...

Every command that prints data takes ``--json``. Exit 0 on success, 1 when the server
refuses (the message names the field or the rule), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from branchline.server import receipts_cli
from branchline.server.auth import PRINCIPAL_METADATA_KEY
from branchline.server.tube import cli as tube_cli
from branchline.v1 import calls_pb2, calls_pb2_grpc
from branchline.v1 import dispatch_pb2 as pb
from branchline.v1 import dispatch_pb2_grpc as pb_grpc

EXIT_REFUSED = 1
EXIT_USAGE = 2
FOLDERS = {"teller": "tellers", "lobby": "lobby", "operator": "operators", "terminal": "terminals"}
MAX_MESSAGE = 64 * 1024 * 1024
# Reconnect backoff of `watch` (seconds): jittered, doubling up to the cap.
BACKOFF_FIRST = 0.2
BACKOFF_CAP = 3.0
# Statuses after which `watch` reconnects: the server restarted or a replica went away.
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
STATE_CHOICES = [
    v.name.removeprefix("TASK_STATE_").lower() for v in pb.TaskState.DESCRIPTOR.values if v.number
]


class UsageError(Exception):
    pass


# -- connection ----------------------------------------------------------------------------


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        role, _, ident = (args.as_ or "").partition(":")
        if role not in FOLDERS or not ident:
            raise UsageError(
                "--as: name yourself as ROLE:ID, ROLE one of teller, lobby, operator, terminal "
                "(or set BRANCHLINE_AS)"
            )
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
        self.metadata: tuple[tuple[str, str], ...] = ()
        if args.insecure:
            self.channel = grpc.insecure_channel(args.target, options=options)
            self.metadata = ((PRINCIPAL_METADATA_KEY, f"{role}:{ident}"),)
        else:
            ca, cert, key = _cert_files(args, role, ident)
            try:
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=ca.read_bytes(),
                    private_key=key.read_bytes(),
                    certificate_chain=cert.read_bytes(),
                )
            except OSError as exc:
                raise UsageError(
                    f"certificate: cannot read {exc.filename}: {exc.strerror}"
                ) from None
            self.channel = grpc.secure_channel(args.target, credentials, options=options)
        self.timeout = args.timeout
        self.dispatch = pb_grpc.DispatchStub(self.channel)
        self.tasks = pb_grpc.TasksStub(self.channel)
        self.admin = pb_grpc.DispatchAdminStub(self.channel)
        self.calls = calls_pb2_grpc.CallsStub(self.channel)

    def call(self, method: Callable[..., Any], request: Message) -> Any:
        return method(request, timeout=self.timeout, metadata=self.metadata)

    def stream(self, method: Callable[..., Any], request: Message) -> Iterator[Any]:
        return iter(method(request, metadata=self.metadata))


def _cert_files(args: argparse.Namespace, role: str, ident: str) -> tuple[Path, Path, Path]:
    if args.cert and args.key and args.ca:
        return args.ca, args.cert, args.key
    if args.tls_dir is None:
        raise UsageError("--tls-dir (or --ca, --cert and --key) is needed unless --insecure")
    folder = args.tls_dir / FOLDERS[role]
    return (
        args.ca or args.tls_dir / "ca.pem",
        args.cert or folder / f"{ident}.pem",
        args.key or folder / f"{ident}.key",
    )


# -- output --------------------------------------------------------------------------------


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _enum(value: int, enum: Any, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).astimezone().strftime("%H:%M:%S")


def task_line(task: pb.Task) -> str:
    state = _enum(task.state, pb.TaskState, "TASK_STATE_")
    holder = f" teller {task.teller_id}" if task.teller_id else ""
    extra = ""
    if task.state == pb.TASK_STATE_OFFERED:
        extra = f" (offer {task.offer_id}, answer by {_when(task.offer_expires_at)})"
    elif task.state == pb.TASK_STATE_WAITING:
        extra = f" (wait about {task.wait_estimate_seconds} s)"
    elif task.state == pb.TASK_STATE_AT_LOBBY:
        extra = f" (lobby manager {task.lobby_manager_id})"
    elif task.HasField("result"):
        outcome = _enum(task.result.outcome, pb.ResultOutcome, "RESULT_OUTCOME_")
        extra = f" ({outcome}{': ' + task.result.reason if task.result.reason else ''})"
    return (
        f"{task.task_id}  {state:9} {task.business_type:16} {task.title!r} "
        f"from {task.origin_terminal} ({task.origin_branch}) to {task.target_branch}"
        f"{holder}{extra}"
    )


def event_line(event: pb.DispatchEvent) -> str:
    state = _enum(event.state, pb.TaskState, "TASK_STATE_") if event.state else ""
    subject = event.task_id or event.teller_id
    return f"#{event.event_id} {_when(event.at)} {event.kind:14} {subject} {state} {event.detail}"


def staff_line(member: pb.StaffMember) -> str:
    role = _enum(member.role, pb.StaffRole, "STAFF_ROLE_")
    presence = _enum(member.presence, pb.Presence, "PRESENCE_")
    skills = f" skills {','.join(member.skills)}" if member.skills else ""
    held = f" holds {member.held_tasks}" if member.role == pb.STAFF_ROLE_TELLER else ""
    return f"{role} {member.id} ({member.name}) branch {member.branch}: {presence}{held}{skills}"


def emit(args: argparse.Namespace, message: Message, human: str) -> None:
    if args.json:
        print(json.dumps(to_dict(message), sort_keys=True), flush=True)
    else:
        print(human, flush=True)


# -- commands ------------------------------------------------------------------------------


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


def cmd_roster(client: Client, args: argparse.Namespace) -> int:
    method = client.admin.GetRoster if args.admin else client.dispatch.GetRoster
    roster = client.call(method, pb.GetRosterRequest(branch=args.branch or ""))
    lines = [staff_line(m) for m in (*roster.lobby_managers, *roster.tellers)]
    emit(args, roster, "\n".join(lines) or "(nobody)")
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
        f"  material {m.name} {m.content_type} {m.size} bytes sha256 {m.sha256}"
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


def cmd_materials(client: Client, args: argparse.Namespace) -> int:
    """List a task's materials; with --save, fetch each and check its SHA-256."""
    task = client.call(client.dispatch.GetTask, pb.GetTaskRequest(task_id=args.task))
    saved: list[dict[str, Any]] = []
    lines = []
    for material in task.materials:
        entry = to_dict(material)
        line = f"{material.name}  {material.content_type}  {material.size} bytes  {material.sha256}"
        if args.save is not None:
            reply = client.call(
                client.dispatch.GetMaterial,
                pb.GetMaterialRequest(task_id=args.task, sha256=material.sha256),
            )
            if hashlib.sha256(reply.data).hexdigest() != material.sha256:
                print(f"branchline-teller: {material.name}: SHA-256 mismatch", file=sys.stderr)
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
    """Print events as they come; reconnect and resume after the last one on a lost stream."""
    last = args.after
    seen = 0
    backoff = BACKOFF_FIRST
    while True:
        if args.origin:
            request: Message = pb.WatchTasksRequest(after_event_id=last, task_id=args.task or "")
            method = client.tasks.WatchTasks
        else:
            request = pb.WatchDispatchRequest(after_event_id=last)
            method = client.dispatch.WatchDispatch
        try:
            for event in client.stream(method, request):
                backoff = BACKOFF_FIRST
                last = max(last, event.event_id)
                human = event_line(event)
                if event.kind == "snapshot":
                    human = f"#{event.event_id} now     {task_line(event.task)}"
                emit(args, event, human)
                seen += 1
                if args.count and seen >= args.count:
                    return 0
        except grpc.RpcError as exc:
            if exc.code() not in TRANSIENT:  # type: ignore[attr-defined]
                raise
            print(
                f"branchline-teller: stream lost ({exc.code().name}); resuming after event "  # type: ignore[attr-defined]
                f"{last} in {backoff:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(backoff * 2, BACKOFF_CAP)


# -- video-teller calls --------------------------------------------------------------------


def call_line(call: calls_pb2.Call) -> str:
    state = _enum(call.state, calls_pb2.CallState, "CALL_STATE_")
    mode = _enum(call.mode, calls_pb2.CallMode, "CALL_MODE_")
    where = ""
    if call.state == calls_pb2.CALL_STATE_QUEUED:
        where = f" position {call.position}, wait about {call.estimated_wait_seconds} s"
    elif call.teller_id:
        where = f" teller {call.teller_id}"
    return (
        f"{call.call_id}  {state:8} {call.business_type:16} {mode:13} terminal "
        f"{call.terminal_id} ({call.branch}){where}"
    )


def signal_line(signal: calls_pb2.CallSignal) -> str:
    return f"#{signal.signal_id} {_when(signal.at)} {signal.sender} {signal.kind}: {signal.payload}"


def command_line(command: calls_pb2.PeripheralCommand) -> str:
    outcome = command.completion or "sent"
    if command.code:
        outcome += f" ({command.code}: {command.detail})"
    fields = " ".join(f"{k}={v}" for k, v in sorted(command.fields.items()))
    extra = ""
    if command.pin_block:
        extra = (
            f" PIN block {command.pin_block.hex().upper()} format {command.pin_block_format} "
            f"under {command.zpk_name}"
        )
    if command.signature_sha256:
        extra += f" signature sha256 {command.signature_sha256} ({command.signature_size} bytes)"
    return f"#{command.command_id} {command.kind} {outcome} {fields}{extra}".rstrip()


def cmd_call(client: Client, args: argparse.Namespace) -> int:
    what = args.call_command
    if what == "queue":
        reply = client.call(client.calls.ListQueue, calls_pb2.ListQueueRequest())
        emit(args, reply, "\n".join(call_line(c) for c in reply.calls) or "(no calls)")
        return 0
    if what == "current":
        deadline = time.monotonic() + args.wait
        while True:
            try:
                call = client.call(client.calls.CurrentCall, calls_pb2.CurrentCallRequest())
                break
            except grpc.RpcError as exc:
                code = exc.code()  # type: ignore[attr-defined]
                if code != grpc.StatusCode.NOT_FOUND or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        emit(args, call, call_line(call))
        return 0
    if what == "answer":
        call = client.call(
            client.calls.AnswerCall, calls_pb2.AnswerCallRequest(call_id=args.call or "")
        )
        emit(args, call, call_line(call))
        return 0
    if what == "end":
        call = client.call(
            client.calls.EndCall,
            calls_pb2.EndCallRequest(call_id=args.call, reason=args.reason or ""),
        )
        emit(args, call, call_line(call))
        return 0
    if what == "signal":
        if args.file is not None:
            payload = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
        elif args.payload is not None:
            payload = args.payload
        else:
            raise UsageError("signal: give --payload TEXT or --file FILE (- for stdin)")
        signal = client.call(
            client.calls.SendSignal,
            calls_pb2.SendSignalRequest(call_id=args.call, kind=args.kind, payload=payload),
        )
        emit(args, signal, signal_line(signal))
        return 0
    if what == "signals":
        request: Message = calls_pb2.WatchSignalsRequest(call_id=args.call, after_id=args.after)
        return _follow(client, args, client.calls.WatchSignals, request, signal_line)
    if what == "results":
        request = calls_pb2.WatchResultsRequest(call_id=args.call, after_id=args.after)
        return _follow(client, args, client.calls.WatchResults, request, command_line)
    # device
    command = client.call(
        client.calls.SendCommand,
        calls_pb2.SendCommandRequest(
            call_id=args.call, kind=args.kind, title=args.title or "", lines=args.line or []
        ),
    )
    if not args.wait:
        emit(args, command, command_line(command))
        return 0
    request = calls_pb2.WatchResultsRequest(call_id=args.call, after_id=command.command_id - 1)
    for done in client.stream(client.calls.WatchResults, request):
        if done.command_id == command.command_id:
            emit(args, done, command_line(done))
            return 0 if done.completion == "success" else EXIT_REFUSED
    return EXIT_REFUSED


def _follow(
    client: Client,
    args: argparse.Namespace,
    method: Callable[..., Any],
    request: Message,
    line: Callable[[Any], str],
) -> int:
    seen = 0
    for item in client.stream(method, request):
        emit(args, item, line(item))
        seen += 1
        if args.count and seen >= args.count:
            return 0
    return 0


def cmd_admin(client: Client, args: argparse.Namespace) -> int:
    if args.admin_command == "add-branch":
        branch = client.call(
            client.admin.AddBranch,
            pb.AddBranchRequest(
                branch_id=args.id, name=args.name, routing_strategy=args.strategy or ""
            ),
        )
        emit(args, branch, f"branch {branch.branch_id} ({branch.name})")
    elif args.admin_command == "branches":
        reply = client.call(client.admin.ListBranches, pb.ListBranchesRequest())
        lines = [f"{b.branch_id}  {b.name}  {b.routing_strategy or '-'}" for b in reply.branches]
        emit(args, reply, "\n".join(lines) or "(no branches)")
    elif args.admin_command == "add-teller":
        member = client.call(
            client.admin.AddTeller,
            pb.AddTellerRequest(
                teller_id=args.id, name=args.name, branch=args.branch, skills=args.skill or []
            ),
        )
        emit(args, member, staff_line(member))
    elif args.admin_command == "add-lobby-manager":
        member = client.call(
            client.admin.AddLobbyManager,
            pb.AddLobbyManagerRequest(manager_id=args.id, name=args.name, branch=args.branch),
        )
        emit(args, member, staff_line(member))
    else:
        args.admin = True
        return cmd_roster(client, args)
    return 0


def cmd_counter(client: Client, args: argparse.Namespace) -> int:
    """The mobile counter's side, for demos and checks: send, upload, cancel."""
    if args.counter_command == "send":
        fields = {}
        for item in args.field or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--field: {item!r} is not KEY=VALUE")
            fields[key] = value
        task = client.call(
            client.tasks.SendTask,
            pb.SendTaskRequest(
                request_id=args.request_id or f"cli-{datetime.now(UTC).timestamp():.6f}",
                target_branch=args.to,
                business_type=args.type,
                title=args.title,
                fields=fields,
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


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branchline-teller",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    parser.add_argument(
        "--target", default=env("BRANCHLINE_SERVER", "127.0.0.1:50051"), help="server host:port"
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=env("BRANCHLINE_TLS_DIR") or None,
        help="PKI folder: ca.pem and tellers/, lobby/, operators/, terminals/",
    )
    parser.add_argument(
        "--as",
        dest="as_",
        default=env("BRANCHLINE_AS"),
        metavar="ROLE:ID",
        help="who you sign in as: teller:ID, lobby:ID, operator:NAME or terminal:ID",
    )
    parser.add_argument("--ca", type=Path, help="CA certificate (default TLS_DIR/ca.pem)")
    parser.add_argument("--cert", type=Path, help="client certificate (default from --as)")
    parser.add_argument("--key", type=Path, help="client key (default from --as)")
    parser.add_argument(
        "--insecure", action="store_true", help="plaintext, for a server on --insecure-loopback"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[Client, argparse.Namespace], int], help: str) -> Any:
        p = sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=handler)
        return p

    command("whoami", cmd_whoami, "sign in: who the server takes you for")
    p = command("lookup", receipts_cli.cmd_lookup, "a receipt's transaction: BLTX:TERMINAL:TXN")
    p.add_argument("reference")
    p = command("duty", cmd_duty, "go on or off duty (lobby managers: --teller for the roster)")
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--teller", help="a teller of your branch (lobby managers)")
    command("away", cmd_presence, "step away: no offers until back").set_defaults(away=True)
    command("back", cmd_presence, "back from away").set_defaults(away=False)
    p = command("roster", cmd_roster, "tellers and lobby managers of your branch")
    p.add_argument("--branch")
    p.set_defaults(admin=False)
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
    for name, help_text in (
        ("reassign", "hand a task to a named teller of its branch"),
        ("designate", "lobby managers: give a task at the lobby to a teller"),
    ):
        p = command(name, cmd_reassign, help_text)
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

    call = sub.add_parser("call", help="video-teller calls: queue, answer, signalling, devices")
    call_sub = call.add_subparsers(dest="call_command", required=True)
    call.set_defaults(handler=cmd_call)

    def call_command(name: str, help: str) -> Any:
        p = call_sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    call_command("queue", "your branch's calls: queued (in order), ringing, active")
    p = call_command("current", "your call ringing or active")
    p.add_argument("--wait", type=float, default=0, help="wait this long for one to ring")
    p = call_command("answer", "answer the call ringing at you")
    p.add_argument("call", nargs="?")
    p = call_command("end", "hang up; you take the next queued call")
    p.add_argument("call")
    p.add_argument("--reason")
    p = call_command("signal", "send an SDP offer / answer or an ICE candidate to the terminal")
    p.add_argument("call")
    p.add_argument("kind", choices=["offer", "answer", "candidate"])
    p.add_argument("--payload", help="the SDP or candidate text")
    p.add_argument("--file", type=Path, help="read it from a file (- for stdin)")
    for name, help_text in (
        ("signals", "the terminal's signalling as it comes"),
        ("results", "your device commands' outcomes as they come"),
    ):
        p = call_command(name, help_text)
        p.add_argument("call")
        p.add_argument("--after", type=int, default=0, help="resume after this id")
        p.add_argument("--count", type=int, default=0, help="exit after this many")
    p = call_command("device", "a device command for the call's terminal")
    p.add_argument("call")
    p.add_argument("kind", choices=["read_card", "read_id", "pin", "print", "signature"])
    p.add_argument("--title", help="print / signature: the heading")
    p.add_argument("--line", action="append", help="print / signature: a line (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for the outcome and print it")

    tube_cli.add_parser(sub)

    admin = sub.add_parser("admin", help="operators: branches and staff records")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)

    def admin_command(name: str, help: str) -> Any:
        p = admin_sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true")
        return p

    p = admin_command("add-branch", "create or update a branch")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--strategy", choices=["longest_idle", "least_handled", "random"])
    admin_command("branches", "list branches")
    p = admin_command("add-teller", "create or update a teller")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--branch", required=True)
    p.add_argument("--skill", action="append", help="business type (repeatable)")
    p = admin_command("add-lobby-manager", "create or update a lobby manager")
    p.add_argument("id")
    p.add_argument("--name", required=True)
    p.add_argument("--branch", required=True)
    p = admin_command("roster", "any branch's roster")
    p.add_argument("--branch")
    admin.set_defaults(handler=cmd_admin)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        client = Client(args)
        return int(args.handler(client, args))
    except UsageError as exc:
        print(f"branchline-teller: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        details = exc.details()  # type: ignore[attr-defined]
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": code.name, "message": details}}), flush=True)
        print(f"branchline-teller: {code.name}: {details}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

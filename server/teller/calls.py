"""A teller's video calls (``call ...``): the queue, the call ringing, answer and hang up,
WebRTC signalling to the terminal, and device commands on the call's terminal."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from branchline.server.teller.client import Client, UsageError
from branchline.server.teller.output import emit, enum_name, when
from branchline.server.teller.watch import follow
from branchline.v1 import calls_pb2

EXIT_REFUSED = 1


def call_line(call: calls_pb2.Call) -> str:
    state = enum_name(call.state, calls_pb2.CallState, "CALL_STATE_")
    mode = enum_name(call.mode, calls_pb2.CallMode, "CALL_MODE_")
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
    return f"#{signal.signal_id} {when(signal.at)} {signal.sender} {signal.kind}: {signal.payload}"


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


def cmd_queue(client: Client, args: argparse.Namespace) -> int:
    reply = client.call(client.calls.ListQueue, calls_pb2.ListQueueRequest())
    emit(args, reply, "\n".join(call_line(c) for c in reply.calls) or "(no calls)")
    return 0


def cmd_current(client: Client, args: argparse.Namespace) -> int:
    """The call ringing at you or active; with ``--wait``, wait that long for one to ring."""
    deadline = time.monotonic() + args.wait
    while True:
        try:
            call = client.call(client.calls.CurrentCall, calls_pb2.CurrentCallRequest())
            break
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]  # a failed call is a grpc.Call
            if code != grpc.StatusCode.NOT_FOUND or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
    emit(args, call, call_line(call))
    return 0


def cmd_answer(client: Client, args: argparse.Namespace) -> int:
    call = client.call(
        client.calls.AnswerCall, calls_pb2.AnswerCallRequest(call_id=args.call or "")
    )
    emit(args, call, call_line(call))
    return 0


def cmd_end(client: Client, args: argparse.Namespace) -> int:
    request = calls_pb2.EndCallRequest(call_id=args.call, reason=args.reason or "")
    call = client.call(client.calls.EndCall, request)
    emit(args, call, call_line(call))
    return 0


def cmd_signal(client: Client, args: argparse.Namespace) -> int:
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


def cmd_signals(client: Client, args: argparse.Namespace) -> int:
    """The terminal's signalling as it comes, resumed after the last on a lost stream."""
    return follow(
        lambda after: client.stream(
            client.calls.WatchSignals,
            calls_pb2.WatchSignalsRequest(call_id=args.call, after_id=after),
        ),
        lambda signal: signal.signal_id,
        lambda signal: emit(args, signal, signal_line(signal)),
        after=args.after,
        count=args.count,
        reconnect_on_end=False,  # the server ends it with the call
    )


def cmd_results(client: Client, args: argparse.Namespace) -> int:
    """Your device commands' outcomes as they come, resumed after the last one."""
    return follow(
        lambda after: client.stream(
            client.calls.WatchResults,
            calls_pb2.WatchResultsRequest(call_id=args.call, after_id=after),
        ),
        lambda command: command.command_id,
        lambda command: emit(args, command, command_line(command)),
        after=args.after,
        count=args.count,
        reconnect_on_end=False,
    )


def cmd_device(client: Client, args: argparse.Namespace) -> int:
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


def add_commands(sub: Any) -> None:
    call = sub.add_parser("call", help="video-teller calls: queue, answer, signalling, devices")
    call_sub = call.add_subparsers(dest="call_command", required=True)

    def call_command(name: str, handler: Any, help: str) -> Any:
        p = call_sub.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=handler)
        return p

    call_command("queue", cmd_queue, "your branch's calls: queued (in order), ringing, active")
    p = call_command("current", cmd_current, "your call ringing or active")
    p.add_argument("--wait", type=float, default=0, help="wait this long for one to ring")
    p = call_command("answer", cmd_answer, "answer the call ringing at you")
    p.add_argument("call", nargs="?")
    p = call_command("end", cmd_end, "hang up; you take the next queued call")
    p.add_argument("call")
    p.add_argument("--reason")
    p = call_command(
        "signal", cmd_signal, "send an SDP offer / answer or an ICE candidate to the terminal"
    )
    p.add_argument("call")
    p.add_argument("kind", choices=["offer", "answer", "candidate"])
    p.add_argument("--payload", help="the SDP or candidate text")
    p.add_argument("--file", type=Path, help="read it from a file (- for stdin)")
    for name, handler, help_text in (
        ("signals", cmd_signals, "the terminal's signalling as it comes"),
        ("results", cmd_results, "your device commands' outcomes as they come"),
    ):
        p = call_command(name, handler, help_text)
        p.add_argument("call")
        p.add_argument("--after", type=int, default=0, help="resume after this id")
        p.add_argument("--count", type=int, default=0, help="exit after this many")
    p = call_command("device", cmd_device, "a device command for the call's terminal")
    p.add_argument("call")
    p.add_argument("kind", choices=["read_card", "read_id", "pin", "print", "signature"])
    p.add_argument("--title", help="print / signature: the heading")
    p.add_argument("--line", action="append", help="print / signature: a line (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for the outcome and print it")

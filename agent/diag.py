"""``branchline-diag``: the field technician's tool, talking to the agent's local socket only.

Exit codes: 0 ok, 1 the agent is not running or refused, 2 usage error, 3 a self-test failed,
4 the electronic journal does not verify (``journal verify``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from branchline.agent import rates_diag
from branchline.agent.journal import diag_cmds
from branchline.agent.local_api import SOCKET_NAME
from branchline.common.grpc_errors import describe, error_details
from branchline.v1 import agent_local_pb2 as pb
from branchline.v1 import agent_local_pb2_grpc as pb_grpc
from branchline.v1 import common_pb2

DEFAULT_SOCKET = "/var/lib/branchline/agent/" + SOCKET_NAME
EXIT_AGENT_DOWN = 1
EXIT_SELFTEST_FAILED = 3
EXIT_COMMAND_FAILED = 3
DEVICE_NAMES = (
    "card_reader",
    "pin_pad",
    "id_reader",
    "printer",
    "tube_station",
    "face_camera",
    "cheque_printer",
)


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def device_dict(device: common_pb2.Device) -> dict[str, Any]:
    return {
        "name": device.name,
        "driver": device.driver,
        "status": _enum_name(common_pb2.DeviceStatus, device.status, "DEVICE_STATUS_"),
        "detail": device.detail,
        "facts": dict(device.facts),
        "capabilities": dict(device.capabilities),
        "updated_at": device.updated_at.ToDatetime().isoformat() + "Z",
    }


def status_dict(status: pb.AgentStatus) -> dict[str, Any]:
    return {
        "terminal_id": status.terminal_id,
        "branch": status.branch,
        "service_state": _enum_name(
            common_pb2.ServiceState, status.service_state, "SERVICE_STATE_"
        ),
        "service_detail": status.service_detail,
        "server_connected": status.server_connected,
        "server_address": status.server_address,
        "devices": [device_dict(d) for d in status.devices],
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def print_status(data: dict[str, Any]) -> None:
    server = "connected" if data["server_connected"] else "NOT connected"
    print(f"terminal {data['terminal_id']}  branch {data['branch']}")
    state = data["service_state"] + (
        f" ({data['service_detail']})" if data["service_detail"] else ""
    )
    print(f"service  {state}")
    print(f"server   {data['server_address']} {server}")
    print()
    rows = [[d["name"], d["status"], d["driver"], d["detail"]] for d in data["devices"]]
    print(
        _table(rows, ["device", "status", "driver", "detail"]) if rows else "no devices configured"
    )


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON (numbers, true, lists) is taken as such."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"parameter {pair!r} is not key=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _device_command(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace, timeout: float) -> int:
    try:
        params = parse_params(args.params)
    except ValueError as exc:
        print(f"branchline-diag: {exc}", file=sys.stderr)
        return 2
    print(f"running {args.command} {args.action} ...", file=sys.stderr)
    result = stub.RunCommand(
        pb.DeviceCommandRequest(
            device=args.command,
            command=args.action,
            params_json=json.dumps(params),
            timeout_seconds=args.command_timeout or 0.0,
        ),
        timeout=timeout,
    )
    data = json.loads(result.result_json) if result.result_json else {}
    if args.json:
        print(
            json.dumps(
                {
                    "device": result.device,
                    "command": result.command,
                    "completion": result.completion,
                    "code": result.code,
                    "detail": result.detail,
                    "seconds": round(result.seconds, 3),
                    "result": data,
                },
                indent=2,
            )
        )
    else:
        print(f"{result.device} {result.command}: {result.completion} ({result.seconds:.1f} s)")
        if result.detail:
            print(f"  {result.code}: {result.detail}")
        for key, value in data.items():
            print(f"  {key}: {value}")
    return 0 if result.completion == "success" else EXIT_COMMAND_FAILED


def hexdump_line(direction: str, data: bytes) -> str:
    hexes = " ".join(f"{b:02x}" for b in data)
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
    return f"{direction}  {hexes}  |{text}|"


def _spy(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace) -> int:
    print(f"spying on {args.device}; Ctrl-C stops", file=sys.stderr)
    stream = stub.Spy(pb.DeviceRequest(device=args.device), timeout=args.seconds)
    try:
        for chunk in stream:
            data = bytes(chunk.data)
            if args.json:
                print(
                    json.dumps(
                        {
                            "device": chunk.device,
                            "direction": chunk.direction,
                            "hex": data.hex(),
                            "monotonic": chunk.monotonic,
                        }
                    ),
                    flush=True,
                )
            else:
                for start in range(0, len(data), 16):
                    print(hexdump_line(chunk.direction, data[start : start + 16]), flush=True)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
            raise
    except KeyboardInterrupt:
        stream.cancel()
    return 0


def _resolve_socket(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    if args.config:
        from branchline.agent.config import load_config

        return load_config(Path(args.config)).terminal.state_dir / SOCKET_NAME
    return Path(os.environ.get("BRANCHLINE_AGENT_SOCKET", DEFAULT_SOCKET))


def _stub(path: Path) -> tuple[grpc.Channel, pb_grpc.AgentLocalStub]:
    channel = grpc.insecure_channel(f"unix:{path}")
    return channel, pb_grpc.AgentLocalStub(channel)


def _status(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace, timeout: float) -> int:
    data = status_dict(stub.GetStatus(pb.GetStatusRequest(), timeout=timeout))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_status(data)
    return 0


def _selftest(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace, timeout: float) -> int:
    print(f"running self-test of {args.device} ...", file=sys.stderr)
    result = stub.SelfTest(pb.DeviceRequest(device=args.device), timeout=timeout)
    out = MessageToDict(
        result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        verdict = "PASSED" if result.ok else "FAILED"
        print(
            f"{result.device}: self-test {verdict} ({result.completion}, "
            f"{result.seconds:.1f} s)\n  {result.detail}"
        )
    return 0 if result.ok else EXIT_SELFTEST_FAILED


def _maintenance(stub: pb_grpc.AgentLocalStub, args: argparse.Namespace, timeout: float) -> int:
    status = stub.SetMaintenance(pb.SetMaintenanceRequest(on=args.mode == "on"), timeout=timeout)
    data = status_dict(status)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(
            f"service  {data['service_state']}"
            + (f" ({data['service_detail']})" if data["service_detail"] else "")
        )
    return 0


def _command(channel: grpc.Channel, stub: pb_grpc.AgentLocalStub, args: argparse.Namespace) -> int:
    timeout = args.timeout
    simple = {"status": _status, "selftest": _selftest, "maintenance": _maintenance}
    if args.command in simple:
        return simple[args.command](stub, args, timeout)
    if args.command == "spy":
        return _spy(stub, args)
    if args.command == "journal":
        return diag_cmds.run_journal(stub, args, timeout)
    if args.command == "outbox":
        return diag_cmds.run_outbox(stub, args, timeout)
    if args.command == "rates":
        return rates_diag.run_rates(channel, args, timeout)
    if args.command in DEVICE_NAMES:
        return _device_command(stub, args, timeout)
    raise AssertionError(args.command)


def report_refusal(error: grpc.RpcError, path: Path, as_json: bool) -> int:
    """Say why the agent did not answer or refused: the status and the field its details
    name on stderr; with ``--json`` the details as data on stdout as well."""
    details = error_details(error)
    if as_json:
        print(json.dumps({"error": details.as_dict()}), flush=True)
    if details.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and not details.reason:
        print(
            f"branchline-diag: the agent is not running or not answering at {path} "
            f"({details.message})",
            file=sys.stderr,
        )
    else:
        print(f"branchline-diag: {describe(error)}", file=sys.stderr)
    return EXIT_AGENT_DOWN


def run(args: argparse.Namespace) -> int:
    path = _resolve_socket(args)
    if not path.exists():
        print(f"branchline-diag: the agent is not running (no socket at {path})", file=sys.stderr)
        return EXIT_AGENT_DOWN
    channel, stub = _stub(path)
    try:
        return _command(channel, stub, args)
    except grpc.RpcError as exc:
        return report_refusal(exc, path, getattr(args, "json", False))
    finally:
        channel.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branchline-diag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--socket", help=f"agent socket (default $BRANCHLINE_AGENT_SOCKET or {DEFAULT_SOCKET})"
    )
    where.add_argument("--config", help="take the socket from this agent config's state_dir")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the agent"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="terminal, server link and every device")
    status.add_argument("--json", action="store_true")
    selftest = sub.add_parser("selftest", help="run a device's self-test")
    selftest.add_argument("device")
    selftest.add_argument("--json", action="store_true")
    maint = sub.add_parser("maintenance", help="enter or leave maintenance mode")
    maint.add_argument("mode", choices=["on", "off"])
    maint.add_argument("--json", action="store_true")
    spy = sub.add_parser("spy", help="live hex dump of one device's traffic, both directions")
    spy.add_argument("device", choices=DEVICE_NAMES)
    spy.add_argument("--seconds", type=float, default=None, help="stop after this long")
    spy.add_argument("--json", action="store_true", help="one JSON object per chunk")
    diag_cmds.add_parsers(sub)
    rates_diag.add_parser(sub)
    for name in DEVICE_NAMES:
        device = sub.add_parser(name, help=f"run a {name} command (technician commands)")
        device.add_argument("action", help="command name, e.g. eject, status, kcv")
        device.add_argument("params", nargs="*", help="key=value parameters")
        device.add_argument(
            "--command-timeout",
            type=float,
            default=None,
            help="seconds the device may take (default: its configured timeout)",
        )
        device.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

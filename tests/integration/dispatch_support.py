"""Clients of the dispatch service for integration and browser tests: staff, terminal and
operator channels with their certificates from the stack's PKI, the ``branchline-teller``
command as one of them, and a terminal registered over TerminalLink."""

from __future__ import annotations

import subprocess

import grpc

from branchline.server.teller.main import main as teller_main
from branchline.v1 import common_pb2, terminal_link_pb2, terminal_link_pb2_grpc
from branchline.v1 import dispatch_pb2_grpc as pb_grpc
from tests.integration.cli_support import run_main
from tests.integration.stack import Stack

FOLDERS = {"teller": "tellers", "lobby": "lobby", "operator": "operators", "terminal": "terminals"}


def channel(stack: Stack, who: str, port: int | None = None) -> grpc.Channel:
    """A TLS channel to the server as ``who`` ("role:id", e.g. "teller:T1")."""
    role, _, ident = who.partition(":")
    folder = stack.pki / FOLDERS[role]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(stack.pki / "ca.pem").read_bytes(),
        private_key=(folder / f"{ident}.key").read_bytes(),
        certificate_chain=(folder / f"{ident}.pem").read_bytes(),
    )
    return grpc.secure_channel(f"127.0.0.1:{port or stack.server_port}", credentials)


def origin(stack: Stack, terminal: str = "MC-1", port: int | None = None) -> pb_grpc.TasksStub:
    return pb_grpc.TasksStub(channel(stack, f"terminal:{terminal}", port))


def staff(stack: Stack, who: str, port: int | None = None) -> pb_grpc.DispatchStub:
    return pb_grpc.DispatchStub(channel(stack, who, port))


def cli(
    stack: Stack, who: str, *args: str, port: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``branchline-teller`` as ``who``: its ``main`` in this process (cli_support)."""
    return run_main(
        teller_main,
        ["--target", f"127.0.0.1:{port or stack.server_port}", "--tls-dir", str(stack.pki),
         "--as", who, *args],
    )  # fmt: skip


def register_terminal(
    stack: Stack, terminal: str, branch: str, kind: int, port: int | None = None
) -> None:
    """Register over TerminalLink as the agent would, then hang up (the record stays)."""
    ch = channel(stack, f"terminal:{terminal}", port)
    register = terminal_link_pb2.Register(
        terminal_id=terminal,
        branch=branch,
        kind=kind,  # type: ignore[arg-type]
        agent_version="test",
        service_state=common_pb2.SERVICE_STATE_IN_SERVICE,
    )
    call = terminal_link_pb2_grpc.TerminalLinkStub(ch).Connect(
        iter([terminal_link_pb2.TerminalMessage(seq=1, register=register)]), timeout=10
    )
    assert next(call).register_ack.terminal_id == terminal
    call.cancel()
    ch.close()

"""The connection of ``branchline-teller``: who you sign in as is which certificate is used."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from branchline.server.auth import PRINCIPAL_METADATA_KEY
from branchline.v1 import calls_pb2_grpc
from branchline.v1 import dispatch_pb2_grpc as pb_grpc

FOLDERS = {"teller": "tellers", "lobby": "lobby", "operator": "operators", "terminal": "terminals"}
MAX_MESSAGE = 64 * 1024 * 1024


class UsageError(Exception):
    """The command line cannot be carried out (exit 2)."""


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
            ca, cert, key = cert_files(args, role, ident)
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


def cert_files(args: argparse.Namespace, role: str, ident: str) -> tuple[Path, Path, Path]:
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

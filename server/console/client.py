"""The console's gRPC connection to the server: the person's certificate, the stubs."""

from __future__ import annotations

from typing import Any

import grpc

from branchline.common.errors import InvalidArgument
from branchline.server.auth import PRINCIPAL_METADATA_KEY
from branchline.server.console.settings import ConsoleSettings
from branchline.v1 import calls_pb2_grpc, cheques_pb2_grpc, fleet_pb2_grpc, tube_pb2_grpc
from branchline.v1 import dispatch_pb2_grpc as dispatch_grpc

MAX_MESSAGE = 64 * 1024 * 1024


def open_channel(
    settings: ConsoleSettings,
) -> tuple[grpc.aio.Channel, tuple[tuple[str, str], ...]]:
    """A channel to the server as the console's person, and the metadata to call with."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    creds = settings.credentials
    if creds is None:
        channel = grpc.aio.insecure_channel(settings.target, options=options)
        return channel, ((PRINCIPAL_METADATA_KEY, str(settings.identity)),)
    try:
        channel_creds = grpc.ssl_channel_credentials(
            root_certificates=creds.ca.read_bytes(),
            private_key=creds.key.read_bytes(),
            certificate_chain=creds.cert.read_bytes(),
        )
    except OSError as exc:
        raise InvalidArgument(
            "certificate", f"cannot read {exc.filename}: {exc.strerror}"
        ) from None
    return grpc.aio.secure_channel(settings.target, channel_creds, options=options), ()


class StaffClient:
    """One channel for the console's life; gRPC reconnects it by itself."""

    def __init__(self, settings: ConsoleSettings) -> None:
        # Whether the last call reached the server (the page's server indicator).
        self.online = False
        self.timeout = settings.timeout
        self.channel, self.metadata = open_channel(settings)
        self.dispatch = dispatch_grpc.DispatchStub(self.channel)
        self.tube = tube_pb2_grpc.TubeDeskStub(self.channel)
        self.calls = calls_pb2_grpc.CallsStub(self.channel)
        self.fleet = fleet_pb2_grpc.FleetStub(self.channel)
        self.cheques = cheques_pb2_grpc.ChequeDeskStub(self.channel)

    async def call(self, method: Any, request: Any) -> Any:
        try:
            answer = await method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self.online = False
            else:
                self.online = True  # the server answered, with a refusal
            raise
        self.online = True
        return answer

    def stream(self, method: Any, request: Any) -> Any:
        return method(request, metadata=self.metadata)

    async def close(self) -> None:
        await self.channel.close(grace=None)

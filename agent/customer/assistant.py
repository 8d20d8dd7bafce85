"""The electronic teller, the terminal's side: the server's ``Assistant`` API as this
terminal (its certificate, or its name in the principal metadata without certificates).

One channel per agent, opened on first use. A refusal comes back as the error model's
DomainError (status and reason from the server's ErrorInfo, the field from BadRequest);
a server that cannot be reached is ``Unavailable`` with reason ``bank_unavailable``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import grpc

from branchline.agent.refusal import domain_error
from branchline.agent.uplink import open_channel
from branchline.common.errors import DomainError, Unavailable
from branchline.common.grpc_errors import error_details
from branchline.v1 import assistant_pb2 as pb
from branchline.v1 import assistant_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from branchline.agent.config import TerminalConfig
    from branchline.agent.daemon import Agent

PRINCIPAL_METADATA_KEY = "branchline-principal"
TIMEOUT = 10.0
GONE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def refusal(exc: grpc.aio.AioRpcError) -> DomainError:
    if exc.code() in GONE:
        return Unavailable(
            f"the bank cannot be reached: {exc.code().name}", reason="bank_unavailable"
        )
    details = error_details(exc)
    status = exc.code().name.lower()
    return domain_error(status, details.reason or status, details.message, details.field)


class AssistantClient:
    def __init__(self, terminal: TerminalConfig) -> None:
        self._terminal = terminal
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.AssistantStub | None = None
        self.metadata: tuple[tuple[str, str], ...] = (
            ((PRINCIPAL_METADATA_KEY, f"terminal:{terminal.terminal_id}"),)
            if terminal.tls is None
            else ()
        )

    def _get_stub(self) -> pb_grpc.AssistantStub:
        if self._stub is None:
            self._channel = open_channel(self._terminal)
            self._stub = pb_grpc.AssistantStub(self._channel)
        return self._stub

    async def _call(self, name: str, request: Any) -> Any:
        method = getattr(self._get_stub(), name)
        try:
            return await method(request, metadata=self.metadata, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise refusal(exc) from None

    async def ask(self, conversation_id: str, lang: str, text: str) -> pb.AssistantReply:
        request = pb.AssistantAskRequest(conversation_id=conversation_id, lang=lang, text=text)
        reply: pb.AssistantReply = await self._call("Ask", request)
        return reply

    async def feedback(self, conversation_id: str, helpful: bool) -> pb.AssistantReply:
        request = pb.AssistantFeedbackRequest(conversation_id=conversation_id, helpful=helpful)
        reply: pb.AssistantReply = await self._call("Feedback", request)
        return reply

    async def hand_over(self, conversation_id: str, reason: str) -> pb.AssistantReply:
        request = pb.AssistantHandOverRequest(conversation_id=conversation_id, reason=reason)
        reply: pb.AssistantReply = await self._call("HandOver", request)
        return reply

    async def attach_call(self, conversation_id: str, call_id: str) -> None:
        request = pb.AssistantAttachCallRequest(conversation_id=conversation_id, call_id=call_id)
        await self._call("AttachCall", request)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
        self._channel = self._stub = None


_CLIENTS: weakref.WeakKeyDictionary[Agent, AssistantClient] = weakref.WeakKeyDictionary()


def client_for(agent: Agent) -> AssistantClient:
    """The agent's assistant client (made on first use)."""
    client = _CLIENTS.get(agent)
    if client is None:
        client = _CLIENTS[agent] = AssistantClient(agent.config.terminal)
    return client

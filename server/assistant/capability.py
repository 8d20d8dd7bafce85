"""The assistant capability: the ``Assistant`` API (the electronic teller's questions,
hand-overs and transcripts; the staff's learning cycle). Needs nothing from the others:
the terminal opens the hand-over's teller call through the calls capability itself."""

from __future__ import annotations

from branchline.server.assistant.service import AssistantService
from branchline.server.assistant.servicer import SERVICE_NAMES, AssistantServicer
from branchline.server.capability import Hub
from branchline.v1 import assistant_pb2_grpc


class AssistantCapability:
    name = "assistant"

    def setup(self, hub: Hub) -> None:
        service = AssistantService(hub.engine)
        hub.add_servicer(
            assistant_pb2_grpc.add_AssistantServicer_to_server,
            AssistantServicer(service, hub.auth),
            *SERVICE_NAMES,
        )
        hub.provide("assistant", service)


ASSISTANT = AssistantCapability()

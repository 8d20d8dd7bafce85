"""The kiosk's assistant screen over a real in-process ``Assistant`` server: answers with
the guided flow it offers, refusals naming the field, hand-over on two unhelpful answers
and on "talk to a person" (a teller call opened and attached to the conversation), and a
server that cannot be reached."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from branchline.agent.kiosk.session import KioskSession
from branchline.agent.kiosk.settings import KioskSettings
from branchline.server.assistant import knowledge, learning
from branchline.server.assistant.service import AssistantService
from branchline.server.assistant.servicer import AssistantServicer
from branchline.server.auth import Authorizer
from branchline.server.storage import open_database
from branchline.v1 import assistant_pb2_grpc as pb_grpc
from branchline.v1 import calls_pb2
from tests.unit.kiosk_support import FakeAgent, Page, until
from tests.unit.sqlite_template import migrated_sqlite

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


class Calls:
    def __init__(self) -> None:
        self.call: Any = None
        self.requested: list[str] = []

    async def request_teller(self, business_type: str, mode: int) -> calls_pb2.Call:
        self.requested.append(business_type)
        self.call = calls_pb2.Call(
            call_id=f"CALL-{len(self.requested)}", state=calls_pb2.CALL_STATE_QUEUED, position=1
        )
        return self.call


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[AssistantService, str]]:
    engine = open_database(migrated_sqlite(tmp_path / "db.sqlite"))
    learning.import_file(engine, knowledge.load(), "test")
    service = AssistantService(engine)
    server = grpc.aio.server()
    pb_grpc.add_AssistantServicer_to_server(
        AssistantServicer(service, Authorizer(insecure=True)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield service, f"127.0.0.1:{port}"
    await server.stop(None)
    engine.dispose()


def kiosk(tmp_path: Path, address: str) -> tuple[FakeAgent, KioskSession, Page]:
    agent = FakeAgent(tmp_path, KioskSettings(port=0, language="en"))
    agent.config.terminal.server = address
    agent.config.terminal.tls = None
    agent.calls = Calls()  # type: ignore[assignment]
    session = KioskSession(agent, agent.config.kiosk)  # type: ignore[arg-type]
    session.show_attract()
    return agent, session, Page(session)


def replied(page: Page, count: int) -> Callable[[], bool]:
    return lambda: len(answers(page)) == count and not page.last["data"]["busy"]


def answers(page: Page) -> list[dict[str, Any]]:
    return [m for m in page.last["data"].get("messages", []) if m["from"] == "assistant"]


async def test_an_answer_offers_its_flow_and_refusals_name_the_field(
    tmp_path: Path, served: tuple[AssistantService, str]
) -> None:
    agent, session, page = kiosk(tmp_path, served[1])
    await session.handle("start", {"service": "assistant"})
    assert page.last["screen"] == "assistant" and page.last["data"]["automated"] is True
    await session.handle("not_helpful", {})
    assert page.refusals[-1]["action"] == "not_helpful"
    await session.handle("ask", {"text": "   "})
    assert page.refusals[-1]["field"] == "text"
    await session.handle("start", {"service": "deposit"})
    assert page.refusals[-1]["field"] == "service"  # no answer offered it
    await session.handle("ask", {"text": "I want to make a deposit"})
    await until(lambda: len(answers(page)) == 1)
    (answer,) = answers(page)
    assert answer["action"] == "deposit" and answer["startable"] is True
    await session.handle("start", {"service": "deposit"})
    assert page.last["screen"] == "card" and page.last["data"]["service"] == "deposit"


async def test_two_unhelpful_answers_hand_over_with_the_conversation(
    tmp_path: Path, served: tuple[AssistantService, str]
) -> None:
    service, address = served
    agent, session, page = kiosk(tmp_path, address)
    await session.handle("start", {"service": "assistant"})
    for n, question in enumerate(("How do I withdraw cash?", "What are the exchange rates?")):
        await session.handle("ask", {"text": question})
        await until(replied(page, n + 1))
        await session.handle("not_helpful", {})
        if n == 0:
            await until(lambda: page.last["data"]["can_feedback"] is False)
    await until(lambda: page.last["screen"] == "video")
    assert page.last["data"]["state"] == "queued" and page.last["data"]["from_assistant"]
    # The screen says why: it could not answer twice.
    assert page.last["data"]["handover"] == {
        "reason": "unhelpful",
        "topic": "",
        "message_key": "assistant.why.unhelpful",
    }
    assert agent.calls.requested == ["other"]  # type: ignore[attr-defined]
    row, turns = service.transcript("", "CALL-1")
    assert row.handover_reason == "unhelpful" and row.terminal_id == "K-1"
    assert [t.text for t in turns if t.speaker == "customer"][:1] == ["How do I withdraw cash?"]


async def test_talk_to_a_person_at_once(
    tmp_path: Path, served: tuple[AssistantService, str]
) -> None:
    agent, session, page = kiosk(tmp_path, served[1])
    await session.handle("start", {"service": "assistant"})
    await session.handle("person", {})
    await until(lambda: page.last["screen"] == "video")
    assert agent.calls.requested == ["other"]  # type: ignore[attr-defined]
    assert page.last["data"]["handover"]["message_key"] == "assistant.why.requested"


async def test_a_bank_that_cannot_be_reached_is_said_so(tmp_path: Path) -> None:
    agent, session, page = kiosk(tmp_path, "127.0.0.1:9")
    await session.handle("start", {"service": "assistant"})
    await session.handle("ask", {"text": "How do I deposit cash?"})
    await until(lambda: bool(page.refusals))
    assert page.refusals[-1]["message"] == "The bank cannot be reached."
    await until(lambda: page.last["data"]["busy"] is False)


async def test_a_refused_teller_call_leaves_the_customer_with_the_chat(
    tmp_path: Path, served: tuple[AssistantService, str]
) -> None:
    from branchline.agent.customer.call import CallRefused

    agent, session, page = kiosk(tmp_path, served[1])

    async def refuse(business_type: str, mode: int) -> calls_pb2.Call:
        raise CallRefused("failed_precondition", "no teller of the branch is on duty")

    agent.calls.request_teller = refuse  # type: ignore[attr-defined]
    await session.handle("start", {"service": "assistant"})
    await session.handle("person", {})
    await until(lambda: bool(page.refusals))
    assert page.last["screen"] == "assistant" and page.last["data"]["busy"] is False
    assert page.last["data"]["messages"][-1].get("message_key") == "assistant.handover.requested", (
        page.last
    )

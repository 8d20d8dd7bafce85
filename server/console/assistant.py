"""The electronic teller on the console: the questions it could not answer, the tellers'
proposed answers waiting for a lobby manager, and the transcript of the customer's
conversation with the assistant beside a call it handed over.

Tellers propose (``assistant.propose``); lobby managers approve or reject
(``assistant.approve`` / ``assistant.reject``); the server checks the roles again. The
server has no watch stream for these, so the console asks every two seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc

from branchline.common.errors import InvalidArgument, PermissionDenied, check_text
from branchline.server.console.client import StaffClient
from branchline.server.console.i18n import format_time
from branchline.v1 import assistant_pb2 as pb
from branchline.v1 import assistant_pb2_grpc as pb_grpc

log = logging.getLogger("branchline.console.assistant")

ACTIONS = ("propose", "approve", "reject")
POLL_SECONDS = 2.0
FLOWS = ("", "deposit", "withdrawal", "statement", "rates", "cheque")
MAX_ANSWER = 2000
MAX_QUESTION = 500


def question_view(q: pb.AssistantQuestion) -> dict[str, Any]:
    return {
        "question_id": q.question_id,
        "lang": q.lang,
        "text": q.text,
        "terminal_id": q.terminal_id,
        "status": q.status,
        "times_asked": q.times_asked,
        "asked_at": format_time(q.asked_at.ToDatetime()) if q.HasField("asked_at") else "",
    }


def proposal_view(p: pb.KbProposal) -> dict[str, Any]:
    return {
        "proposal_id": p.proposal_id,
        "question_id": p.question_id,
        "question_text": p.question_text,
        "entry_id": p.entry_id,
        "questions": [*p.text.questions_en, *p.text.questions_zh],
        "answer_en": p.text.answer_en,
        "answer_zh": p.text.answer_zh,
        "action": p.text.action,
        "proposed_by": p.proposed_by,
        "status": p.status,
    }


def transcript_view(tr: pb.AssistantTranscript) -> dict[str, Any]:
    return {
        "conversation_id": tr.conversation_id,
        "call_id": tr.call_id,
        "terminal_id": tr.terminal_id,
        "lang": tr.lang,
        "handover_reason": tr.handover_reason,
        "topic": tr.topic,
        "turns": [{"speaker": t.speaker, "text": t.text} for t in tr.turns],
    }


def _lines(value: Any, field: str) -> list[str]:
    text = check_text(field, str(value or ""), max_len=MAX_QUESTION * 5, required=False)
    return [line.strip() for line in text.split("|") if line.strip()]


class AssistantDesk:
    def __init__(
        self,
        client: StaffClient,
        role: str,
        changed: Callable[[], None],
        current_call: Callable[[], str],
    ) -> None:
        self._client = client
        self._stub = pb_grpc.AssistantStub(client.channel)
        self.role = role
        self._changed = changed
        self._current_call = current_call
        self.questions: list[pb.AssistantQuestion] = []
        self.proposals: list[pb.KbProposal] = []
        self.transcript: pb.AssistantTranscript | None = None

    async def run(self, on_down: Callable[[], None]) -> None:
        while True:
            try:
                await self.refresh()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    on_down()
            await asyncio.sleep(POLL_SECONDS)

    async def refresh(self) -> None:
        call = self._client.call
        questions = await call(self._stub.ListUnanswered, pb.ListUnansweredQuestionsRequest())
        proposals = await call(self._stub.ListProposals, pb.ListKbProposalsRequest())
        transcript = await self._fetch_transcript(self._current_call())
        changed = (
            list(questions.questions) != self.questions
            or list(proposals.proposals) != self.proposals
            or transcript != self.transcript
        )
        self.questions = list(questions.questions)
        self.proposals = list(proposals.proposals)
        self.transcript = transcript
        if changed:
            self._changed()

    async def _fetch_transcript(self, call_id: str) -> pb.AssistantTranscript | None:
        if not call_id:
            return None
        try:
            found: pb.AssistantTranscript = await self._client.call(
                self._stub.GetTranscript, pb.GetAssistantTranscriptRequest(call_id=call_id)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None  # a call the assistant did not hand over
        return found

    def snapshot(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "questions": [question_view(q) for q in self.questions],
            "proposals": [proposal_view(p) for p in self.proposals],
            "flows": list(FLOWS),
            "transcript": transcript_view(self.transcript) if self.transcript else None,
        }

    def _need(self, role: str, action: str) -> None:
        if self.role != role:
            who = "tellers" if role == "teller" else "lobby managers"
            raise PermissionDenied(f"{action}: for {who} only", rule="assistant_role")

    async def handle(self, action: str, data: dict[str, Any]) -> None:
        if action == "propose":
            self._need("teller", "propose")
            await self._propose(data)
        elif action in ("approve", "reject"):
            self._need("lobby", action)
            proposal_id = _number(data.get("proposal_id"), "proposal_id")
            note = check_text("note", str(data.get("note", "")), max_len=MAX_ANSWER, required=False)
            await self._client.call(
                self._stub.DecideProposal,
                pb.DecideKbProposalRequest(
                    proposal_id=proposal_id, approve=action == "approve", note=note
                ),
            )
        await self.refresh()
        self._changed()

    async def _propose(self, data: dict[str, Any]) -> None:
        action = data.get("action", "")
        if action not in FLOWS:
            raise InvalidArgument("action", f"one of {', '.join(f or '(none)' for f in FLOWS)}")
        text = pb.KbEntryText(
            questions_en=_lines(data.get("questions_en"), "questions_en"),
            questions_zh=_lines(data.get("questions_zh"), "questions_zh"),
            answer_en=check_text(
                "answer_en", str(data.get("answer_en", "")), max_len=MAX_ANSWER, required=False
            ),
            answer_zh=check_text(
                "answer_zh", str(data.get("answer_zh", "")), max_len=MAX_ANSWER, required=False
            ),
            action=str(action),
        )
        question_id = _number(data.get("question_id", 0), "question_id", required=False)
        entry_id = check_text("entry_id", str(data.get("entry_id", "")), required=False)
        await self._client.call(
            self._stub.ProposeAnswer,
            pb.ProposeAnswerRequest(question_id=question_id, entry_id=entry_id, text=text),
        )


def _number(value: Any, field: str, required: bool = True) -> int:
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        raise InvalidArgument(field, "must be a number") from None
    if number < 0 or (required and number == 0):
        raise InvalidArgument(field, "must be a positive number")
    return number

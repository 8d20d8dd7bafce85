"""``Assistant``: the gRPC service, thin over ``AssistantService`` and ``learning``.

Terminals ask (their own conversations only); tellers and lobby managers read unanswered
questions, proposals, entries and transcripts; tellers propose; lobby managers decide and
retire entries.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from branchline.common.grpc_errors import refusals
from branchline.server.assistant import learning
from branchline.server.assistant.knowledge import EntryText
from branchline.server.assistant.service import AssistantService, Reply, entry_from_row
from branchline.server.auth import LOBBY, OPERATOR, TELLER, TERMINAL, Authorizer
from branchline.server.convert import timestamp
from branchline.v1 import assistant_pb2 as pb
from branchline.v1 import assistant_pb2_grpc as pb_grpc

SERVICE_NAMES = (pb.DESCRIPTOR.services_by_name["Assistant"].full_name,)
STAFF = (TELLER, LOBBY)
READERS = (TELLER, LOBBY, OPERATOR)
OUTCOMES = {
    "answer": pb.ASSISTANT_OUTCOME_ANSWER,
    "handover": pb.ASSISTANT_OUTCOME_HANDOVER,
    "noted": pb.ASSISTANT_OUTCOME_NOTED,
}


def reply_to_pb(reply: Reply) -> pb.AssistantReply:
    return pb.AssistantReply(
        conversation_id=reply.conversation_id,
        outcome=OUTCOMES[reply.outcome],
        answer=reply.answer,
        entry_id=reply.entry_id,
        action=reply.action,
        confidence=reply.confidence,
        handover_reason=reply.reason,
        topic=reply.topic,
    )


def text_to_pb(text: EntryText) -> pb.KbEntryText:
    return pb.KbEntryText(
        questions_en=list(text.questions.get("en", ())),
        questions_zh=list(text.questions.get("zh-CN", ())),
        answer_en=text.answers.get("en", ""),
        answer_zh=text.answers.get("zh-CN", ""),
        action=text.action,
        topic=text.topic,
    )


def text_from_pb(text: pb.KbEntryText) -> EntryText:
    return learning.check_proposal_text(
        {"en": list(text.questions_en), "zh-CN": list(text.questions_zh)},
        {"en": text.answer_en, "zh-CN": text.answer_zh},
        text.action,
        text.topic,
    )


def entry_to_pb(row: Any) -> pb.KbEntry:
    return pb.KbEntry(
        entry_id=row.entry_id,
        text=text_to_pb(entry_from_row(row)),
        status=row.status,
        version=row.version,
        updated_by=row.updated_by,
        updated_at=timestamp(row.updated_at),
    )


def proposal_to_pb(row: Any, question_text: str = "") -> pb.KbProposal:
    return pb.KbProposal(
        proposal_id=row.proposal_id,
        question_id=row.question_id,
        entry_id=row.entry_id,
        text=text_to_pb(learning.text_from_json(row.text)),
        status=row.status,
        proposed_by=row.proposed_by,
        proposed_at=timestamp(row.proposed_at),
        decided_by=row.decided_by,
        decision_note=row.note,
        question_text=question_text,
    )


class AssistantServicer(pb_grpc.AssistantServicer):
    def __init__(self, service: AssistantService, auth: Authorizer) -> None:
        self._service = service
        self._auth = auth

    async def _terminal(self, context: grpc.aio.ServicerContext, rpc: str) -> str:
        who = await self._auth.identify(context, (TERMINAL,), f"Assistant.{rpc}")
        return who.name

    @refusals
    async def Ask(
        self, request: pb.AssistantAskRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistantReply:
        terminal = await self._terminal(context, "Ask")
        reply = await asyncio.to_thread(
            self._service.ask, terminal, request.conversation_id, request.lang, request.text
        )
        return reply_to_pb(reply)

    @refusals
    async def Feedback(
        self, request: pb.AssistantFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistantReply:
        terminal = await self._terminal(context, "Feedback")
        reply = await asyncio.to_thread(
            self._service.feedback, terminal, request.conversation_id, request.helpful
        )
        return reply_to_pb(reply)

    @refusals
    async def HandOver(
        self, request: pb.AssistantHandOverRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistantReply:
        terminal = await self._terminal(context, "HandOver")
        reply = await asyncio.to_thread(
            self._service.hand_over, terminal, request.conversation_id, request.reason
        )
        return reply_to_pb(reply)

    @refusals
    async def AttachCall(
        self, request: pb.AssistantAttachCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistantAttachCallReply:
        terminal = await self._terminal(context, "AttachCall")
        await asyncio.to_thread(
            self._service.attach_call, terminal, request.conversation_id, request.call_id
        )
        return pb.AssistantAttachCallReply()

    @refusals
    async def GetTranscript(
        self, request: pb.GetAssistantTranscriptRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssistantTranscript:
        await self._auth.identify(context, READERS, "Assistant.GetTranscript")
        row, turns = await asyncio.to_thread(
            self._service.transcript, request.conversation_id, request.call_id
        )
        return pb.AssistantTranscript(
            conversation_id=row.conversation_id,
            terminal_id=row.terminal_id,
            lang=row.lang,
            call_id=row.call_id,
            handover_reason=row.handover_reason,
            topic=row.topic,
            turns=[
                pb.AssistantTurn(
                    at=timestamp(t.at),
                    speaker=t.speaker,
                    text=t.text,
                    entry_id=t.entry_id,
                    confidence=t.confidence,
                )  # fmt: skip
                for t in turns
            ],
        )

    @refusals
    async def ListUnanswered(
        self, request: pb.ListUnansweredQuestionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListUnansweredQuestionsReply:
        await self._auth.identify(context, READERS, "Assistant.ListUnanswered")
        rows = await asyncio.to_thread(learning.unanswered, self._service.engine, request.status)
        return pb.ListUnansweredQuestionsReply(
            questions=[
                pb.AssistantQuestion(
                    question_id=r.question_id,
                    lang=r.lang,
                    text=r.text,
                    terminal_id=r.terminal_id,
                    conversation_id=r.conversation_id,
                    asked_at=timestamp(r.asked_at),
                    status=r.status,
                    times_asked=r.times_asked,
                )  # fmt: skip
                for r in rows
            ]
        )

    @refusals
    async def ListProposals(
        self, request: pb.ListKbProposalsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListKbProposalsReply:
        await self._auth.identify(context, READERS, "Assistant.ListProposals")
        engine = self._service.engine
        rows = await asyncio.to_thread(learning.proposals, engine, request.status)
        texts = await asyncio.to_thread(
            learning.question_texts, engine, [r.question_id for r in rows if r.question_id]
        )
        return pb.ListKbProposalsReply(
            proposals=[proposal_to_pb(r, texts.get(r.question_id, "")) for r in rows]
        )

    @refusals
    async def ListEntries(
        self, request: pb.ListKbEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListKbEntriesReply:
        await self._auth.identify(context, READERS, "Assistant.ListEntries")
        rows = await asyncio.to_thread(
            learning.entries, self._service.engine, request.include_retired
        )
        return pb.ListKbEntriesReply(entries=[entry_to_pb(r) for r in rows])

    @refusals
    async def ProposeAnswer(
        self, request: pb.ProposeAnswerRequest, context: grpc.aio.ServicerContext
    ) -> pb.KbProposal:
        who = await self._auth.identify(context, (TELLER,), "Assistant.ProposeAnswer")
        text = text_from_pb(request.text)
        row = await asyncio.to_thread(
            learning.propose, self._service.engine, str(who), request.question_id,
            request.entry_id, text,
        )  # fmt: skip
        return proposal_to_pb(row)

    @refusals
    async def DecideProposal(
        self, request: pb.DecideKbProposalRequest, context: grpc.aio.ServicerContext
    ) -> pb.KbProposal:
        who = await self._auth.identify(context, (LOBBY,), "Assistant.DecideProposal")
        row = await asyncio.to_thread(
            learning.decide, self._service.engine, str(who), request.proposal_id,
            request.approve, request.note,
        )  # fmt: skip
        return proposal_to_pb(row)

    @refusals
    async def RetireEntry(
        self, request: pb.RetireKbEntryRequest, context: grpc.aio.ServicerContext
    ) -> pb.KbEntry:
        who = await self._auth.identify(context, (LOBBY,), "Assistant.RetireEntry")
        row = await asyncio.to_thread(
            learning.retire, self._service.engine, str(who), request.entry_id
        )
        return entry_to_pb(row)

"""The electronic teller's server side: the matcher (zh and en), sensitive topics, the
hand-over rules, the learning cycle and the API's refusals (real grpc.aio server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import Engine

from branchline.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from branchline.common.grpc_errors import error_details
from branchline.server.assistant import knowledge, learning, rules
from branchline.server.assistant.matcher import Document, Matcher, Synonyms, features
from branchline.server.assistant.sensitive import sensitive_topic
from branchline.server.assistant.service import AssistantService
from branchline.server.assistant.servicer import AssistantServicer
from branchline.server.auth import Authorizer
from branchline.server.storage import open_database
from branchline.v1 import assistant_pb2 as pb
from branchline.v1 import assistant_pb2_grpc as pb_grpc
from tests.unit.sqlite_template import migrated_sqlite

TERMINAL = (("branchline-principal", "terminal:T1"),)
OTHER_TERMINAL = (("branchline-principal", "terminal:T2"),)
TELLER = (("branchline-principal", "teller:t-1"),)
LOBBY = (("branchline-principal", "lobby:l-1"),)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(migrated_sqlite(tmp_path / "db.sqlite"))
    learning.import_file(engine, knowledge.load(), "test")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def shipped() -> Matcher:
    kb = knowledge.load()
    return knowledge.build_matcher(kb.entries, kb.synonyms)


# -- matcher -----------------------------------------------------------------------------


def test_chinese_is_cut_into_characters_and_pairs_and_english_into_stemmed_words() -> None:
    zh = features("怎么存钱")
    assert "b:存钱" in zh and "u:存" in zh and "b:怎么" not in zh  # a question word is filler
    en = features("Depositing the cheques")
    assert "w:deposit" in en and "w:cheque" in en and "w:the" not in en
    syn = Synonyms({"deposit": ["put money in", "存钱"]})
    assert "@deposit" in features("I'd like to put money in", syn)
    assert "@deposit" in features("我想存钱", syn)
    assert features("   ") == {}


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("How can I pay cash into my account?", "deposit_cash"),
        ("What is the dollar exchange rate today?", "rates_today"),
        ("I want a print of my statement", "statement_view"),
        ("我要取钱", "withdraw_cash"),
        ("今天美元汇率多少", "rates_today"),
        ("公司想买支票", "cheque_buy"),
        ("怎么存黄金", "deposit_gold"),
    ],
)
def test_the_shipped_base_answers_in_both_languages(
    shipped: Matcher, question: str, entry: str
) -> None:
    decision = rules.decide(shipped, question)
    assert decision.entry_id == entry, decision
    assert decision.confidence >= rules.ANSWER_THRESHOLD


def test_a_question_outside_the_base_has_low_confidence(shipped: Matcher) -> None:
    for question in ("Where can I buy concert tickets?", "今天天气怎么样"):
        decision = rules.decide(shipped, question)
        assert decision.reason == rules.LOW_CONFIDENCE, (question, decision)


def test_an_ambiguous_question_loses_confidence() -> None:
    matcher = Matcher([Document("a", "open account now"), Document("b", "open account today")])
    match = matcher.best("open account")
    assert match is not None and match.runner_up
    assert match.confidence < match.score


# -- sensitive topics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Someone used my card to take money", "fraud"),
        ("I think I was scammed", "fraud"),
        ("有人盗刷了我的卡", "fraud"),
        ("the ATM swallowed my card", "retained_card"),
        ("机器吞卡了", "retained_card"),
        ("I lost my card", "lost_card"),
        ("我的银行卡丢了", "lost_card"),
        ("我要挂失", "lost_card"),
        ("I want to dispute a transaction", "dispute"),
        ("取款少给了钱", "dispute"),
        ("my mother passed away", "bereavement"),
        ("家人去世了，账户怎么处理", "bereavement"),
    ],
)
def test_sensitive_topics_are_found_in_both_languages(text: str, topic: str) -> None:
    assert sensitive_topic(text) == topic


def test_ordinary_questions_are_not_sensitive() -> None:
    for text in ("How do I deposit cash?", "怎么取钱", "What are the rates?", "我忘记密码了"):
        assert sensitive_topic(text) == ""


def test_a_sensitive_question_hands_over_even_when_an_entry_matches(shipped: Matcher) -> None:
    decision = rules.decide(shipped, "I lost my card, how do I get my card back?")
    assert decision.reason == rules.SENSITIVE and decision.topic == "lost_card"
    assert decision.entry_id == ""


# -- hand-over rules -----------------------------------------------------------------------


def test_two_unhelpful_answers_in_a_row_hand_over_and_a_helpful_one_resets() -> None:
    assert rules.after_feedback(0, False) == (1, False)
    assert rules.after_feedback(1, False) == (2, True)
    assert rules.after_feedback(1, True) == (0, False)


def test_the_conversation_hands_over_on_each_rule(engine: Engine) -> None:
    svc = AssistantService(engine)
    first = svc.ask("T1", "", "en", "How do I withdraw cash?")
    assert first.outcome == "answer" and first.action == "withdrawal"
    conv = first.conversation_id
    assert svc.feedback("T1", conv, helpful=False).outcome == "noted"
    svc.ask("T1", conv, "en", "What are today's exchange rates?")
    unhelpful = svc.feedback("T1", conv, helpful=False)
    assert (unhelpful.outcome, unhelpful.reason) == ("handover", "unhelpful")
    sensitive = svc.ask("T1", conv, "zh-CN", "我的卡被人盗刷了")
    assert (sensitive.outcome, sensitive.reason, sensitive.topic) == (
        "handover",
        "sensitive",
        "fraud",
    )
    low = svc.ask("T1", "", "en", "Do you sell concert tickets?")
    assert (low.outcome, low.reason) == ("handover", "low_confidence")
    asked = svc.hand_over("T1", first.conversation_id, "requested")
    assert asked.reason == "requested"
    svc.attach_call("T1", conv, "CALL-7")
    row, turns = svc.transcript("", "CALL-7")
    assert row.conversation_id == conv
    said = [(t.speaker, t.text) for t in turns]
    assert ("customer", "How do I withdraw cash?") in said
    assert ("customer", "我的卡被人盗刷了") in said
    assert ("system", "handed over: sensitive (fraud)") in said
    assert said[-1] == ("system", "teller call CALL-7")
    # The unhelpful answers' questions and the unanswerable one are kept for staff.
    kept = {q.text for q in learning.unanswered(engine, "")}
    assert {"How do I withdraw cash?", "Do you sell concert tickets?"} <= kept


def test_a_card_number_in_a_question_is_never_kept(engine: Engine) -> None:
    svc = AssistantService(engine)
    reply = svc.ask("T1", "", "en", "my card 4012888888881881 needs a new PIN")
    _, turns = svc.transcript(reply.conversation_id, "")
    assert "4012888888881881" not in turns[0].text and "401288******1881" in turns[0].text


def test_conversation_refusals_name_the_field(engine: Engine) -> None:
    svc = AssistantService(engine)
    conv = svc.ask("T1", "", "zh-CN", "怎么存钱").conversation_id
    with pytest.raises(PermissionDenied) as other:
        svc.ask("T2", conv, "en", "hello")
    assert other.value.rule == "own_conversation"
    with pytest.raises(NotFound) as unknown:
        svc.feedback("T1", "conv-nope", False)
    assert unknown.value.field == "conversation_id"
    for lang, text, field in (
        ("fr", "bonjour", "lang"),
        ("en", "", "text"),
        ("en", "x" * 501, "text"),
    ):
        with pytest.raises(InvalidArgument) as bad:
            svc.ask("T1", "", lang, text)
        assert bad.value.field == field
    with pytest.raises(InvalidArgument) as reason:
        svc.hand_over("T1", conv, "bored")
    assert reason.value.field == "reason"
    with pytest.raises(InvalidArgument):
        svc.transcript("", "")


# -- learning --------------------------------------------------------------------------------


def test_propose_approve_and_the_next_customer_gets_the_answer(engine: Engine) -> None:
    svc = AssistantService(engine)
    asked = svc.ask("T1", "", "en", "Can I park my bicycle at the branch?")
    assert asked.reason == "low_confidence"
    (question,) = [q for q in learning.unanswered(engine, "open") if "bicycle" in q.text]
    text = learning.check_proposal_text(
        {"en": ["Can I park my bicycle at the branch?"], "zh-CN": ["网点可以停自行车吗？"]},
        {"en": "Yes, bicycle racks are by the side door.", "zh-CN": "可以，侧门有自行车停放架。"},
        "",
        "",
    )
    proposal = learning.propose(engine, "teller t-1", question.question_id, "", text)
    assert proposal.status == "pending"
    # Not in the base until a lobby manager approves.
    assert svc.ask("T2", "", "en", "Where can I park a bicycle?").outcome == "handover"
    approved = learning.decide(engine, "lobby l-1", proposal.proposal_id, True, "")
    assert approved.status == "approved" and approved.entry_id.startswith("learned-")
    again = svc.ask("T2", "", "en", "Where can I park a bicycle?")
    assert (again.outcome, again.entry_id) == ("answer", approved.entry_id)
    zh = svc.ask("T2", "", "zh-CN", "自行车可以停在网点吗")
    assert zh.answer == "可以，侧门有自行车停放架。"
    assert learning.unanswered(engine, "answered")[0].question_id == question.question_id
    with pytest.raises(FailedPrecondition) as twice:
        learning.decide(engine, "lobby l-1", proposal.proposal_id, False, "no")
    assert twice.value.reason == "already_decided"


def test_a_proposal_can_change_an_entry_and_a_rejection_needs_a_note(engine: Engine) -> None:
    text = learning.check_proposal_text(
        {"en": ["Where do I put the notes?"]}, {"en": "In the tube carrier."}, "deposit", ""
    )
    proposal = learning.propose(engine, "teller t-1", 0, "deposit_cash", text)
    with pytest.raises(InvalidArgument) as note:
        learning.decide(engine, "lobby l-1", proposal.proposal_id, False, " ")
    assert note.value.field == "note"
    learning.decide(engine, "lobby l-1", proposal.proposal_id, True, "")
    (row,) = [e for e in learning.entries(engine, False) if e.entry_id == "deposit_cash"]
    assert row.version == 2 and row.answer_en == "In the tube carrier."
    assert "Where do I put the notes?" in row.questions_en and "我要存款" in row.questions_zh
    with pytest.raises(NotFound):
        learning.propose(engine, "teller t-1", 0, "no-such-entry", text)
    with pytest.raises(InvalidArgument) as empty:
        learning.check_proposal_text({"en": []}, {"en": "x"}, "", "")
    assert empty.value.field == "text.questions"
    with pytest.raises(InvalidArgument) as action:
        learning.check_proposal_text({"en": ["q"]}, {"en": "a"}, "teleport", "")
    assert action.value.field == "text.action"


def test_import_keeps_learned_entries_and_retire_takes_one_out(engine: Engine) -> None:
    svc = AssistantService(engine)
    learning.retire(engine, "lobby l-1", "coins")
    assert svc.ask("T1", "", "en", "Can I deposit coins?").entry_id != "coins"
    counts = learning.import_file(engine, knowledge.load(), "test")
    assert counts["changed"] == 1  # the retired entry is back from the file
    with pytest.raises(InvalidArgument) as bad:
        knowledge.parse({"entries": [{"id": "Bad Id"}]})
    assert bad.value.field == "entries[0].id"


# -- the API ---------------------------------------------------------------------------------


# long: one server, every refusal of the table, then the happy path of the learning cycle
@pytest.mark.asyncio
async def test_the_api_checks_roles_and_names_fields(engine: Engine) -> None:
    server = grpc.aio.server()
    pb_grpc.add_AssistantServicer_to_server(
        AssistantServicer(AssistantService(engine), Authorizer(insecure=True)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AssistantStub(channel)
            reply = await stub.Ask(
                pb.AssistantAskRequest(lang="en", text="Show me the FX rates"), metadata=TERMINAL
            )
            assert reply.outcome == pb.ASSISTANT_OUTCOME_ANSWER and reply.action == "rates"
            refusals = (
                (stub.Ask(pb.AssistantAskRequest(lang="en", text="hi"), metadata=TELLER),
                 grpc.StatusCode.PERMISSION_DENIED, ""),
                (stub.Ask(pb.AssistantAskRequest(lang="xx", text="hi"), metadata=TERMINAL),
                 grpc.StatusCode.INVALID_ARGUMENT, "lang"),
                (stub.Feedback(pb.AssistantFeedbackRequest(conversation_id=reply.conversation_id),
                               metadata=OTHER_TERMINAL),
                 grpc.StatusCode.PERMISSION_DENIED, "conversation_id"),
                (stub.ProposeAnswer(pb.ProposeAnswerRequest(
                    text=pb.KbEntryText(questions_en=["q"], answer_en="a")), metadata=LOBBY),
                 grpc.StatusCode.PERMISSION_DENIED, ""),
                (stub.ProposeAnswer(pb.ProposeAnswerRequest(
                    text=pb.KbEntryText(questions_en=["q"])), metadata=TELLER),
                 grpc.StatusCode.INVALID_ARGUMENT, "text.answer"),
                (stub.DecideProposal(pb.DecideKbProposalRequest(proposal_id=1, approve=True),
                                     metadata=TELLER),
                 grpc.StatusCode.PERMISSION_DENIED, ""),
                (stub.DecideProposal(pb.DecideKbProposalRequest(proposal_id=99, approve=True),
                                     metadata=LOBBY),
                 grpc.StatusCode.NOT_FOUND, "proposal_id"),
                (stub.GetTranscript(pb.GetAssistantTranscriptRequest(call_id="CALL-X"),
                                    metadata=TELLER),
                 grpc.StatusCode.NOT_FOUND, "call_id"),
                (stub.GetTranscript(pb.GetAssistantTranscriptRequest(call_id="C"),
                                    metadata=TERMINAL),
                 grpc.StatusCode.PERMISSION_DENIED, ""),
            )  # fmt: skip
            for call, code, field in refusals:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() is code
                if field:
                    assert error_details(refused.value).field == field
            proposed = await stub.ProposeAnswer(
                pb.ProposeAnswerRequest(
                    text=pb.KbEntryText(questions_en=["Is there a toilet?"], answer_en="Yes.")
                ),
                metadata=TELLER,
            )
            listed = await stub.ListProposals(pb.ListKbProposalsRequest(), metadata=LOBBY)
            assert [p.proposal_id for p in listed.proposals] == [proposed.proposal_id]
            decided = await stub.DecideProposal(
                pb.DecideKbProposalRequest(proposal_id=proposed.proposal_id, approve=True),
                metadata=LOBBY,
            )
            assert decided.status == "approved" and decided.decided_by == "lobby l-1"
            entries = await stub.ListEntries(pb.ListKbEntriesRequest(), metadata=TELLER)
            assert decided.entry_id in {e.entry_id for e in entries.entries}
    finally:
        await server.stop(None)

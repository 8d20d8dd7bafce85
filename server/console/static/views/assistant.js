// The electronic teller (docs/console.md "assistant"): questions it could not answer,
// tellers' proposed answers for a lobby manager, and — beside a call it handed over —
// the customer's conversation with it so far.

import { page, registerView, afterRender, t, el, button, field, table, named, actorName } from "../ui.js";

function value(id) {
  const node = document.getElementById(id);
  return node ? node.value : "";
}

function proposeForm(q) {
  const id = (name) => `kb-${name}-${q.question_id}`;
  const zh = q.lang === "zh-CN";
  const form = el("div", { class: "propose", "data-role": "propose", "data-question": q.question_id },
    field(id("questions_en"), "questions_en", t("kb.questions_en"), { size: 40, value: zh ? "" : q.text }),
    field(id("questions_zh"), "questions_zh", t("kb.questions_zh"), { size: 40, value: zh ? q.text : "" }),
    field(id("answer_en"), "answer_en", t("kb.answer_en"), { size: 60 }),
    field(id("answer_zh"), "answer_zh", t("kb.answer_zh"), { size: 60 }),
    field(id("action"), "action", t("kb.action"), { size: 12, list: "kb-flows" }),
    button("assistant.propose", t("kb.propose"), () => ({
      question_id: q.question_id,
      questions_en: value(id("questions_en")), questions_zh: value(id("questions_zh")),
      answer_en: value(id("answer_en")), answer_zh: value(id("answer_zh")), action: value(id("action")),
    })));
  return form;
}

function questionRow(q, role) {
  return el("tr", { "data-question": q.question_id, "data-status": q.status },
    el("td", { "data-role": "question-text" }, q.text), el("td", { "data-lang": q.lang }, named("lang.name", q.lang)), el("td", {}, q.terminal_id),
    el("td", {}, String(q.times_asked)), el("td", {}, named("kb.status", q.status)), el("td", {}, q.asked_at),
    el("td", {}, role === "teller" && q.status === "open" ? proposeForm(q) : null));
}

function proposalRow(p, role) {
  const note = `kb-note-${p.proposal_id}`;
  return el("tr", { "data-proposal": p.proposal_id, "data-status": p.status },
    el("td", {}, p.question_text || p.entry_id), el("td", {}, p.questions.join(" | ")),
    el("td", { "data-role": "answer" }, [p.answer_en, p.answer_zh].filter(Boolean).join(" / ")),
    el("td", { "data-flow": p.action }, named("kb.flow", p.action)), el("td", { "data-actor": p.proposed_by }, actorName(p.proposed_by)),
    el("td", {}, role === "lobby" ? [
      button("assistant.approve", t("kb.approve"), { proposal_id: p.proposal_id }),
      field(note, "note", t("kb.note"), { size: 20 }),
      button("assistant.reject", t("kb.reject"), () => ({ proposal_id: p.proposal_id, note: value(note) })),
    ] : t("kb.waiting")));
}

function renderAssistant(a) {
  const flows = el("datalist", { id: "kb-flows" }, a.flows.filter(Boolean).map((f) => el("option", { value: f, label: named("kb.flow", f) })));
  return el("section", { "data-screen": "assistant" }, el("h1", {}, t("view.assistant")),
    el("p", { class: "muted" }, t(a.role === "lobby" ? "kb.lobby_help" : "kb.teller_help")),
    flows,
    el("h2", {}, t("kb.unanswered")),
    table([t("kb.question"), t("kb.lang"), t("col.terminal"), t("kb.times"), t("col.state"), t("col.created"), ""],
      a.questions.map((q) => questionRow(q, a.role)), t("kb.unanswered.none")),
    el("h2", {}, t("kb.proposals")),
    table([t("kb.question"), t("kb.variants"), t("kb.answer"), t("kb.action"), t("kb.proposed_by"), ""],
      a.proposals.map((p) => proposalRow(p, a.role)), t("kb.proposals.none")));
}

registerView("assistant", (frame) => renderAssistant(frame.assistant));

// Beside a call the assistant handed over: the conversation so far.
afterRender((frame) => {
  const transcript = frame.assistant && frame.assistant.transcript;
  const panel = document.querySelector('[data-role="current-call"]');
  if (page.view !== "calls" || !transcript || !panel || panel.dataset.call !== transcript.call_id) return;
  const reason = transcript.handover_reason || "requested";
  panel.append(el("section", { class: "panel", "data-role": "transcript", "data-conversation": transcript.conversation_id },
    el("h3", {}, t("kb.transcript")),
    // Why the assistant handed over, as the customer was told it (beside the conversation).
    el("p", { class: "notice", "data-role": "handover-reason", "data-reason": reason, "data-topic": transcript.topic || "" },
      el("strong", {}, t("kb.handover_why", { reason: named("kb.reason", reason) })),
      transcript.topic ? el("span", {}, ` · ${t("kb.handover_topic", { topic: named("kb.topic", transcript.topic) })}`) : null),
    el("ol", {}, transcript.turns.map((turn) => el("li", { "data-speaker": turn.speaker },
      el("strong", {}, `${named("kb.speaker", turn.speaker)}: `), turn.text)))));
});

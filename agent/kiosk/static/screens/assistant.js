// The electronic teller (flows/assistant.py, docs/kiosk.md "assistant"): an automated
// assistant, labelled so, answering typed questions as a chat; an answer may offer its
// guided flow; "talk to a person" is always on the screen.

import { registerScreens, t, el, button, send, title } from "../ui.js";

function bubble(m) {
  const who = m.from === "customer" ? t("assistant.you") : m.from === "assistant" ? t("assistant.bot") : "";
  const text = m.message_key ? t(m.message_key, { topic: m.topic || "" }) : m.text;
  return el("li", { class: `chat-${m.from}`, "data-from": m.from, "data-entry": m.entry_id || null },
    who ? el("strong", {}, `${who}: `) : null,
    el("span", { "data-role": "chat-text" }, text),
    m.startable ? el("div", {}, button("start", t("assistant.start", { service: t(`service.${m.action}`) }),
      { service: m.action }, { "data-role": "start-flow", "data-service": m.action })) : null);
}

registerScreens({
  assistant: (d) => {
    const input = el("input", { type: "text", id: "assistant-question", name: "text", maxlength: 500,
      autocomplete: "off", placeholder: t("assistant.placeholder"), "aria-label": t("assistant.question"),
      disabled: d.busy });
    const form = el("form", { class: "form", "data-role": "ask-form" },
      input, button("ask", t("assistant.ask"), () => ({ text: input.value }), { disabled: d.busy }));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!d.busy && input.value.trim()) send("ask", { text: input.value });
    });
    const chat = el("ol", { class: "chat", "data-role": "chat", "aria-live": "polite" },
      d.messages.length ? d.messages.map(bubble) : el("li", { class: "muted" }, t("assistant.empty")));
    setTimeout(() => { if (!d.busy) input.focus(); }, 0);
    return [
      title("assistant.title"),
      el("p", { class: "notice", "data-role": "automated" }, t("assistant.automated")),
      chat,
      d.busy ? el("p", { role: "status" }, t("assistant.thinking")) : null,
      form,
      el("div", { class: "actions" },
        button("person", t("assistant.person"), {}, { "data-role": "person" }),
        d.can_feedback ? button("not_helpful", t("assistant.not_helpful"), {}, { "data-role": "not-helpful" }) : null,
        button("back", t("assistant.back"))),
    ];
  },
});

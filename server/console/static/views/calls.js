// Video calls: the queue and the call in hand (docs/console.md).

import { page, registerView, t, el, button, field, formValues, table, send, rerender, named } from "../ui.js";

// ---- video calls -----------------------------------------------------------------------

function renderCalls(calls) {
  const queue = calls.queue.map((c) => el("tr", { "data-call": c.call_id, "data-state": c.state },
    el("td", {}, c.terminal_id),
    el("td", { "data-role": "business", "data-business": c.business_type }, c.business_name),
    el("td", {}, named("call.mode", c.mode)),
    el("td", {}, named("call.state", c.state)), el("td", {}, c.position || ""), el("td", {}, c.created_at)));
  const current = calls.current;
  let panel = el("p", { class: "muted" }, t("call.none"));
  if (current) {
    const title = field("call-title", "title", t("call.title_field"), { size: 30 });
    const lines = field("call-lines", "lines", t("call.lines_field"), { size: 40 });
    const commands = current.state === "active" ? el("p", { "data-role": "commands" }, title, lines,
      calls.command_kinds.map((kind) => button("calls.command", named("call.command", kind), () => ({
        kind, title: title.querySelector("input").value, lines: lines.querySelector("input").value,
      }), { "data-kind": kind }))) : null;
    const results = calls.commands.map((c) => el("tr", { "data-command": c.command_id, "data-kind": c.kind,
      "data-completion": c.completion },
      el("td", {}, named("call.command", c.kind)),
      el("td", { "data-role": "completion" }, c.completion ? named("call.completion", c.completion) : t("call.running")),
      el("td", {}, Object.entries(c.fields).map(([k, v]) => `${named("call.field", k)}: ${v}`).join(" · "),
        c.pin_received ? t("call.pin_received") : "",
        c.signature_sha256 ? el("div", {}, t("call.signature", { sha: c.signature_sha256.slice(0, 12), size: c.signature_size })) : "",
        c.signature_url ? el("img", { src: c.signature_url, alt: t("call.signature_image"), "data-role": "signature",
          class: "signature" }) : ""),
      el("td", {}, c.detail)));
    panel = el("section", { class: "panel", "data-role": "current-call", "data-call": current.call_id,
      "data-state": current.state },
      el("h2", {}, t("call.current", { terminal: current.terminal_id, state: named("call.state", current.state) })),
      current.state === "ringing" ? button("calls.answer", t("action.answer"), { call_id: current.call_id }) : null,
      current.state === "active" ? button("calls.end", t("action.end_call")) : null,
      commands, table([t("call.command"), t("col.state"), t("col.detail"), ""], results, ""));
  }
  return el("section", { "data-screen": "calls" }, el("h1", {}, t("view.calls")), panel,
    el("h2", {}, t("call.queue")),
    table([t("col.terminal"), t("task.business"), t("call.mode"), t("col.state"), t("call.position"), t("col.created")],
      queue, t("call.queue.none")));
}


registerView("calls", (frame) => renderCalls(frame.calls));

// Tellers and lobby managers: the task queue (docs/console.md).

import { page, registerView, t, el, button, field, formValues, table, send, rerender, named } from "../ui.js";

// ---- teller and lobby manager ---------------------------------------------------------

function countdowns() {
  // Offers count down locally from the seconds the console sent with the state.
  const received = page.receivedAt;
  for (const node of document.querySelectorAll("[data-role=countdown]")) {
    const left = Math.max(0, Number(node.dataset.seconds) - Math.floor((Date.now() - received) / 1000));
    node.textContent = t("task.expires_in", { seconds: left });
  }
}
setInterval(countdowns, 1000);

function taskRow(task, view, me) {
  const id = (name) => `${name}-${task.task_id}`;
  const buttons = [];
  const v = view;
  if (view === "tasks" && task.state === "offered") {
    const minutes = field(id("minutes"), "minutes", t("task.wait_minutes"), { inputmode: "numeric", size: 4 });
    buttons.push(button(`${v}.accept`, t("action.accept"), { task_id: task.task_id }),
      minutes, button(`${v}.wait`, t("action.wait"), () => ({ task_id: task.task_id,
        minutes: minutes.querySelector("input").value })),
      button(`${v}.reject`, t("action.reject"), { task_id: task.task_id }));
  }
  if (view === "lobby" && (task.state === "at_lobby" || task.state === "queued")) {
    const teller = field(id("designate"), "teller_id", t("field.teller_id"), { size: 8 });
    buttons.push(teller, button(`${v}.designate`, t("action.designate"),
      () => ({ task_id: task.task_id, teller_id: teller.querySelector("input").value })));
  }
  if (["offered", "waiting", "accepted"].includes(task.state)) {
    const to = field(id("reassign"), "to_teller_id", t("field.to_teller_id"), { size: 8 });
    buttons.push(to, button(`${v}.reassign`, t("action.reassign"),
      () => ({ task_id: task.task_id, to_teller_id: to.querySelector("input").value })));
  }
  buttons.push(button(`${v}.open`, t("action.open"), { task_id: task.task_id }));
  return el("tr", { "data-task": task.task_id, "data-state": task.state },
    el("td", {}, task.title), el("td", {}, `${task.origin_branch} · ${task.origin_terminal}`),
    el("td", { "data-role": "business", "data-business": task.business_type }, task.business_name),
    el("td", { "data-role": "state" }, named("task.state", task.state)),
    el("td", { "data-role": "teller" }, task.teller_id,
      task.expires_in !== null ? [task.teller_id ? " · " : null, el("span", { "data-role": "countdown",
        "data-seconds": task.expires_in, role: "timer" }, t("task.expires_in", { seconds: task.expires_in }))] : null),
    el("td", {}, buttons));
}

// The console labels, formats and masks each field (server/console/task_facts.py).
function facts(rows) {
  return el("dl", { "data-role": "fields" }, rows.map((f) =>
    [el("dt", {}, f.label), el("dd", { "data-field": f.key }, f.value)]));
}

// An image is loaded from the console (GET /tasks/<id>/materials/<n>), never sent inside
// the state. Each render builds a new <img> with the same URL: the document's list of
// available images shows it again without a new request (despite no-store), so the
// photo is read once however many states follow. A material whose bytes the server's
// retention deleted is said so in words, with when.
function material(m) {
  const shown = m.deleted_at ? el("p", { "data-role": "material-deleted" }, t("task.material.deleted", { at: m.deleted_at }))
    : m.image_url ? el("img", { src: m.image_url, alt: m.name, "data-role": "material-image" })
    : m.text ? el("pre", {}, m.text)
    : el("p", { "data-role": "no-image" }, t("task.material.no_image"));
  return el("figure", { "data-material": m.name, "data-image": String(Boolean(m.image_url)) },
    shown, el("figcaption", {}, `${m.name} (${m.content_type})`));
}

function taskDetail(detail, view) {
  const v = view;
  const reason = field(`result-reason-${detail.task_id}`, "reason", t("field.reason"), { size: 30 });
  const result = view === "tasks" && detail.state === "accepted" ? el("p", {}, reason,
    button(`${v}.complete`, t("action.success"), () => ({ task_id: detail.task_id, outcome: "success",
      reason: reason.querySelector("input").value })),
    button(`${v}.complete`, t("action.failure"), () => ({ task_id: detail.task_id, outcome: "failure",
      reason: reason.querySelector("input").value }))) : null;
  return el("section", { class: "panel", "data-role": "task-detail", "data-task": detail.task_id },
    el("h2", {}, detail.title), el("p", {}, named("task.state", detail.state)),
    detail.result ? el("p", { "data-role": "result" }, `${named("task.outcome", detail.result.outcome)} ${detail.result.reason}`) : null,
    el("h3", {}, t("task.fields")), facts(detail.facts), detail.note ? el("p", {}, detail.note) : null,
    detail.materials.length ? [el("h3", {}, t("task.materials")), detail.materials.map(material)] : null, result,
    button(`${v}.close`, t("action.close")));
}

function renderTasks(frame, view) {
  const desk = frame.tasks;
  const me = frame.me;
  const v = view;
  const duty = el("p", { "data-role": "duty", "data-on-duty": String(me.on_duty), "data-presence": me.presence },
    `${me.on_duty ? t("duty.on") : t("duty.off")} · ${named("presence", me.presence || "off_duty")} `,
    button(`${v}.duty`, me.on_duty ? t("action.off_duty") : t("action.on_duty"), { on: !me.on_duty }),
    view === "tasks" && me.on_duty ? button("tasks.presence", me.presence === "away" ? t("action.back") : t("action.away"),
      { away: me.presence !== "away" }) : null);
  const heads = ["task.title", "task.origin", "task.business", "col.state", "task.teller", "col.actions"].map((k) => t(k));
  const roster = view === "lobby" ? el("section", { "data-role": "roster" }, el("h2", {}, t("lobby.roster")),
    table([t("task.teller"), t("lobby.duty"), t("lobby.presence"), t("lobby.held"), t("col.actions")],
      desk.roster.map((m) => el("tr", { "data-teller": m.id, "data-on-duty": String(m.on_duty), "data-presence": m.presence },
        el("td", {}, `${m.name} (${m.id})`), el("td", {}, m.on_duty ? t("duty.on") : t("duty.off")),
        el("td", {}, named("presence", m.presence)), el("td", {}, m.held_tasks),
        el("td", {}, button("lobby.teller_duty", m.on_duty ? t("action.off_duty") : t("action.on_duty"),
          { teller_id: m.id, on: !m.on_duty })))), "")) : null;
  return el("section", { "data-screen": view }, el("h1", {}, named("view", view)), duty, roster,
    el("section", {}, el("h2", {}, t(view === "lobby" ? "lobby.tasks" : "task.mine")),
      table(heads, desk.tasks.map((task) => taskRow(task, view, me)), t("task.none"))),
    desk.detail ? taskDetail(desk.detail, view) : null);
}


registerView("tasks", (frame) => renderTasks(frame, "tasks"));
registerView("lobby", (frame) => renderTasks(frame, "lobby"));

// The staff console page: a thin view of the console process's state (docs/console.md).
// Every frame from the console is the full state; the page renders it and sends actions
// back. Form fields being typed in survive a re-render (values and focus are carried over).

import { renderCheques } from "./cheques.js";

const RETRY_MS = 500;
const page = { messages: {}, lang: "zh-CN", frame: null, ws: null, view: "", counting: "" };

// ---- text and elements -------------------------------------------------------------------

function t(key, values = {}) {
  const message = page.messages[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function button(action, label, data = {}, attrs = {}) {
  const node = el("button", { type: "button", "data-action": action, ...attrs }, label);
  node.addEventListener("click", () => send(action, typeof data === "function" ? data() : data));
  return node;
}

function field(id, name, label, attrs = {}) {
  const input = el("input", { id, name, autocomplete: "off", ...attrs });
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

function formValues(root) {
  const out = {};
  for (const input of root.querySelectorAll("input[name], select[name]")) {
    // "denominations.0.5" -> out.denominations["0.5"]: split at the first dot only.
    const dot = input.name.indexOf(".");
    if (dot > 0) (out[input.name.slice(0, dot)] ??= {})[input.name.slice(dot + 1)] = input.value;
    else out[input.name] = input.value;
  }
  return out;
}

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
}

// ---- the wire ----------------------------------------------------------------------------

function setConnection(connected) {
  const node = document.querySelector('[data-role="connection"]');
  node.dataset.state = connected ? "connected" : "connecting";
  node.textContent = connected ? t("conn.connected") : t("conn.connecting");
}

function send(action, data = {}) {
  hideError();
  if (page.ws && page.ws.readyState === WebSocket.OPEN) {
    page.ws.send(JSON.stringify({ type: "action", action, data }));
  }
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  page.ws = ws;
  ws.addEventListener("open", () => setConnection(true));
  ws.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  ws.addEventListener("close", () => {
    setConnection(false);
    setTimeout(connect, RETRY_MS);
  });
}

function receive(frame) {
  if (frame.type === "catalogue") {
    page.messages = frame.messages;
    page.lang = frame.lang;
  } else if (frame.type === "state") {
    if (page.frame && frame.seq < page.frame.seq && frame.seq !== 1) return;
    page.frame = frame;
    page.receivedAt = Date.now();
    render();
  } else if (frame.type === "refused") {
    showError(frame);
  }
}

function showError(frame) {
  const node = document.querySelector('[data-role="error"]');
  node.hidden = false;
  node.dataset.field = frame.field || "";
  node.dataset.reason = frame.reason || "";
  node.dataset.status = frame.status || "";
  node.textContent = t("refused", { message: frame.message });
  const input = frame.field && document.querySelector(`[name="${CSS.escape(frame.field)}"]`);
  if (input) input.setAttribute("aria-invalid", "true");
}

function hideError() {
  const node = document.querySelector('[data-role="error"]');
  node.hidden = true;
  for (const bad of document.querySelectorAll("[aria-invalid]")) bad.removeAttribute("aria-invalid");
}

// ---- rendering ---------------------------------------------------------------------------

function render() {
  const frame = page.frame;
  document.documentElement.lang = frame.lang;
  document.title = t("app.title");
  document.querySelector('[data-role="title"]').textContent = t("app.title");
  document.querySelector('[data-action="language"]').textContent = t("lang.switch");
  setConnection(page.ws && page.ws.readyState === WebSocket.OPEN);
  const server = document.querySelector('[data-role="server"]');
  server.dataset.state = frame.server;
  server.textContent = t(`server.${frame.server}`);
  const me = frame.me;
  document.querySelector('[data-role="me"]').textContent = me.role === "operator"
    ? t("me.operator", me) : t("me.signed_in", { ...me, role: t(`role.${me.role}`) });

  if (!frame.views.includes(page.view)) page.view = frame.views[0] || "";
  const nav = document.querySelector('[data-role="views"]');
  nav.replaceChildren(...frame.views.map((view) => {
    const node = el("button", { type: "button", "data-view-button": view,
      "aria-current": view === page.view ? "page" : null }, t(`view.${view}`));
    node.addEventListener("click", () => { page.view = view; render(); });
    return node;
  }));

  // Carry what is being typed (and the focus) over the re-render.
  const main = document.getElementById("main");
  const typed = {};
  for (const input of main.querySelectorAll("input[id]")) typed[input.id] = input.value;
  const focused = document.activeElement && document.activeElement.id;

  let content;
  if (!frame.signed_in) {
    content = el("section", { "data-screen": "signin" }, el("h1", {}, t("signin.waiting")),
      frame.sign_in_refusal ? el("p", {}, t("signin.refused", frame.sign_in_refusal)) : null);
  } else if (page.view === "backoffice") content = renderBackOffice(frame.backoffice);
  else if (page.view === "fleet") content = renderFleet(frame.fleet);
  else if (page.view === "tasks" || page.view === "lobby") content = renderTasks(frame, page.view);
  else if (page.view === "calls") content = renderCalls(frame.calls);
  else if (page.view === "cheques") content = renderCheques(frame.cheques, { el, t, table, button, send, showError });
  else content = el("section", { "data-screen": "none" }, el("p", {}, t("view.none")));
  main.replaceChildren(content);

  for (const [id, value] of Object.entries(typed)) {
    const input = document.getElementById(id);
    if (input && input.type !== "hidden") input.value = value;
  }
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
}

// ---- back office -------------------------------------------------------------------------

function carrierRow(txn) {
  const actions = txn.actions.map((action) => {
    if (action === "count") {
      const node = el("button", { type: "button", "data-action": "open_count", "data-txn": txn.txn_id },
        t("action.count"));
      node.addEventListener("click", () => { page.counting = txn.txn_id; render(); });
      return node;
    }
    const id = `carrier-${action}-${txn.txn_id}`;
    const input = action === "send" ? field(id, "carrier_id", t("field.carrier_id"), { inputmode: "numeric" }) : null;
    return el("span", {}, input, button(`backoffice.${action}`, t(`action.${action}`),
      () => ({ txn_id: txn.txn_id, carrier_id: input ? input.querySelector("input").value : "" }),
      { "data-txn": txn.txn_id }));
  });
  return el("tr", { "data-txn": txn.txn_id, "data-state": txn.state },
    el("td", {}, txn.terminal_id), el("td", {}, txn.customer_id), el("td", { "data-role": "pan" }, txn.pan_masked),
    el("td", {}, `${t(`kind.${txn.kind}`)} · ${t(`asset.${txn.asset}`)}`),
    el("td", { "data-role": "state" }, t(`state.${txn.state}`)),
    el("td", {}, txn.declared), el("td", { "data-role": "counted" }, txn.counted),
    el("td", {}, txn.carrier_id || ""), el("td", {}, txn.reference), el("td", {}, actions));
}

function countPanel(txn) {
  const id = (name) => `count-${txn.txn_id}-${name}`;
  const form = el("form", { class: "panel", "data-form": "count", "data-txn": txn.txn_id,
    "aria-label": t("count.title", { txn: txn.txn_id, declared: txn.declared }) });
  form.append(el("h2", {}, t("count.title", { txn: txn.txn_id, declared: txn.declared })));
  if (txn.asset === "cash") {
    for (const value of txn.denominations) {
      form.append(field(id(`d${value}`), `denominations.${value}`, t("count.denomination", { value }),
        { inputmode: "numeric", size: 6 }));
    }
    form.append(field(id("amount"), "amount", t("count.total"), { inputmode: "decimal" }));
  } else if (txn.asset === "metal") {
    form.append(field(id("amount"), "amount", t("count.grams"), { inputmode: "decimal" }));
  } else {
    form.append(field(id("amount"), "amount", t("count.amount"), { inputmode: "decimal" }),
      field(id("bill"), "bill_id", t("count.bill_id")), field(id("instrument"), "instrument", t("count.instrument")),
      field(id("maturity"), "maturity", t("count.maturity")));
  }
  form.append(field(id("note"), "note", t("count.note"), { size: 30 }), el("br"));
  form.append(button("backoffice.count", t("action.submit_count"), () => {
    const values = formValues(form);
    return { ...values, txn_id: txn.txn_id, kind: txn.asset };
  }));
  const cancel = el("button", { type: "button", "data-action": "cancel_count" }, t("action.cancel"));
  cancel.addEventListener("click", () => { page.counting = ""; render(); });
  form.append(" ", cancel);
  form.addEventListener("submit", (event) => event.preventDefault());
  return form;
}

function renderBackOffice(desk) {
  const counting = desk.carriers.find((c) => c.txn_id === page.counting && c.actions.includes("count"));
  if (!counting) page.counting = "";
  const heads = ["col.terminal", "col.customer", "col.card", "col.kind", "col.state", "col.declared",
    "col.counted", "col.carrier", "col.reference", "col.actions"].map((k) => t(k));
  const incidents = desk.incidents.map((i) => {
    const id = `resolution-${i.incident_id}`;
    const input = field(id, "resolution", t("field.resolution"), { size: 30 });
    return el("tr", { "data-incident": i.incident_id, "data-kind": i.kind },
      el("td", {}, `#${i.incident_id} ${i.kind}`), el("td", {}, i.terminal_id), el("td", {}, i.txn_id),
      el("td", {}, i.detail), el("td", {}, i.opened_at),
      el("td", {}, input, button("backoffice.resolve", t("action.resolve"),
        () => ({ incident_id: String(i.incident_id), resolution: input.querySelector("input").value }))));
  });
  const events = desk.events.slice(0, 10).map((e) => el("tr", { "data-event": e.event_id },
    el("td", {}, e.at), el("td", {}, e.terminal_id), el("td", {}, e.txn_id), el("td", {}, e.event), el("td", {}, e.actor)));
  return el("section", { "data-screen": "backoffice" },
    el("h1", {}, t("view.backoffice")),
    el("section", { "aria-labelledby": "h-carriers" }, el("h2", { id: "h-carriers" }, t("bo.carriers")),
      table(heads, desk.carriers.map(carrierRow), t("bo.carriers.none")), counting ? countPanel(counting) : null),
    el("section", { "aria-labelledby": "h-incidents", "data-role": "incidents" },
      el("h2", { id: "h-incidents" }, t("bo.incidents")),
      table(["col.incident", "col.terminal", "col.txn", "col.detail", "col.created", "col.actions"].map((k) => t(k)),
        incidents, t("bo.incidents.none"))),
    renderHistory(desk.history),
    el("section", { "aria-labelledby": "h-events" }, el("h2", { id: "h-events" }, t("bo.events")),
      table(["col.at", "col.terminal", "col.txn", "col.event", "col.actor"].map((k) => t(k)), events, "")));
}

function renderHistory(history) {
  const form = el("form", { "data-form": "search", role: "search" });
  for (const name of ["reference", "from_date", "to_date", "terminal_id", "customer_id"]) {
    form.append(field(`search-${name}`, name, t(`field.${name}`), name === "reference" ? { size: 40 } : {}));
  }
  form.append(button("backoffice.search", t("action.search"), () => formValues(form)), " ",
    button("backoffice.clear_search", t("action.clear_search")));
  // A USB QR scanner types the reference and presses Enter: that searches.
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.target.tagName !== "INPUT") return;
    event.preventDefault();
    send("backoffice.search", formValues(form));
  });
  const rows = history.results.map((txn) => el("tr", { "data-txn": txn.txn_id, "data-state": txn.state },
    el("td", {}, txn.created_at), el("td", {}, txn.terminal_id), el("td", {}, txn.customer_id),
    el("td", {}, txn.pan_masked), el("td", {}, `${t(`kind.${txn.kind}`)} · ${t(`asset.${txn.asset}`)}`),
    el("td", {}, t(`state.${txn.state}`)), el("td", {}, txn.declared), el("td", {}, txn.counted),
    el("td", {}, txn.reference)));
  const heads = ["col.created", "col.terminal", "col.customer", "col.card", "col.kind", "col.state",
    "col.declared", "col.counted", "col.reference"].map((k) => t(k));
  return el("section", { "aria-labelledby": "h-history", "data-role": "history" },
    el("h2", { id: "h-history" }, t("bo.history")), form,
    history.searched ? el("p", { role: "status" }, t("history.count", { count: rows.length })) : null,
    history.searched ? table(heads, rows, t("history.none")) : null);
}

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
    el("td", {}, task.business_type), el("td", { "data-role": "state" }, t(`task.state.${task.state}`)),
    el("td", {}, task.teller_id,
      task.expires_in !== null ? el("span", { "data-role": "countdown", "data-seconds": task.expires_in,
        role: "timer" }, t("task.expires_in", { seconds: task.expires_in })) : null),
    el("td", {}, buttons));
}

function taskDetail(detail, view) {
  const v = view;
  const fields = Object.entries(detail.fields).map(([k, value]) => el("div", {},
    el("dt", {}, k), el("dd", { "data-field": k }, value)));
  const materials = detail.materials.map((m) => el("figure", { "data-material": m.name },
    m.image ? el("img", { src: m.image, alt: m.name }) : null,
    m.text ? el("pre", {}, m.text) : null, el("figcaption", {}, `${m.name} (${m.content_type})`)));
  const reason = field(`result-reason-${detail.task_id}`, "reason", t("field.reason"), { size: 30 });
  const result = view === "tasks" && detail.state === "accepted" ? el("p", {}, reason,
    button(`${v}.complete`, t("action.success"), () => ({ task_id: detail.task_id, outcome: "success",
      reason: reason.querySelector("input").value })),
    button(`${v}.complete`, t("action.failure"), () => ({ task_id: detail.task_id, outcome: "failure",
      reason: reason.querySelector("input").value }))) : null;
  return el("section", { class: "panel", "data-role": "task-detail", "data-task": detail.task_id },
    el("h2", {}, detail.title), el("p", {}, t(`task.state.${detail.state}`)),
    detail.result ? el("p", { "data-role": "result" }, `${t(`task.outcome.${detail.result.outcome}`)} ${detail.result.reason}`) : null,
    el("dl", {}, fields), detail.note ? el("p", {}, detail.note) : null, materials, result,
    button(`${v}.close`, t("action.close")));
}

function renderTasks(frame, view) {
  const desk = frame.tasks;
  const me = frame.me;
  const v = view;
  const duty = el("p", { "data-role": "duty", "data-on-duty": String(me.on_duty), "data-presence": me.presence },
    `${me.on_duty ? t("duty.on") : t("duty.off")} · ${t(`presence.${me.presence || "off_duty"}`)} `,
    button(`${v}.duty`, me.on_duty ? t("action.off_duty") : t("action.on_duty"), { on: !me.on_duty }),
    view === "tasks" && me.on_duty ? button("tasks.presence", me.presence === "away" ? t("action.back") : t("action.away"),
      { away: me.presence !== "away" }) : null);
  const heads = ["task.title", "task.origin", "task.business", "col.state", "task.teller", "col.actions"].map((k) => t(k));
  const roster = view === "lobby" ? el("section", { "data-role": "roster" }, el("h2", {}, t("lobby.roster")),
    table([t("task.teller"), t("lobby.duty"), t("lobby.presence"), t("lobby.held"), t("col.actions")],
      desk.roster.map((m) => el("tr", { "data-teller": m.id, "data-on-duty": String(m.on_duty), "data-presence": m.presence },
        el("td", {}, `${m.name} (${m.id})`), el("td", {}, m.on_duty ? t("duty.on") : t("duty.off")),
        el("td", {}, t(`presence.${m.presence}`)), el("td", {}, m.held_tasks),
        el("td", {}, button("lobby.teller_duty", m.on_duty ? t("action.off_duty") : t("action.on_duty"),
          { teller_id: m.id, on: !m.on_duty })))), "")) : null;
  return el("section", { "data-screen": view }, el("h1", {}, t(`view.${view}`)), duty, roster,
    el("section", {}, el("h2", {}, t(view === "lobby" ? "lobby.tasks" : "task.mine")),
      table(heads, desk.tasks.map((task) => taskRow(task, view, me)), t("task.none"))),
    desk.detail ? taskDetail(desk.detail, view) : null);
}

// ---- video calls -----------------------------------------------------------------------

function renderCalls(calls) {
  const queue = calls.queue.map((c) => el("tr", { "data-call": c.call_id, "data-state": c.state },
    el("td", {}, c.terminal_id), el("td", {}, c.business_type), el("td", {}, t(`call.mode.${c.mode}`)),
    el("td", {}, t(`call.state.${c.state}`)), el("td", {}, c.position || ""), el("td", {}, c.created_at)));
  const current = calls.current;
  let panel = el("p", { class: "muted" }, t("call.none"));
  if (current) {
    const title = field("call-title", "title", t("call.title_field"), { size: 30 });
    const lines = field("call-lines", "lines", t("call.lines_field"), { size: 40 });
    const commands = current.state === "active" ? el("p", { "data-role": "commands" }, title, lines,
      calls.command_kinds.map((kind) => button("calls.command", t(`call.command.${kind}`), () => ({
        kind, title: title.querySelector("input").value, lines: lines.querySelector("input").value,
      }), { "data-kind": kind }))) : null;
    const results = calls.commands.map((c) => el("tr", { "data-command": c.command_id, "data-kind": c.kind,
      "data-completion": c.completion },
      el("td", {}, t(`call.command.${c.kind}`)), el("td", {}, c.completion || t("call.running")),
      el("td", {}, Object.entries(c.fields).map(([k, v]) => `${k}: ${v}`).join(" · "),
        c.pin_received ? t("call.pin_received") : "",
        c.signature_sha256 ? el("div", {}, t("call.signature", { sha: c.signature_sha256.slice(0, 12), size: c.signature_size })) : "",
        c.signature_url ? el("img", { src: c.signature_url, alt: t("call.signature_image"), "data-role": "signature",
          class: "signature" }) : ""),
      el("td", {}, c.detail)));
    panel = el("section", { class: "panel", "data-role": "current-call", "data-call": current.call_id,
      "data-state": current.state },
      el("h2", {}, t("call.current", { terminal: current.terminal_id, state: t(`call.state.${current.state}`) })),
      current.state === "ringing" ? button("calls.answer", t("action.answer"), { call_id: current.call_id }) : null,
      current.state === "active" ? button("calls.end", t("action.end_call")) : null,
      commands, table([t("call.command"), t("col.state"), t("col.detail"), ""], results, ""));
  }
  return el("section", { "data-screen": "calls" }, el("h1", {}, t("view.calls")), panel,
    el("h2", {}, t("call.queue")),
    table([t("col.terminal"), t("task.business"), t("call.mode"), t("col.state"), t("call.position"), t("col.created")],
      queue, t("call.queue.none")));
}

// ---- fleet -------------------------------------------------------------------------------

function renderFleet(fleet) {
  const branch = el("select", { id: "fleet-branch", name: "branch" },
    el("option", { value: "" }, t("fleet.all")),
    fleet.branches.map((b) => el("option", { value: b, selected: b === fleet.filter.branch }, b)));
  const status = el("select", { id: "fleet-status", name: "status" },
    fleet.statuses.map((s) => el("option", { value: s, selected: s === fleet.filter.status },
      s ? t(`fleet.status.${s}`) : t("fleet.all"))));
  const filters = el("form", { "data-form": "fleet-filter" },
    el("div", { class: "field" }, el("label", { for: "fleet-branch" }, t("fleet.branch")), branch),
    el("div", { class: "field" }, el("label", { for: "fleet-status" }, t("fleet.status")), status),
    button("fleet.filter", t("action.filter"), () => ({ branch: branch.value, status: status.value })));
  const devices = (terminal) => terminal.devices.map((d) => el("span", {
    "data-device": d.name, "data-status": d.status, class: d.status === "online" ? "" : "status-bad" },
    `${d.name}: ${t(`device.${d.status}`)} `));
  const rows = fleet.terminals.map((terminal) => el("tr", {
    "data-terminal": terminal.terminal_id, "data-online": String(terminal.online),
    "data-attention": String(terminal.attention) },
    el("td", {}, button("fleet.select", terminal.terminal_id, { terminal_id: terminal.terminal_id })),
    el("td", {}, terminal.branch),
    el("td", { class: terminal.online ? "" : "status-bad" }, terminal.online ? t("fleet.online") : t("fleet.offline")),
    el("td", {}, t(`service.${terminal.service_state}`)), el("td", {}, devices(terminal)),
    el("td", {}, terminal.last_seen_at)));
  const heads = ["col.terminal", "fleet.branch", "fleet.status", "col.state", "fleet.devices", "fleet.last_seen"];
  let detail = null;
  if (fleet.detail) {
    const d = fleet.detail;
    detail = el("section", { class: "panel", "data-role": "terminal-detail", "data-terminal": d.terminal_id },
      el("h2", {}, t("fleet.detail", { terminal: d.terminal_id })),
      el("p", {}, devices(d)), el("h2", {}, t("fleet.history")),
      table([t("col.at"), t("fleet.device"), t("fleet.status"), t("col.detail")],
        d.history.map((h) => el("tr", { "data-change": "", "data-device": h.device, "data-status": h.status },
          el("td", {}, h.at), el("td", {}, h.device), el("td", {}, t(`device.${h.status}`)), el("td", {}, h.detail))),
        t("fleet.history.none")),
      button("fleet.close", t("action.close")));
  }
  return el("section", { "data-screen": "fleet" }, el("h1", {}, t("view.fleet")), filters,
    table(heads.map((k) => t(k)), rows, t("fleet.none")), detail);
}

document.querySelector('[data-action="language"]').addEventListener("click", () => send("language"));
connect();

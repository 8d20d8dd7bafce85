// Shared by the console page's modules: texts, element builders, the action wire, and the
// registries through which each module adds its view and handles its own frame types
// (see docs/console.md "Page modules").

export const page = { messages: {}, lang: "zh-CN", frame: null, ws: null, view: "", counting: "" };

export const VIEWS = {};
const frameHandlers = new Map();
const renderHooks = [];
let renderer = () => {};

/** Add a view: `name` is one of the state frame's `views`; `build(frame)` returns its section. */
export function registerView(name, build) {
  VIEWS[name] = build;
}

/** Handle console frames of a type other than catalogue/state/refused. */
export function onFrame(type, handler) {
  frameHandlers.set(type, handler);
}

export function frameHandler(type) {
  return frameHandlers.get(type);
}

/** Called with each rendered state frame (after the view is in the document). */
export function afterRender(hook) {
  renderHooks.push(hook);
}

export function runRenderHooks(frame) {
  for (const hook of renderHooks) hook(frame);
}

export function setRenderer(render) {
  renderer = render;
}

/** Render the newest frame again (after a change of what the page shows locally). */
export function rerender() {
  renderer();
}

// ---- text and elements -------------------------------------------------------------------

export function t(key, values = {}) {
  const message = page.messages[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** ``card_reader`` / ``loanOfficer`` -> "Card reader" / "Loan officer" (as i18n.humanised). */
export function humanised(id) {
  const words = String(id).replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_-]/g, " ")
    .split(/\s+/).filter(Boolean).join(" ").toLowerCase();
  return words ? words[0].toUpperCase() + words.slice(1) : String(id);
}

/** An id the server sent, in words: the catalogue's `<prefix>.<id>`, else `fallback` (a name
 * the server gave) or the id humanised: one the catalogue does not know yet still reads as
 * words, never as a bare key. */
export function named(prefix, id, fallback = "") {
  const key = `${prefix}.${String(id ?? "").toLowerCase()}`;
  return key in page.messages ? t(key) : fallback || humanised(id ?? "");
}

/** Who did something, ``teller:BO-1`` (or ``teller BO-1``) -> "Teller BO-1" / "柜员 BO-1":
 * the role in words (`actor.<role>`, else humanised), the id kept. */
export function actorName(actor) {
  const text = String(actor ?? "");
  const cut = text.search(/[: ]/);
  const [role, id] = cut < 0 ? [text, ""] : [text.slice(0, cut), text.slice(cut + 1)];
  const key = `actor.${role.toLowerCase()}`;
  return key in page.messages ? t(key, { id }).trim() : `${humanised(role)} ${id}`.trim();
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  // Any depth: a screen builds lists of [label, value] pairs.
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function button(action, label, data = {}, attrs = {}) {
  const node = el("button", { type: "button", "data-action": action, ...attrs }, label);
  node.addEventListener("click", () => send(action, typeof data === "function" ? data() : data));
  return node;
}

export function field(id, name, label, attrs = {}) {
  const input = el("input", { id, name, autocomplete: "off", ...attrs });
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

export function formValues(root) {
  const out = {};
  for (const input of root.querySelectorAll("input[name], select[name]")) {
    // "denominations.0.5" -> out.denominations["0.5"]: split at the first dot only.
    const dot = input.name.indexOf(".");
    if (dot > 0) (out[input.name.slice(0, dot)] ??= {})[input.name.slice(dot + 1)] = input.value;
    else out[input.name] = input.value;
  }
  return out;
}

export function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
}


// ---- the wire ----------------------------------------------------------------------------

export function send(action, data = {}) {
  hideError();
  if (page.ws && page.ws.readyState === WebSocket.OPEN) {
    page.ws.send(JSON.stringify({ type: "action", action, data }));
  }
}

/** Send a frame of another type (e.g. signalling) to the console process. */
export function sendFrame(frame) {
  if (page.ws && page.ws.readyState === WebSocket.OPEN) page.ws.send(JSON.stringify(frame));
}

export function hideError() {
  const node = document.querySelector('[data-role="error"]');
  node.hidden = true;
  for (const bad of document.querySelectorAll("[aria-invalid]")) bad.removeAttribute("aria-invalid");
}

export function showError(frame) {
  const node = document.querySelector('[data-role="error"]');
  node.hidden = false;
  node.dataset.field = frame.field || "";
  node.dataset.reason = frame.reason || "";
  node.dataset.status = frame.status || "";
  node.textContent = t("refused", { message: frame.message });
  const input = frame.field && document.querySelector(`[name="${CSS.escape(frame.field)}"]`);
  if (input) input.setAttribute("aria-invalid", "true");
}

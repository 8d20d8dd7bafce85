// Shared by the kiosk page's modules: texts, element builders, the action wire, and the
// registries through which each module adds its screens and handles its own frame types
// (see docs/kiosk.md "Page modules").

export const state = { messages: {}, lang: "zh-CN", frame: null, ws: null, countdown: null, staleTimer: null };

export const SCREENS = {};
const frameHandlers = new Map();
const renderHooks = [];

/** Add screens: `{name: (data) => [nodes]}`. */
export function registerScreens(screens) {
  Object.assign(SCREENS, screens);
}

/** Handle agent frames of a type other than catalogue/screen/refused. */
export function onFrame(type, handler) {
  frameHandlers.set(type, handler);
}

export function frameHandler(type) {
  return frameHandlers.get(type);
}

/** Called with each rendered screen frame (after the screen is in the document). */
export function afterRender(hook) {
  renderHooks.push(hook);
}

export function runRenderHooks(frame) {
  for (const hook of renderHooks) hook(frame);
}

// ---- text ------------------------------------------------------------------------------

export function t(key, values = {}) {
  const message = state.messages[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
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

export function field(name, label, input) {
  const id = `f-${name}`;
  input.id = id;
  input.name = name;
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

export function select(options, current) {
  const node = el("select");
  for (const [value, label] of options) {
    node.append(el("option", { value, selected: value === current }, label));
  }
  return node;
}

export function formValues(root) {
  const out = {};
  for (const input of root.querySelectorAll("input[name], select[name]")) {
    if (input.type === "radio" && !input.checked) continue;
    out[input.name] = input.value;
  }
  return out;
}


// ---- the wire --------------------------------------------------------------------------

export function send(action, data = {}) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "action", action, data }));
  }
}

/** Send a frame of another type (e.g. signalling) to the agent. */
export function sendFrame(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

// ---- screen parts ----------------------------------------------------------------------

// ---- screens ---------------------------------------------------------------------------

export function title(key, values) {
  return el("h1", { id: "screen-title" }, t(key, values));
}

export function serviceList(services, notices) {
  const list = el("ul", { class: "services", "aria-label": t("services.label") });
  for (const service of services) {
    const label = t(`service.${service.id}`);
    const notice = service.notice ? el("span", { class: "notice" }, t(service.notice)) : null;
    const item = service.available
      ? button("start", label, { service: service.id }, { "data-service": service.id, "data-available": "true" })
      : el("span", { class: "unavailable", "data-service": service.id, "data-available": "false" },
           `${label} — ${t("service.unavailable")}`);
    list.append(el("li", {}, item, notice));
  }
  return [list, notices.length ? el("ul", { class: "notices", role: "status" },
    notices.map((n) => el("li", {}, t(n)))) : null];
}

export function accountLine(a) {
  return el("li", { "data-account": a.account_id },
    t("account.line", { account_id: a.account_id, kind: t(`account.kind.${a.kind}`), balance: a.balance, available: a.available }));
}

// Continuing on a phone (flows/phone.py): the QR and its short code, or the matching code.
export function phonePanel(p) {
  if (!p) return null;
  const attrs = { class: "phone", "data-role": "phone", "data-state": p.state, "aria-labelledby": "phone-title" };
  if (p.state === "paired") {
    return el("section", attrs,
      el("h2", { id: "phone-title" }, t("phone.paired_title")),
      el("p", { "data-role": "matching-code", "data-code": p.matching_code }, t("phone.matching", { code: p.matching_code })),
      el("div", { class: "actions" }, button("phone_cancel", t("phone.cancel"))));
  }
  return el("section", attrs,
    el("h2", { id: "phone-title" }, t("phone.title")),
    p.ended ? el("p", { role: "status" }, t(`phone.ended.${p.ended}`)) : null,
    el("p", {}, t("phone.scan")),
    el("img", { src: p.qr, alt: t("phone.qr_label"), "data-role": "qr", class: "qr", width: 240, height: 240 }),
    el("p", { "data-role": "short-code", "data-code": p.short_code }, t("phone.short_code", { code: p.short_code })));
}


// The kiosk page: a thin view of the agent's session (see docs/kiosk.md).
// It renders the screen the agent names and sends the customer's actions back; it holds no
// state that matters, so a reload or a reconnect shows exactly what the agent shows.

const RETRY_MS = 500;
const STALE_MS = 1500;
const state = { messages: {}, lang: "zh-CN", frame: null, ws: null, countdown: null, staleTimer: null };

function showConnecting() {
  state.frame = null;
  renderOverlay(null);
  document.getElementById("screen").replaceChildren(
    el("section", { "data-screen": "connecting", class: "screen" }, el("h1", {}, t("connection.connecting"))));
}

// ---- text ------------------------------------------------------------------------------

function t(key, values = {}) {
  const message = state.messages[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
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

function field(name, label, input) {
  const id = `f-${name}`;
  input.id = id;
  input.name = name;
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

function select(options, current) {
  const node = el("select");
  for (const [value, label] of options) {
    node.append(el("option", { value, selected: value === current }, label));
  }
  return node;
}

function formValues(root) {
  const out = {};
  for (const input of root.querySelectorAll("input[name], select[name]")) {
    if (input.type === "radio" && !input.checked) continue;
    out[input.name] = input.value;
  }
  return out;
}

// ---- the wire --------------------------------------------------------------------------

function send(action, data = {}) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "action", action, data }));
  }
}

function setConnection(connected) {
  const node = document.querySelector('[data-role="connection"]');
  node.dataset.state = connected ? "connected" : "connecting";
  node.textContent = connected ? t("connection.connected") : t("connection.connecting");
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.ws = ws;
  ws.addEventListener("open", () => setConnection(true));
  ws.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  ws.addEventListener("close", () => {
    setConnection(false);
    // Nothing on a screen the agent no longer vouches for can be pressed; after a moment
    // the screen itself gives way to "connecting" (never a stale screen).
    document.getElementById("screen").inert = true;
    clearTimeout(state.staleTimer);
    state.staleTimer = setTimeout(showConnecting, STALE_MS);
    setTimeout(connect, RETRY_MS);
  });
  ws.addEventListener("error", () => ws.close());
}

function receive(frame) {
  if (frame.type === "catalogue") {
    state.messages = frame.messages;
    state.lang = frame.lang;
    setConnection(true);
  } else if (frame.type === "screen") {
    render(frame);
  } else if (frame.type === "refused") {
    showError(frame);
  }
}

function showError(frame) {
  const root = document.querySelector("[data-screen]");
  let box = root.querySelector('[data-role="error"]');
  if (!box) {
    box = el("p", { "data-role": "error", role: "alert", class: "error" });
    root.append(box);
  }
  box.dataset.field = frame.field || "";
  box.textContent = frame.detail ? `${frame.message} (${frame.detail})` : frame.message;
  if (frame.field) {
    const input = root.querySelector(`[name="${CSS.escape(frame.field)}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }
}

// ---- screens ---------------------------------------------------------------------------

function title(key, values) {
  return el("h1", { id: "screen-title" }, t(key, values));
}

function serviceList(services, notices) {
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

function accountLine(a) {
  return el("li", { "data-account": a.account_id },
    t("account.line", { account_id: a.account_id, kind: t(`account.kind.${a.kind}`), balance: a.balance, available: a.available }));
}

// Continuing on a phone (flows/phone.py): the QR and its short code, or the matching code.
function phonePanel(p) {
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

const SCREENS = {
  attract: (d) => [
    title("attract.title"),
    el("p", {}, t("attract.choose")),
    ...serviceList(d.services, d.notices),
    phonePanel(d.phone),
  ],
  out_of_service: (d) => [title("out_of_service.title"), el("p", {}, t(`out_of_service.${d.reason}`))],
  card: (d) => [
    title("card.title"),
    el("p", {}, t("card.insert", { service: t(`service.${d.service}`) })),
    el("div", { class: "actions" }, button("cancel", t("action.cancel"))),
  ],
  pin: (d) => {
    const dots = el("div", { class: "pin-dots", role: "img", "aria-label": t("pin.count", { digits: d.digits }) });
    for (let i = 0; i < d.digits; i += 1) dots.append(el("span", { "data-role": "pin-dot", class: "dot" }, "●"));
    return [
      title("pin.title"),
      el("p", {}, t("pin.card", { pan_masked: d.pan_masked })),
      el("p", {}, t("pin.instructions")),
      dots,
      el("p", { class: "live", "aria-live": "polite" }, t("pin.count", { digits: d.digits })),
      el("div", { class: "actions" }, button("cancel", t("action.cancel"))),
    ];
  },
  pin_failed: (d) => [
    title(d.locked ? "pin_failed.locked_title" : "pin_failed.title"),
    el("p", { role: "alert" }, d.locked ? t("pin_failed.locked") : t("pin_failed.attempts_left", { attempts_left: d.attempts_left })),
    el("div", { class: "actions" },
      d.locked ? null : button("retry", t("action.retry")),
      button("cancel", t("action.take_card"))),
  ],
  auth_error: (d) => [
    title("auth_error.title"),
    el("p", { role: "alert" }, t(`auth_error.${d.code}`)),
    el("div", { class: "actions" }, button("ok", t("action.ok"))),
  ],
  menu: (d) => [
    title("menu.title"),
    el("p", {}, t("menu.card", { pan_masked: d.pan_masked })),
    el("ul", { class: "accounts", "aria-label": t("accounts.label") }, d.accounts.map(accountLine)),
    ...serviceList(d.services, d.notices),
    el("div", { class: "actions" }, button("finish", t("action.finish"))),
  ],
  deposit_form: (d) => {
    const form = el("form", { class: "form", "aria-labelledby": "screen-title" });
    const accounts = select(d.accounts.map((a) => [a.account_id, `${a.account_id} · ${t(`account.kind.${a.kind}`)} · ${a.currency_name}`]));
    form.append(
      field("kind", t("deposit.kind"), select(d.kinds.map((k) => [k, t(`asset.kind.${k}`)]))),
      field("account_id", t("form.account"), accounts),
      field("currency", t("form.currency"), el("input", { type: "text", autocomplete: "off", maxlength: 3, placeholder: t("deposit.currency_hint") })),
      field("amount", t("deposit.amount"), el("input", { type: "text", inputmode: "decimal", autocomplete: "off" })),
      field("bill_id", t("deposit.bill_id"), el("input", { type: "text", autocomplete: "off" })),
      field("receipt", t("receipt.choice"), select([["yes", t("receipt.yes")], ["no", t("receipt.no")]], "yes")),
    );
    form.addEventListener("submit", (e) => e.preventDefault());
    return [
      title("deposit.title"),
      form,
      el("div", { class: "actions" },
        button("submit", d.busy ? t("action.working") : t("action.continue"), () => formValues(form), { disabled: d.busy, "aria-busy": d.busy ? "true" : null }),
        button("back", t("action.back"))),
    ];
  },
  withdrawal_form: (d) => {
    const form = el("form", { class: "form" });
    const currencies = [["", t("withdrawal.account_currency")], ...d.currencies.map((c) => [c.currency, `${c.currency} · ${c.name}`])];
    form.append(
      field("account_id", t("form.account"), select(d.accounts.map((a) => [a.account_id, `${a.account_id} · ${a.currency_name} · ${a.available}`]))),
      field("currency", t("withdrawal.currency"), select(currencies)),
      field("amount", t("withdrawal.amount"), el("input", { type: "text", inputmode: "decimal", autocomplete: "off" })),
    );
    form.addEventListener("submit", (e) => e.preventDefault());
    return [
      title("withdrawal.title"),
      d.rates_stale ? el("p", { class: "notice", role: "status" }, t("withdrawal.rates_stale")) : null,
      form,
      el("div", { class: "actions" },
        button("quote", t("action.continue"), () => formValues(form)),
        button("back", t("action.back"))),
    ];
  },
  withdrawal_quote: (d) => {
    const form = el("form", { class: "form" },
      field("receipt", t("receipt.choice"), select([["yes", t("receipt.yes")], ["no", t("receipt.no")]], "yes")));
    form.addEventListener("submit", (e) => e.preventDefault());
    return [
    title("quote.title"),
    el("dl", { class: "facts" },
      el("dt", {}, t("quote.amount")), el("dd", { "data-role": "amount" }, d.amount),
      d.rate ? [el("dt", {}, t("quote.rate")), el("dd", { "data-role": "rate" }, d.rate),
                el("dt", {}, t("quote.rate_version")), el("dd", { "data-role": "rate-version" }, d.rate_version)] : null,
      el("dt", {}, t("quote.debit")), el("dd", { "data-role": "equivalent" }, d.equivalent),
      el("dt", {}, t("form.account")), el("dd", {}, d.account_id)),
    form,
    el("div", { class: "actions" },
      button("submit", d.busy ? t("action.working") : t("action.confirm"), () => formValues(form), { disabled: d.busy }),
      button("back", t("action.back"))),
    ];
  },
  tube: (d) => {
    const actions = el("div", { class: "actions" });
    if (d.finished) actions.append(button("done", t("action.done")));
    else if (d.step === "load_carrier") actions.append(button("send", t("tube.send")));
    else if (d.step === "decide") {
      actions.append(button("confirm", t("tube.confirm")), button("dispute_return", t("tube.dispute_return")),
        button("dispute_teller", t("tube.dispute_teller")));
    } else if (d.step === "confirm_receipt") actions.append(button("confirm_receipt", t("tube.confirm_receipt")));
    if (!d.finished && d.can_cancel) actions.append(button("cancel", t("action.cancel")));
    return [
      title(`tube.title.${d.kind}`),
      d.recovered ? el("p", { class: "notice", role: "status" }, t("tube.recovered")) : null,
      el("p", { class: "stage", role: "status", "aria-live": "polite", "data-stage": d.stage }, t(d.message_key)),
      d.step === "wait" && !d.finished ? el("div", { class: "progress", role: "progressbar", "aria-label": t("tube.working") }) : null,
      el("dl", { class: "facts" },
        el("dt", {}, t(d.kind === "deposit" ? "tube.declared" : "tube.requested")), el("dd", { "data-role": "declared" }, d.declared),
        d.counted ? [el("dt", {}, t("tube.counted")), el("dd", { "data-role": "counted" }, d.counted)] : null,
        d.rate ? [el("dt", {}, t("tube.rate")), el("dd", { "data-role": "rate" }, d.rate)] : null,
        d.account_amount ? [el("dt", {}, t("tube.account_amount")), el("dd", { "data-role": "account-amount" }, d.account_amount)] : null,
        d.finished ? [el("dt", {}, t("tube.reference")), el("dd", { "data-role": "reference" }, d.reference)] : null),
      d.code_key ? el("p", { class: "error", role: "alert", "data-code": d.code }, t(d.code_key)) : null,
      d.finished && d.receipt ? el("p", { role: "status" }, t("tube.receipt_printed")) : null,
      actions,
    ];
  },
  statement: (d) => {
    const choose = el("div", { class: "actions", role: "group", "aria-label": t("accounts.label") },
      d.accounts.map((a) => button("account", a.account_id, { account_id: a.account_id },
        { "aria-pressed": d.account?.account_id === a.account_id ? "true" : "false" })));
    const table = el("table", { class: "lines" },
      el("caption", {}, d.account ? t("statement.caption", { account_id: d.account.account_id, currency: d.account.currency_name }) : t("statement.loading")),
      el("thead", {}, el("tr", {}, ["date", "description", "amount", "balance"].map((c) => el("th", { scope: "col" }, t(`statement.${c}`))))),
      el("tbody", {}, d.lines.map((l) => el("tr", {}, el("td", {}, l.date), el("td", {}, l.description), el("td", {}, l.amount), el("td", {}, l.balance)))));
    return [
      title("statement.title"),
      choose,
      d.account ? el("dl", { class: "facts" },
        el("dt", {}, t("statement.opening")), el("dd", {}, d.opening),
        el("dt", {}, t("statement.balance_now")), el("dd", { "data-role": "balance" }, d.balance),
        el("dt", {}, t("statement.available")), el("dd", {}, d.available)) : null,
      table,
      d.balances.length ? el("table", { class: "lines", "data-role": "balances" },
        el("caption", {}, t("statement.balances")),
        el("thead", {}, el("tr", {}, ["form.account", "statement.balance", "statement.available"].map((c) => el("th", { scope: "col" }, t(c))))),
        el("tbody", {}, d.balances.map((b) => el("tr", { "data-account": b.account_id },
          el("th", { scope: "row" }, b.account_id), el("td", {}, b.balance), el("td", {}, b.available))))) : null,
      d.notice ? el("p", { class: "notice", role: "status" }, t(d.notice)) : null,
      d.printed ? el("p", { role: "status", "data-role": "printed" }, t("statement.printed", { reference: d.printed })) : null,
      d.print_failed ? el("p", { role: "alert", class: "error" }, t("statement.print_failed")) : null,
      el("div", { class: "actions" },
        d.can_print ? button("print", t("statement.print"), {}, { disabled: !d.account }) : null,
        button("back", t("action.back"))),
    ];
  },
  rates: (d) => [
    title("rates.title"),
    d.stale ? el("p", { class: "notice stale", role: "status", "data-role": "stale" }, t("rates.stale")) : null,
    d.known ? el("p", {}, t("rates.as_of", { as_of: d.as_of, base: d.base_name })) : el("p", {}, t("rates.none")),
    el("table", { class: "rates" },
      el("caption", {}, t("rates.caption", { base: d.base_name ?? "" })),
      el("thead", {}, el("tr", {}, ["currency", "bid", "ask"].map((c) => el("th", { scope: "col" }, t(`rates.${c}`))))),
      el("tbody", {}, d.rates.map((r) => el("tr", { "data-currency": r.currency },
        el("th", { scope: "row" }, `${r.currency} · ${r.name}`), el("td", {}, r.bid), el("td", {}, r.ask))))),
    el("div", { class: "actions" }, button("back", t("action.back"))),
  ],
  video: (d) => {
    if (d.state === "choose" || d.state === "ended") {
      const form = el("form", { class: "form" },
        field("business_type", t("video.business_type"), select(d.business_types.map((b) => [b, t(`video.business.${b}`)]))),
        field("mode", t("video.mode"), select(d.modes.map((m) => [m, t(`video.mode.${m}`)]))));
      form.addEventListener("submit", (e) => e.preventDefault());
      return [
        title("video.title"),
        d.state === "ended" ? el("p", { role: "status" }, t("video.ended")) : null,
        form,
        el("div", { class: "actions" },
          button("request", t("video.request"), () => formValues(form)),
          button("back", t("action.back"))),
      ];
    }
    return [
      title("video.title"),
      el("p", { role: "status", "aria-live": "polite", "data-role": "queue" },
        d.state === "queued" ? t("video.position", { position: d.position, estimated_wait: d.estimated_wait })
                             : t(`video.state.${d.state}`)),
      el("p", { class: "notice" }, t("video.media_later")),
      el("div", { class: "actions" }, d.state !== "connected" ? button("leave", t("video.leave")) : null),
    ];
  },
  take_card: (d) => [title("take_card.title"), el("p", { role: "alert" }, t("take_card.body", { seconds: d.seconds }))],
  card_retained: () => [
    title("card_retained.title"),
    el("p", { role: "alert" }, t("card_retained.body")),
    el("div", { class: "actions" }, button("ok", t("action.ok"))),
  ],
  resuming: () => [title("resuming.title"), el("p", { role: "status" }, t("resuming.body"))],
  session_ended: (d) => [title("session_ended.title"), el("p", {}, t(`session_ended.${d.reason}`))],
};

// ---- rendering -------------------------------------------------------------------------

function render(frame) {
  clearTimeout(state.staleTimer);
  document.getElementById("screen").inert = false;
  const previous = state.frame;
  state.frame = frame;
  document.documentElement.lang = frame.lang;
  document.body.dataset.contrast = frame.display.contrast;
  document.body.dataset.text = frame.display.text;
  renderSettings(frame);
  const main = document.getElementById("screen");
  const same = previous && previous.screen === frame.screen;
  const old = main.querySelector("[data-screen]");
  const kept = same && old ? formValues(old) : {};
  const focused = same ? document.activeElement?.dataset?.action : null;
  const build = SCREENS[frame.screen] ?? ((d) => [title("screen.unknown")]);
  const root = el("section", { "data-screen": frame.screen, class: "screen", "aria-labelledby": "screen-title" },
    build(frame.data));
  for (const [name, value] of Object.entries(kept)) {
    const input = root.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input) input.value = value;
  }
  main.replaceChildren(root);
  const again = focused && root.querySelector(`[data-action="${CSS.escape(focused)}"]`);
  if (again) again.focus();
  else if (!same) (root.querySelector("input, select, button") ?? main).focus();
  renderOverlay(frame.overlay);
}

function renderSettings(frame) {
  const other = frame.lang === "en" ? "zh-CN" : "en";
  const language = document.querySelector('header [data-action="language"]');
  language.textContent = t("settings.language");
  language.lang = other;
  const contrast = document.querySelector('header [data-action="contrast"]');
  contrast.textContent = t("settings.contrast");
  contrast.setAttribute("aria-pressed", String(frame.display.contrast === "high"));
  const text = document.querySelector('header [data-action="text_size"]');
  text.textContent = t("settings.text_size");
  text.setAttribute("aria-pressed", String(frame.display.text === "large"));
  document.querySelector("nav.settings").setAttribute("aria-label", t("settings.label"));
}

function renderOverlay(overlay) {
  const holder = document.getElementById("overlay");
  clearInterval(state.countdown);
  if (!overlay) {
    holder.replaceChildren();
    return;
  }
  let seconds = overlay.seconds;
  const count = el("span", { "data-role": "countdown" }, String(seconds));
  const more = button("more_time", t("timeout.more_time"));
  const dialog = el("div", { class: "dialog", role: "alertdialog", "aria-modal": "true",
    "aria-labelledby": "timeout-title", "aria-describedby": "timeout-body", "data-screen-overlay": overlay.name },
    el("h2", { id: "timeout-title" }, t("timeout.title")),
    el("p", { id: "timeout-body" }, t("timeout.body_before"), " ", count, " ", t("timeout.body_after")),
    el("div", { class: "actions" }, more));
  holder.replaceChildren(el("div", { class: "scrim" }, dialog));
  more.focus();
  state.countdown = setInterval(() => {
    seconds = Math.max(0, seconds - 1);
    count.textContent = String(seconds);
  }, 1000);
}

// ---- keyboard and PIN-pad function keys ------------------------------------------------

document.addEventListener("keydown", (event) => {
  const overlay = document.querySelector("[data-screen-overlay] button");
  if (overlay && ["F1", "Enter"].includes(event.key)) {
    event.preventDefault();
    overlay.click();
    return;
  }
  const fkey = /^F([1-4])$/.exec(event.key);
  if (fkey) {
    event.preventDefault();
    const buttons = [...document.querySelectorAll("#screen [data-action]:not([disabled])")];
    buttons[Number(fkey[1]) - 1]?.click();
  } else if (event.key === "Escape") {
    document.querySelector('#screen [data-action="cancel"], #screen [data-action="back"]')?.click();
  }
});

for (const node of document.querySelectorAll("header [data-action]")) {
  node.addEventListener("click", () => send(node.dataset.action));
}

connect();

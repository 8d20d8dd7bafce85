// The job forms on the phone (docs/mobile.md "Jobs"): fill in, sign in (at the terminal with
// card + PIN, or here with mobile banking), submit once, follow the job on the terminal.

const FIELDS = {
  tube_deposit: ["account_id", "asset_kind", "currency", "amount"],
  tube_withdrawal: ["account_id", "currency", "amount"],
  statement_view: ["account_id", "period_from", "period_to"],
  statement_print: ["account_id", "period_from", "period_to"],
  cheque_book: ["account_id", "cheque_leaves"],
  video_teller: ["business_type"],
};
const CHOICES = {
  asset_kind: ["cash", "metal", "bill"],
  cheque_leaves: ["10", "25", "50"],
  business_type: ["account_opening", "loan", "card_services", "foreign_exchange", "other"],
};
const FINISHED = ["done", "failed", "canceled", "abandoned"];
// Why a job was abandoned, said in words (other reasons are shown as their code).
const REASONS = ["agent_restarted", "timeout", "out_of_service", "terminal_offline", "pairing_ended", "transaction_unrecoverable", "session_ended"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function input(name, label, attrs = {}) {
  const id = `job-${name}`;
  const control = CHOICES[name]
    ? el("select", { id, name }, ...CHOICES[name].map((v) => el("option", { value: v }, v)))
    : el("input", { id, name, type: "text", autocomplete: "off", ...attrs });
  return el("p", { class: "field" }, el("label", { for: id }, label), control);
}

export function openForm(service, ctx) {
  const { call, t, authMethods } = ctx;
  let accounts = [];
  const old = document.querySelector('[data-role="job"]');
  if (old) old.remove();
  const error = el("p", { role: "alert", "data-role": "job-error", hidden: "" });
  const status = el("p", { "data-role": "job-state", "aria-live": "polite" });
  const form = el("form", { "data-role": "job-form", "data-service": service, novalidate: "" });
  const auth = el("fieldset", {}, el("legend", {}, t("job.auth")));
  for (const method of ["terminal", "bank"]) {
    if (method === "terminal" && !authMethods.includes("terminal")) continue;
    const id = `auth-${method}`;
    auth.append(el("input", { type: "radio", name: "auth", id, value: method }), el("label", { for: id }, t(`job.auth_${method}`)));
  }
  const login = el("fieldset", { "data-role": "login", hidden: "" }, el("legend", {}, t("job.login")),
    input("customer_id", t("job.customer_id")),
    input("password", t("job.password"), { type: "password", autocomplete: "current-password" }),
    input("totp", t("job.totp"), { inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6" }),
    el("button", { type: "button", "data-action": "login" }, t("job.sign_in")));
  form.append(auth, login);
  for (const name of FIELDS[service]) {
    form.append(input(name, t(`job.${name}`), name.startsWith("period") ? { type: "date" } : {}));
  }
  const quote = el("p", { "data-role": "quote", "aria-live": "polite" });
  if (service === "tube_withdrawal") form.append(quote);
  form.append(el("button", { type: "submit", "data-action": "submit" }, t("job.submit")));
  const section = el("section", { "data-role": "job", "aria-labelledby": "job-title" },
    el("h2", { id: "job-title" }, t(`service.${service}`)), error, form, status);
  document.getElementById("main").append(section);
  const first = form.querySelector('input[name="auth"]');
  if (first) first.checked = true;

  const fail = (e) => {
    const data = e.data || {};
    for (const bad of form.querySelectorAll("[aria-invalid]")) bad.removeAttribute("aria-invalid");
    const named = data.field && form.elements[data.field];
    if (named && named.setAttribute) { named.setAttribute("aria-invalid", "true"); named.focus(); }
    error.textContent = `${data.field ? `${data.field}: ` : ""}${data.message || t("error.generic")}`;
    error.hidden = false;
  };
  form.addEventListener("change", () => {
    login.hidden = form.elements.auth.value !== "bank";
  });
  login.querySelector('[data-action="login"]').addEventListener("click", async () => {
    try {
      const result = await call("POST", "/api/login", {
        customer_id: form.elements.customer_id.value, password: form.elements.password.value,
        totp: form.elements.totp.value,
      });
      accounts = result.accounts;
      form.elements.password.value = "";
      login.dataset.state = "signed_in";
      const field = form.elements.account_id;
      if (field) {
        const choice = el("select", { id: "job-account_id", name: "account_id" },
          ...accounts.map((a) => el("option", { value: a.account_id }, `${a.account_id} · ${a.currency} · ${a.available}`)));
        field.replaceWith(choice);
      }
      error.hidden = true;
    } catch (e) { fail(e); }
  });
  const liveQuote = async () => {
    if (service !== "tube_withdrawal" || !form.elements.amount.value || !form.elements.currency.value) return;
    try {
      const q = await call("POST", "/api/quote", {
        account_id: form.elements.account_id.value, currency: form.elements.currency.value,
        amount: form.elements.amount.value,
      });
      quote.dataset.rateVersion = q.rate_version;
      quote.textContent = q.rate ? `${t("job.quote")} ${q.rate} → ${q.equivalent} ${q.account_currency}` : "";
    } catch (e) { quote.textContent = ""; }
  };
  form.addEventListener("input", liveQuote);
  const key = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9_-]/g, "");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { idempotency_key: key, service, auth: form.elements.auth.value };
    for (const name of FIELDS[service]) body[name] = form.elements[name].value;
    if (body.cheque_leaves) body.cheque_leaves = Number(body.cheque_leaves);
    if (quote.dataset.rateVersion) body.rate_version = Number(quote.dataset.rateVersion);
    try {
      const job = await call("POST", "/api/jobs", body);
      error.hidden = true;
      form.hidden = true;
      follow(job, ctx, status);
    } catch (e) { fail(e); }
  });
}

function follow(job, ctx, status) {
  const { call, t } = ctx;
  const show = (j) => {
    status.dataset.state = j.state;
    status.dataset.jobId = j.job_id;
    let line = t(`job.state.${j.state}`);
    if (j.queue_position) line += ` ${t("job.queue")} ${j.queue_position}`;
    if (j.receipt_reference) line += ` ${t("job.receipt")} ${j.receipt_reference}`;
    if (j.reason) line += REASONS.includes(j.reason) ? ` ${t(`job.reason.${j.reason}`)}` : ` (${j.reason})`;
    status.textContent = line;
    status.dataset.reason = j.reason || "";
    status.dataset.receipt = j.receipt_reference || "";
    status.dataset.queue = j.queue_position || "";
    if (j.statement && j.statement.length) {
      const table = el("ul", { "data-role": "statement" }, ...j.statement.map((s) => el("li", {}, `${s.date} ${s.description} ${s.amount} ${s.balance}`)));
      const shown = status.parentNode.querySelector('[data-role="statement"]');
      if (shown) shown.replaceWith(table); else status.after(table);
    }
  };
  show(job);
  let ended = false;
  const timer = setInterval(async () => {
    try {
      const now = await call("GET", `/api/jobs/${encodeURIComponent(job.job_id)}`);
      if (ended) return;  // an answer that overtook the last one
      show(now);
      if (FINISHED.includes(now.state)) {
        ended = true;
        clearInterval(timer);
        if (now.state === "done" && (now.receipt_reference || "").startsWith("BLTX:")) recordings(now, ctx, status);
      }
    } catch (e) { if (e.status === 410 || e.status === 401) clearInterval(timer); }
  }, 1000);
}

// A finished tube transaction's recordings, watched here (the server lets only the job's
// customer see them and audits each viewing). The upload follows the transaction: ask
// again for a while until they are stored.
function recordings(job, ctx, status) {
  const { call, t } = ctx;
  const box = el("section", { "data-role": "recordings", "aria-live": "polite" }, el("h3", {}, t("job.recordings")));
  const player = el("video", { controls: "", playsinline: "", preload: "metadata", "data-role": "recording-player", hidden: "" });
  const note = el("p", { "data-role": "recordings-note" }, t("job.recordings_wait"));
  box.append(note, player);
  status.after(box);
  let tries = 0;
  const ask = async () => {
    tries += 1;
    try {
      const found = await call("GET", `/api/jobs/${encodeURIComponent(job.job_id)}/recordings`);
      note.remove();
      const list = el("ul", {});
      for (const r of found.recordings) {
        const watch = el("button", { type: "button", "data-action": "watch", "data-sha256": r.sha256 }, `${t("job.watch")} (${Math.round(r.duration_seconds)} s)`);
        watch.addEventListener("click", () => { player.src = r.url; player.hidden = false; player.play().catch(() => {}); });
        list.append(el("li", {}, watch));
      }
      box.insertBefore(list, player);
      box.dataset.state = "listed";
    } catch (e) {
      if (e.status === 404 && tries < 60) { setTimeout(ask, 2000); return; }
      note.textContent = (e.data && e.data.message) || t("error.generic");
      box.dataset.state = "refused";
      box.dataset.reason = (e.data && e.data.error) || "";
    }
  };
  ask();
}

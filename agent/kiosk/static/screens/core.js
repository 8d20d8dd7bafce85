// The kiosk's own screens (docs/kiosk.md "Screens").

import { registerScreens, t, el, button, field, select, formValues, title, serviceList, accountLine, phonePanel } from "../ui.js";

registerScreens({
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
      el("tbody", {}, d.account && !d.lines.length
        ? el("tr", { "data-role": "no-lines" }, el("td", { colspan: "4" }, t("statement.no_lines")))
        : d.lines.map((l) => el("tr", {}, el("td", {}, l.date), el("td", {}, l.description), el("td", {}, l.amount), el("td", {}, l.balance)))));
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
  take_card: (d) => [title("take_card.title"), el("p", { role: "alert" }, t("take_card.body", { seconds: d.seconds }))],
  card_retained: () => [
    title("card_retained.title"),
    el("p", { role: "alert" }, t("card_retained.body")),
    el("div", { class: "actions" }, button("ok", t("action.ok"))),
  ],
  resuming: () => [title("resuming.title"), el("p", { role: "status" }, t("resuming.body"))],
  session_ended: (d) => [title("session_ended.title"), el("p", {}, t(`session_ended.${d.reason}`))],
});

// Cheque-book purchase screens (agent/kiosk/flows/cheque.py, docs/kiosk.md): the method,
// the purchase-code form, and the purchase as the engine shows it.

import { registerScreens, t, el, button, field, select, formValues, title } from "../ui.js";

function orderForm(d) {
  const form = el("form", { class: "form", "data-role": "cheque-order" });
  for (const o of d.offers || []) {
    const refused = o.refused_rule ? t(`cheque.code.${o.refused_rule}`) : "";
    const input = el("input", { type: "number", min: 0, max: 10, value: (d.prefill || {})[o.book_type] || 0, inputmode: "numeric",
      "data-book-type": o.book_type, disabled: Boolean(o.refused_rule) });
    form.append(el("fieldset", { "data-offer": o.book_type, "data-refused-rule": o.refused_rule || null },
      el("legend", {}, o.name || o.book_type),
      field(`books_${o.book_type}`, t("cheque.books"), input),
      el("p", {}, t("cheque.fee_per_book", { fee: o.fee }),
        " · ", t("cheque.books_left", { left: o.left, stock: o.stock })),
      refused ? el("p", { class: "notice", "data-role": "offer-refused" }, t("cheque.offer_refused"), refused) : null));
  }
  return form;
}

function orderLines(form) {
  return Array.from(form.querySelectorAll("input[data-book-type]"))
    .filter((input) => !input.disabled && Number(input.value) > 0)
    .map((input) => ({ book_type: input.dataset.bookType, books: Number(input.value) }));
}

function facts(d) {
  return el("dl", { class: "facts" },
    d.company ? [el("dt", {}, t("cheque.company")), el("dd", { "data-role": "company" }, d.company)] : null,
    [el("dt", {}, t("cheque.account")), el("dd", { "data-role": "account" }, d.account)],
    d.purchaser ? [el("dt", {}, t("cheque.purchaser")), el("dd", { "data-role": "purchaser" }, d.purchaser)] : null,
    (d.books || []).map((b) => [el("dt", {}, b.name || b.book_type),
      el("dd", { "data-role": "book", "data-first": b.first, "data-last": b.last }, t("cheque.book_range", b))]),
    d.fee_total ? [el("dt", {}, t("cheque.fee_total")), el("dd", { "data-role": "fee" }, d.fee_total)] : null,
    d.fee_refunded ? [el("dt", {}, t("cheque.fee_refunded")), el("dd", { "data-role": "refunded" }, d.fee_refunded)] : null,
    d.finished ? [el("dt", {}, t("cheque.reference")), el("dd", { "data-role": "reference" }, d.reference)] : null);
}

registerScreens({
  cheque_method: (d) => {
    if (d.signed_in) {
      const form = el("form", { class: "form" },
        field("account_id", t("cheque.method.account"),
          select(d.accounts.map((a) => [a.account_id, `${a.account_id} (${a.available})`]), "")));
      return [title("cheque.title"), form, el("div", { class: "actions" },
        button("start", t("cheque.method.start"), () => formValues(form)), button("back", t("action.back")))];
    }
    return [title("cheque.method.title"), el("div", { class: "actions", "data-role": "methods" },
      button("method", t("cheque.method.card"), { method: "card" }, { "data-method": "card" }),
      button("method", t("cheque.method.code"), { method: "code" }, { "data-method": "code" }),
      button("back", t("action.back")))];
  },
  cheque_code: (d) => {
    const form = el("form", { class: "form" },
      field("account_number", t("cheque.code_form.account_number"), el("input", { inputmode: "numeric", autocomplete: "off" })),
      field("purchase_code", t("cheque.code_form.purchase_code"), el("input", { type: "password", inputmode: "numeric", autocomplete: "off" })));
    return [title("cheque.code_form.title"), form, el("div", { class: "actions" },
      button("submit", d.busy ? t("action.working") : t("action.confirm"), () => formValues(form), { disabled: d.busy }),
      button("back", t("action.back")))];
  },
  cheque: (d) => {
    const actions = el("div", { class: "actions" });
    let body = null;
    if (d.finished) actions.append(button("done", t("action.done")));
    else if (d.step === "id") actions.append(button("read_id", t("cheque.read_id")));
    else if (d.step === "face") actions.append(button("capture", t("cheque.capture")));
    else if (d.step === "order") {
      body = orderForm(d);
      actions.append(button("order", t("cheque.order"), () => ({ lines: orderLines(body) })));
    }
    if (!d.finished && d.can_cancel) actions.append(button("cancel", t("action.cancel")));
    const stageText = d.finished ? t(`cheque.outcome.${d.outcome}`)
      : t(`cheque.stage.${d.step}`, { printed: d.printed, total: d.total });
    return [
      title("cheque.title"),
      d.recovered ? el("p", { class: "notice", role: "status" }, t("cheque.recovered")) : null,
      el("p", { class: "stage", role: "status", "aria-live": "polite", "data-stage": d.stage, "data-screen-step": d.step }, stageText),
      d.step === "printing" || d.step === "wait"
        ? el("progress", { "data-role": "cheque-progress", max: d.total || 1, value: d.printed || 0 }) : null,
      d.step === "face" && d.attempts_left ? el("p", { "data-role": "attempts" }, t("cheque.attempts_left", { count: d.attempts_left })) : null,
      facts(d),
      body,
      d.code_key ? el("p", { class: "error", role: "alert", "data-code": d.code }, t(d.code_key)) : null,
      actions,
    ];
  },
});

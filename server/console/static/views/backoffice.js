// The back office: carriers arriving, counting, history (docs/console.md).

import { page, registerView, t, el, button, field, formValues, table, send, rerender } from "../ui.js";

// ---- back office -------------------------------------------------------------------------

function carrierRow(txn) {
  const actions = txn.actions.map((action) => {
    if (action === "count") {
      const node = el("button", { type: "button", "data-action": "open_count", "data-txn": txn.txn_id },
        t("action.count"));
      node.addEventListener("click", () => { page.counting = txn.txn_id; rerender(); });
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
    el("td", { "data-kind": txn.kind, "data-asset": txn.asset }, `${txn.kind_name} · ${txn.asset_name}`),
    el("td", { "data-role": "state" }, txn.state_name),
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
  cancel.addEventListener("click", () => { page.counting = ""; rerender(); });
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
      el("td", {}, `#${i.incident_id} ${i.kind_name}`), el("td", {}, i.terminal_id), el("td", {}, i.txn_id),
      el("td", {}, i.detail), el("td", {}, i.opened_at),
      el("td", {}, input, button("backoffice.resolve", t("action.resolve"),
        () => ({ incident_id: String(i.incident_id), resolution: input.querySelector("input").value }))));
  });
  // Kinds, states and actors in words (server/console/labels.py); the ids in data-*.
  const events = desk.events.slice(0, 10).map((e) => el("tr", { "data-event": e.event_id, "data-kind": e.event,
    "data-state": e.state, "data-actor": e.actor },
    el("td", {}, e.at), el("td", {}, e.terminal_id), el("td", {}, e.txn_id),
    el("td", { "data-role": "event" }, e.event_name), el("td", { "data-role": "actor" }, e.actor_name)));
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
    el("td", {}, txn.pan_masked), el("td", {}, `${txn.kind_name} · ${txn.asset_name}`),
    el("td", { "data-role": "state" }, txn.state_name), el("td", {}, txn.declared), el("td", {}, txn.counted),
    el("td", {}, txn.reference)));
  const heads = ["col.created", "col.terminal", "col.customer", "col.card", "col.kind", "col.state",
    "col.declared", "col.counted", "col.reference"].map((k) => t(k));
  return el("section", { "aria-labelledby": "h-history", "data-role": "history" },
    el("h2", { id: "h-history" }, t("bo.history")), form,
    history.searched ? el("p", { role: "status" }, t("history.count", { count: rows.length })) : null,
    history.searched ? table(heads, rows, t("history.none")) : null);
}


registerView("backoffice", (frame) => renderBackOffice(frame.backoffice));

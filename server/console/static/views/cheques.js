// The cheque-sale screen of the staff console (docs/console.md, "Cheque sale"): cassette
// stock, authorised purchasers (enrol or replace a face image, unlock), purchase codes,
// alerts, and a link to the branch display (/display). A thin view of frame.cheques; the
// helpers (el, button, t, table, send, showError) come from ui.js.

import { registerView, el, t, table, button, send, showError, named, actorName } from "../ui.js";

// What staff picked in the selects, kept across re-renders (every state push re-renders).
const chosen = {};

function select(el, id, name, options) {
  const node = el("select", { id, name }, options.map(([value, label]) =>
    el("option", { value, selected: chosen[name] === value }, label)));
  node.addEventListener("change", () => { chosen[name] = node.value; });
  return node;
}

export function renderCheques(desk, ui) {
  const { el, t } = ui;
  if (!desk) return el("section", { "data-screen": "cheques" }, el("p", {}, t("cheques.loading")));
  return el("section", { "data-screen": "cheques" },
    el("h1", {}, t("view.cheques")),
    el("p", {}, el("a", { href: "/display", target: "_blank", "data-role": "display-link" },
      t("cheques.open_display"))),
    renderAlerts(desk, ui),
    renderStock(desk, ui),
    renderPurchasers(desk, ui));
}

function renderAlerts(desk, { el, t, table, button }) {
  const rows = desk.alerts.map((a) => {
    const id = `cq-resolution-${a.incident_id}`;
    const input = el("input", { id, name: "resolution", "aria-label": t("cheques.resolution") });
    return el("tr", { "data-incident": a.incident_id, "data-kind": a.kind },
      el("td", {}, a.opened_at), el("td", {}, a.terminal_id), el("td", {}, named("cheques.alert", a.kind)),
      el("td", {}, a.detail),
      el("td", {}, input, button("cheques.resolve", t("action.resolve"),
        () => ({ incident_id: a.incident_id, resolution: document.getElementById(id).value }))));
  });
  return el("section", { "data-part": "alerts", role: rows.length ? "alert" : null },
    el("h2", {}, t("cheques.alerts")),
    table([t("cheques.opened"), t("col.terminal"), t("col.kind"), t("col.detail"), ""], rows,
      t("cheques.no_alerts")));
}

function renderStock(desk, { el, t, table, button }) {
  const rows = desk.stock.map((r) => el("tr", { "data-range": r.range_id, "data-terminal": r.terminal_id },
    el("td", {}, r.terminal_id), el("td", { "data-book-type": r.book_type }, named("book", r.book_type)), el("td", {}, r.first),
    el("td", {}, r.last), el("td", { "data-role": "books-free" }, String(r.books_free)),
    el("td", { "data-actor": r.loaded_by }, actorName(r.loaded_by)),
    el("td", {}, button("cheques.unload", t("cheques.unload"), { range_id: r.range_id }))));
  const terminal = select(el, "cq-terminal", "terminal_id", desk.terminals.map((id) => [id, id]));
  const kind = select(el, "cq-book-type", "book_type", desk.book_types.map((k) => [k.book_type, named("book", k.book_type, k.name)]));
  const form = el("form", { "data-form": "load-stock", class: "row" },
    el("label", { for: "cq-terminal" }, t("col.terminal")), terminal,
    el("label", { for: "cq-book-type" }, t("cheques.book_type")), kind,
    el("label", { for: "cq-first" }, t("cheques.first_serial")),
    el("input", { id: "cq-first", name: "first_serial", inputmode: "numeric", autocomplete: "off" }),
    el("label", { for: "cq-last" }, t("cheques.last_serial")),
    el("input", { id: "cq-last", name: "last_serial", inputmode: "numeric", autocomplete: "off" }),
    button("cheques.load", t("cheques.load"), () => ({
      terminal_id: terminal.value, book_type: kind.value,
      first_serial: document.getElementById("cq-first").value,
      last_serial: document.getElementById("cq-last").value,
    })));
  return el("section", { "data-part": "stock" }, el("h2", {}, t("cheques.stock")), form,
    table([t("col.terminal"), t("cheques.book_type"), t("cheques.first_serial"),
      t("cheques.last_serial"), t("cheques.books_free"), t("cheques.loaded_by"), ""], rows,
      t("cheques.no_stock")));
}

function upload(purchaserId, file, ui) {
  fetch(`/cheques/enrol/${encodeURIComponent(purchaserId)}`, {
    method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
  }).then((response) => response.ok ? null : response.json().then((refusal) => ui.showError(refusal)));
}

function renderPurchasers(desk, ui) {
  const { el, t, table, button } = ui;
  const rows = desk.purchasers.map((p) => {
    const picker = el("input", { type: "file", accept: "image/jpeg,image/png",
      "data-role": "face-file", "aria-label": t("cheques.enrol_for", p) });
    // Uploaded as soon as chosen: a re-render (every state push) would lose the choice.
    picker.addEventListener("change", () => { if (picker.files[0]) upload(p.purchaser_id, picker.files[0], ui); });
    return el("tr", { "data-purchaser": p.purchaser_id, "data-enrolled": p.enrolled ? "yes" : "no",
      "data-locked": p.locked ? "yes" : "no" },
      el("td", {}, p.company_name), el("td", {}, p.name), el("td", {}, p.id_number_masked),
      el("td", { "data-role": "face" }, p.enrolled ? t("cheques.enrolled", { ...p, enrolled_by: actorName(p.enrolled_by) }) : t("cheques.not_enrolled")),
      el("td", {}, p.locked ? t("cheques.locked") : t("cheques.failed_faces", p)),
      el("td", {}, el("label", {}, p.enrolled ? t("cheques.replace_face") : t("cheques.enrol_face"), picker),
        p.locked ? button("cheques.unlock", t("cheques.unlock"), { purchaser_id: p.purchaser_id }) : null,
        button("cheques.issue_code", t("cheques.issue_code"), { account_id: p.account_id })));
  });
  const issued = desk.issued
    ? el("p", { "data-role": "issued-code", role: "status" }, t("cheques.code_issued", desk.issued))
    : null;
  return el("section", { "data-part": "purchasers" }, el("h2", {}, t("cheques.purchasers")), issued,
    table([t("cheques.company"), t("cheques.name"), t("cheques.id_number"), t("cheques.face"),
      t("cheques.status"), ""], rows, t("cheques.no_purchasers")));
}

registerView("cheques", (frame) => renderCheques(frame.cheques, { el, t, table, button, send, showError }));

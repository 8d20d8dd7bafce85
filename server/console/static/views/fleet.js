// Operations: the fleet and a terminal's device history (docs/console.md).

import { page, registerView, t, el, button, field, formValues, table, send, rerender, named } from "../ui.js";

// ---- fleet -------------------------------------------------------------------------------

function renderFleet(fleet) {
  const branch = el("select", { id: "fleet-branch", name: "branch" },
    el("option", { value: "" }, t("fleet.all")),
    fleet.branches.map((b) => el("option", { value: b, selected: b === fleet.filter.branch }, b)));
  const status = el("select", { id: "fleet-status", name: "status" },
    fleet.statuses.map((s) => el("option", { value: s, selected: s === fleet.filter.status },
      s ? named("fleet.status", s) : t("fleet.all"))));
  const filters = el("form", { "data-form": "fleet-filter" },
    el("div", { class: "field" }, el("label", { for: "fleet-branch" }, t("fleet.branch")), branch),
    el("div", { class: "field" }, el("label", { for: "fleet-status" }, t("fleet.status")), status),
    button("fleet.filter", t("action.filter"), () => ({ branch: branch.value, status: status.value })));
  // Device names and statuses in words (server/console/labels.py); the ids in data-*.
  const devices = (terminal) => terminal.devices.map((d) => el("span", {
    "data-device": d.name, "data-status": d.status, class: d.status === "online" ? "" : "status-bad" },
    `${d.label}: ${d.status_name} `));
  const rows = fleet.terminals.map((terminal) => el("tr", {
    "data-terminal": terminal.terminal_id, "data-online": String(terminal.online),
    "data-attention": String(terminal.attention) },
    el("td", {}, button("fleet.select", terminal.terminal_id, { terminal_id: terminal.terminal_id })),
    el("td", {}, terminal.branch),
    el("td", { class: terminal.online ? "" : "status-bad" }, terminal.online ? t("fleet.online") : t("fleet.offline")),
    el("td", { "data-service": terminal.service_state }, terminal.service_name), el("td", {}, devices(terminal)),
    el("td", {}, terminal.last_seen_at)));
  const heads = ["col.terminal", "fleet.branch", "fleet.status", "fleet.service", "fleet.devices", "fleet.last_seen"];
  let detail = null;
  if (fleet.detail) {
    const d = fleet.detail;
    detail = el("section", { class: "panel", "data-role": "terminal-detail", "data-terminal": d.terminal_id },
      el("h2", {}, t("fleet.detail", { terminal: d.terminal_id })),
      el("p", {}, devices(d)), el("h2", {}, t("fleet.history")),
      table([t("col.at"), t("fleet.device"), t("fleet.status"), t("col.detail")],
        d.history.map((h) => el("tr", { "data-change": "", "data-device": h.device, "data-status": h.status },
          el("td", {}, h.at), el("td", {}, h.device_name), el("td", {}, h.status_name), el("td", {}, h.detail))),
        t("fleet.history.none")),
      button("fleet.close", t("action.close")));
  }
  return el("section", { "data-screen": "fleet" }, el("h1", {}, t("view.fleet")), filters,
    table(heads.map((k) => t(k)), rows, t("fleet.none")), detail);
}

registerView("fleet", (frame) => renderFleet(frame.fleet));

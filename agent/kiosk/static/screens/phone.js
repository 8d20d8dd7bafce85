// A job filled in on the paired phone (flows/phone_job.py; docs/kiosk.md "Phone jobs").

import { registerScreens, t, el, button, title } from "../ui.js";

function jobLines(d) {
  const rows = [[t("phone_job.service"), t(`phone_job.kind.${d.service}`)]];
  if (d.amount) rows.push([t("phone_job.amount"), `${d.amount} ${d.currency}`]);
  if (d.rate) rows.push([t("phone_job.rate"), `${d.rate} (v${d.rate_version}) → ${d.equivalent}`]);
  if (d.account_id_used || d.account_id) rows.push([t("form.account"), d.account_id_used || d.account_id]);
  if (d.period_from) rows.push([t("phone_job.period"), `${d.period_from} – ${d.period_to}`]);
  if (d.cheque_leaves) rows.push([t("phone_job.cheque_leaves"), String(d.cheque_leaves)]);
  if (d.business_type) rows.push([t("phone_job.business_type"), t(`video.business.${d.business_type}`)]);
  rows.push([t("phone_job.matching_code"), d.matching_code]);
  const list = el("dl", { class: "facts phone-job", "data-role": "phone-job" });
  for (const [k, v] of rows) list.append(el("dt", {}, k), el("dd", {}, v));
  return list;
}

registerScreens({
  phone_job: (d) => [
    title("phone_job.title"),
    el("p", { "data-role": "phone-job-ready" }, t(d.auth === "bank" ? "phone_job.ready_bank" : "phone_job.ready_card")),
    jobLines(d),
    el("div", { class: "actions" }, button("start", t("phone_job.start")), button("cancel", t("action.cancel"))),
  ],
  phone_job_confirm: (d) => [
    title("phone_job.confirm_title"),
    el("p", { role: "alert" }, t("phone_job.confirm_text")),
    d.rate_changed ? el("p", { role: "alert", class: "notice", "data-role": "rate-changed" }, t("phone_job.rate_changed")) : null,
    jobLines(d),
    el("div", { class: "actions" }, button("confirm", t("phone_job.confirm")), button("cancel", t("action.cancel"))),
  ],
});

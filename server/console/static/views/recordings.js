// Recordings (docs/console.md "Recordings"): search a transaction's recordings by its
// receipt reference (a QR scanner types it), play one. The <video> lives outside #main (it
// outlives the re-render every state frame causes) and seeks through /recordings/view/...;
// the server audits every list and fetch.

import { registerView, afterRender, t, el, button, field, formValues, table, named } from "../ui.js";

// Lobby managers and operators set or lift a legal hold, with a reason (the server audits
// it; retention keeps a held recording).
function holdControl(r, x) {
  if (!r.can_hold) return null;
  const action = x.legal_hold ? "release" : "hold";
  // Its own id per action: the hold's reason is not carried into the lift's field.
  const reason = field(`rec-${action}-reason-${x.sha256.slice(0, 12)}`, "reason",
    t(x.legal_hold ? "rec.release_reason" : "rec.hold_reason"), { size: 24 });
  return el("span", { "data-role": "hold-control" }, reason,
    button(`recordings.${action}`, t(`rec.action.${action}`),
      () => ({ sha256: x.sha256, reason: reason.querySelector("input").value })));
}

function holdCell(x) {
  if (!x.legal_hold) return el("td", { "data-role": "hold", "data-held": "false" }, "");
  return el("td", { "data-role": "hold", "data-held": "true" }, el("strong", {}, t("rec.hold")),
    x.hold_reason ? el("span", { "data-role": "hold-reason" }, ` ${x.hold_reason}`) : null);
}

function results(r) {
  if (!r.searched) return null;
  const rows = r.results.map((x) => el("tr", { "data-recording": x.sha256, "data-source": x.source, "data-kind": x.kind,
    "data-held": String(x.legal_hold) },
    el("td", {}, named("rec.kind", x.kind)), el("td", {}, named("rec.source", x.source)), el("td", {}, x.terminal_id),
    el("td", {}, t("rec.seconds", { seconds: x.duration })), el("td", {}, x.sha256.slice(0, 12)),
    holdCell(x),
    el("td", {}, button("recordings.play", t("rec.play"), { sha256: x.sha256 }, { "aria-pressed": String(r.playing === x.sha256) }),
      holdControl(r, x))));
  return table([t("rec.kind"), t("rec.source"), t("col.terminal"), t("rec.duration"), "SHA-256", "", ""],
    rows, t("rec.none", { reference: r.query }));
}

registerView("recordings", (frame) => {
  const r = frame.recordings;
  const form = el("form", { "data-form": "recordings", role: "search" },
    field("rec-reference", "reference", t("rec.reference"), { size: 40, value: r.query }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    form.querySelector('[data-action="recordings.search"]').click();
  });
  form.append(...[button("recordings.search", t("rec.search"), () => formValues(form)),
    r.playing ? button("recordings.stop", t("rec.stop")) : null,
    r.searched ? button("recordings.clear", t("rec.clear")) : null].filter(Boolean));
  return el("section", { "data-screen": "recordings" }, el("h1", {}, t("view.recordings")),
    el("p", { class: "muted" }, t("rec.audited")), r.can_hold ? el("p", { class: "muted" }, t("rec.hold_note")) : null,
    form, results(r));
});

function holder() {
  let node = document.getElementById("media");
  if (!node) {
    node = el("div", { id: "media", "data-role": "media" });
    document.body.append(node);
  }
  return node;
}

afterRender((frame) => {
  const url = frame.recordings?.play_url || "";
  const media = holder();
  let video = media.querySelector('video[data-role="recording-video"]');
  if (!url || !frame.views?.includes("recordings")) {
    video?.remove();
    return;
  }
  if (video && video.dataset.src === url) return;
  video?.remove();
  video = el("video", { "data-role": "recording-video", "data-src": url, src: url, controls: true, autoplay: true,
    preload: "metadata", "aria-label": t("rec.player"), class: "recording-video" });
  media.append(video);
});

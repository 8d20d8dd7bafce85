// Recordings (docs/console.md "Recordings"): search a transaction's recordings by its
// receipt reference (a QR scanner types it), play one. The <video> lives outside #main (it
// outlives the re-render every state frame causes) and seeks through /recordings/view/...;
// the server audits every list and fetch.

import { registerView, afterRender, t, el, button, field, formValues, table } from "../ui.js";

function results(r) {
  if (!r.searched) return null;
  const rows = r.results.map((x) => el("tr", { "data-recording": x.sha256, "data-source": x.source, "data-kind": x.kind },
    el("td", {}, t(`rec.kind.${x.kind}`)), el("td", {}, t(`rec.source.${x.source}`)), el("td", {}, x.terminal_id),
    el("td", {}, t("rec.seconds", { seconds: x.duration })), el("td", {}, x.sha256.slice(0, 12)),
    el("td", {}, x.legal_hold ? t("rec.hold") : ""),
    el("td", {}, button("recordings.play", t("rec.play"), { sha256: x.sha256 }, { "aria-pressed": String(r.playing === x.sha256) }))));
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
  form.append(button("recordings.search", t("rec.search"), () => formValues(form)),
    r.playing ? button("recordings.stop", t("rec.stop")) : null,
    r.searched ? button("recordings.clear", t("rec.clear")) : null);
  return el("section", { "data-screen": "recordings" }, el("h1", {}, t("view.recordings")),
    el("p", { class: "muted" }, t("rec.audited")), form, results(r));
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

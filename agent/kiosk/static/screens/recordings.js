// "My recordings" (flows/recordings.py): the customer signed in with card + PIN names a
// receipt's reference, the agent lists that transaction's recordings (their own only) and
// the chosen one plays in a <video> kept in #media (it outlives the screen's re-renders),
// seekable through the agent's /recordings/mine routes. The tube result screen offers it.

import { registerScreens, afterRender, t, el, button, field, formValues, title } from "../ui.js";

function list(d) {
  if (!d.searched) return null;
  if (d.refusal) return el("p", { "data-role": "recordings-refusal", "data-reason": d.refusal, role: "alert" }, t(`recordings.refused.${d.refusal}`));
  return el("ul", { class: "recordings", "data-role": "recordings", "aria-label": t("recordings.list") },
    d.recordings.map((r) => el("li", { "data-recording": r.sha256, "data-source": r.source },
      t("recordings.item", { number: r.number, kind: t(`recordings.kind.${r.kind}`), source: t(`recordings.source.${r.source}`), duration: r.duration }),
      " ",
      button("play", t("recordings.play"), { sha256: r.sha256 }, { "data-value": r.sha256, "aria-pressed": String(d.playing === r.sha256) }))));
}

registerScreens({
  my_recordings: (d) => {
    const form = el("form", { class: "form", "aria-labelledby": "screen-title" },
      field("reference", t("recordings.reference"), el("input", { type: "text", autocomplete: "off", value: d.reference, maxlength: 128 })));
    form.addEventListener("submit", (e) => e.preventDefault());
    return [
      title("recordings.title"),
      el("p", {}, t("recordings.intro")),
      form,
      el("div", { class: "actions" },
        button("lookup", t("recordings.lookup"), () => formValues(form)),
        d.playing ? button("stop", t("recordings.stop")) : null,
        button("back", t("action.back"))),
      list(d),
    ];
  },
});

function player(url) {
  const media = document.getElementById("media");
  let video = media.querySelector('video[data-role="recording-video"]');
  if (!url) {
    video?.remove();
    return;
  }
  if (video && video.dataset.src === url) return;
  video?.remove();
  video = el("video", { "data-role": "recording-video", "data-src": url, src: url, controls: true, autoplay: true,
    preload: "metadata", "aria-label": t("recordings.player"), class: "recording-video" });
  media.append(video);
}

afterRender((frame) => {
  player(frame.screen === "my_recordings" ? frame.data.play_url : "");
  // The tube result: the reference leads to the recordings of this transaction.
  if (frame.screen === "tube" && frame.data.finished) {
    const root = document.querySelector('[data-screen="tube"]');
    root?.querySelector(".actions")?.before(
      el("p", { "data-role": "recorded" }, t("recordings.on_receipt", { reference: frame.data.reference })));
    if (frame.data.watch_recordings) {
      root?.querySelector(".actions")?.prepend(button("recordings", t("recordings.watch")));
    }
  }
});

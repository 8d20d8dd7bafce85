// Why the electronic teller handed the customer over (flows/assistant.py handover_view):
// said on the video-teller screen while the call is set up and held. call.js draws that
// screen; this module only adds the reason under its title.

import { afterRender, t, el } from "../ui.js";

afterRender((frame) => {
  const why = frame.screen === "video" ? frame.data?.handover : null;
  if (!why || frame.data.state === "ended") return;
  const root = document.querySelector('#screen [data-screen="video"]');
  if (!root || root.querySelector('[data-role="handover-reason"]')) return;
  const note = el("p", { class: "notice", role: "status", "data-role": "handover-reason",
    "data-reason": why.reason, "data-topic": why.topic || "" }, t(why.message_key));
  const heading = root.querySelector("h1");
  if (heading) heading.after(note);
  else root.prepend(note);
});

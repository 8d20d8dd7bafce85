// The video-teller call on the kiosk page (docs/kiosk.md "video", docs/flows/calls.md "Media").
// The teller's console page makes the WebRTC offer; this page answers it. Signalling goes
// through the agent (frames `call_signal` / `call_media`), the media browser to browser.
// The videos and the call's own controls (mute, camera) live in #media, outside the
// re-rendered screen; hang-up and the signature request are agent actions on the screen.
//
// For tests and the recorder: `window.branchlineCall` is {callId, pc, local, remote, state};
// window events `branchline:call-streams` {callId, side, local, remote} (when the remote
// media arrives) and `branchline:call-ended` {callId, side, reason}.

import { state, registerScreens, onFrame, afterRender, t, el, button, field, select, formValues, title, sendFrame } from "./ui.js";
import { PeerCall } from "/webrtc/peer.js";

const media = new PeerCall({
  side: "kiosk",
  t,
  texts: { connection: "call.connection.", remoteMuted: "call.teller_muted", remoteCameraOff: "call.teller_camera_off",
    mute: "call.mute", unmute: "call.unmute", cameraOn: "call.camera_on", cameraOff: "call.camera_off" },
  holder: () => document.getElementById("media"),
  sendFrame,
});
const call = media.call;
// Offers (and their candidates) that arrived before the screen showed their call connected.
const early = { offers: new Map(), candidates: new Map() };

// ---- the screen ------------------------------------------------------------------------

function chooseForm(d) {
  const form = el("form", { class: "form" },
    field("business_type", t("video.business_type"), select(d.business_types.map((b) => [b, t(`video.business.${b}`)]))),
    field("mode", t("video.mode"), select(d.modes.map((m) => [m, t(`video.mode.${m}`)]))));
  form.addEventListener("submit", (e) => e.preventDefault());
  return [
    title("video.title"),
    d.state === "ended" ? el("p", { role: "status", "data-role": "call-ended", "data-reason": d.end_reason || "" },
      t(d.end_reason === "restarted" ? "video.ended_restart" : "video.ended")) : null,
    form,
    el("div", { class: "actions" },
      button("request", t(d.state === "ended" ? "video.call_again" : "video.request"), () => formValues(form)),
      button("back", t("action.back"))),
  ];
}

function signatureRequest(s) {
  if (!s) return null;
  return el("section", { class: "signature-request", "data-role": "signature-request", "data-command": s.command_id,
    "aria-labelledby": "sign-title" },
    el("h2", { id: "sign-title" }, s.title || t("video.sign_title")),
    s.lines.length ? el("ul", {}, s.lines.map((line) => el("li", {}, line))) : null,
    s.signing ? el("p", { role: "status", "data-role": "signing" }, t("video.signing"))
      : el("div", { class: "actions" },
        button("sign", t("video.sign"), { command_id: s.command_id }),
        button("decline_sign", t("video.decline_sign"), { command_id: s.command_id })));
}

registerScreens({
  video: (d) => {
    if (d.state === "choose" || d.state === "ended") return chooseForm(d);
    return [
      title("video.title"),
      el("p", { role: "status", "aria-live": "polite", "data-role": "queue" },
        d.state === "queued" ? t("video.position", { position: d.position, estimated_wait: d.estimated_wait })
                             : t(`video.state.${d.state}`)),
      d.state === "connected" ? signatureRequest(d.signature) : el("p", { class: "notice" }, t("video.media_later")),
      el("div", { class: "actions" }, d.state === "connected" ? button("hangup", t("video.hangup"))
                                                              : button("leave", t("video.leave"))),
    ];
  },
});

// ---- the peer connection (common/webrtc/peer.js): this page answers ------------------------

async function onSignal(frame) {
  if (media.finished.has(frame.call_id)) return;
  if (frame.kind === "offer") {
    // Only the page showing this call takes it (never a page left on another screen).
    const shown = state.frame?.screen === "video" ? state.frame.data : null;
    if (!shown || shown.state !== "connected" || shown.call_id !== frame.call_id) {
      // The offer can overtake the screen that shows the call connected: keep it until then.
      early.offers.clear();
      for (const id of early.candidates.keys()) if (id !== frame.call_id) early.candidates.delete(id);
      early.offers.set(frame.call_id, frame);
      return;
    }
    if (call.callId && call.callId !== frame.call_id) media.end("replaced");
    if (!call.pc) {
      call.pending = early.candidates.get(frame.call_id) ?? [];
      early.offers.delete(frame.call_id);
      early.candidates.delete(frame.call_id);
      const pc = await media.open(frame.call_id, shown.media?.ice_servers ?? [], state.ws);
      if (pc) call.pc.addEventListener("datachannel", (event) => media.useChannel(event.channel));
    }
    if (!call.pc || call.callId !== frame.call_id) return;
    await media.remoteDescription("offer", frame.payload);
    const answer = await call.pc.createAnswer();
    await call.pc.setLocalDescription(answer);
    media.signal(frame.call_id, "answer", answer.sdp);
  } else if (frame.kind === "candidate" && frame.call_id === call.callId) {
    await media.candidate(frame.payload);
  } else if (frame.kind === "candidate" && early.offers.has(frame.call_id)) {
    const list = early.candidates.get(frame.call_id) ?? [];
    if (list.length < 64) list.push(JSON.parse(frame.payload));
    early.candidates.set(frame.call_id, list);
  }
}

onFrame("call_signal", (frame) => {
  if (!media.finished.has(frame.call_id)) media.queue(frame.call_id, () => onSignal(frame));
});

onFrame("call_media", (frame) => {
  if (frame.event !== "ended") return;
  if (frame.call_id === call.callId) media.end("ended");
  media.forget(frame.call_id);
});

afterRender((frame) => {
  const d = frame.data ?? {};
  const inCall = frame.screen === "video" && d.state === "connected";
  if (!inCall && call.callId) media.end(d.state === "ended" ? "ended" : "left");
  else media.render();
  // The teller is answering: open the camera now, not when the offer comes (set-up time).
  if (frame.screen === "video" && (d.state === "connecting" || inCall) && d.call_id) media.prepare(d.call_id);
  else if (!call.callId) media.cool();
  // An offer that came before this screen: take it now.
  const offer = inCall && !call.callId ? early.offers.get(d.call_id) : undefined;
  if (offer) media.queue(offer.call_id, () => onSignal(offer));
});

// The video-teller call on the kiosk page (docs/kiosk.md "video", docs/flows/calls.md "Media").
// The teller's console page makes the WebRTC offer; this page answers it. Signalling goes
// through the agent (frames `call_signal` / `call_media`), the media browser to browser.
// The videos and the call's own controls (mute, camera) live in #media, outside the
// re-rendered screen; hang-up and the signature request are agent actions on the screen.
//
// For tests and the recorder: `window.branchlineCall` is {callId, pc, local, remote, state};
// window events `branchline:call-streams` {callId, side, local, remote} (when the remote
// media arrives) and `branchline:call-ended` {callId, side, reason}.

import { state, registerScreens, onFrame, afterRender, t, el, button, field, select, formValues, title, send, sendFrame } from "./ui.js";

const SIDE = "kiosk";
const call = { callId: "", pc: null, local: null, remote: null, state: "", channel: null, muted: false,
  cameraOff: false, remoteAudio: true, remoteVideo: true, pending: [], announced: false };
const finished = new Set();
// Offers (and their candidates) that arrived before the screen showed their call connected.
const early = { offers: new Map(), candidates: new Map() };
// Each call's signals are handled in order on their own chain: a peer connection closed while
// one of its operations was pending never settles that operation (Chromium, per the WebRTC
// spec), which must not hold up the next call's offer (it did after an agent restart).
const chains = new Map();  // call id -> promise of its last signal handled

function queue(callId, work) {
  const next = (chains.get(callId) ?? Promise.resolve()).then(work)
    .catch((error) => console.error("call signal", error));
  chains.set(callId, next);
}
window.branchlineCall = call;

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

// ---- the media panel (outside the screen) ----------------------------------------------

function holder() {
  return document.getElementById("media");
}

function control(name, toggle) {
  const node = el("button", { type: "button", "data-call-control": name, "aria-pressed": "false" });
  node.addEventListener("click", toggle);
  return node;
}

function showControl(node, pressed, label) {
  node.setAttribute("aria-pressed", String(pressed));
  if (node.textContent !== label) node.textContent = label;
}

function renderPanel() {
  const root = holder();
  if (!call.callId) {
    root.querySelector('[data-role="call-media"]')?.remove();
    return;
  }
  let panel = root.querySelector('[data-role="call-media"]');
  if (!panel || panel.dataset.call !== call.callId) {
    panel?.remove();
    panel = el("section", { "data-role": "call-media", class: "call-media", "data-call": call.callId },
      el("video", { "data-role": "remote-video", autoplay: true, playsinline: true }),
      el("video", { "data-role": "local-video", autoplay: true, playsinline: true, muted: true }),
      el("p", { "data-role": "call-connection", role: "status", "aria-live": "polite" }),
      el("p", { "data-role": "remote-note", role: "status" }),
      el("div", { class: "actions", "data-role": "call-controls" }));
    root.append(panel);
  }
  const remote = panel.querySelector('[data-role="remote-video"]');
  const local = panel.querySelector('[data-role="local-video"]');
  if (call.remote && remote.srcObject !== call.remote) remote.srcObject = call.remote;
  if (call.local && local.srcObject !== call.local) { local.srcObject = call.local; local.muted = true; }
  Object.assign(panel.dataset, { state: call.state || "new", muted: String(call.muted), camera: call.cameraOff ? "off" : "on",
    remoteAudio: call.remoteAudio ? "on" : "off", remoteVideo: call.remoteVideo ? "on" : "off" });
  panel.querySelector('[data-role="call-connection"]').textContent = t(`call.connection.${call.state || "new"}`);
  const notes = [!call.remoteAudio ? t("call.teller_muted") : "", !call.remoteVideo ? t("call.teller_camera_off") : ""];
  panel.querySelector('[data-role="remote-note"]').textContent = notes.filter(Boolean).join(" · ");
  // Updated in place (never rebuilt: a button replaced on each render slips from under a press).
  const controls = panel.querySelector('[data-role="call-controls"]');
  if (!controls.children.length) {
    controls.append(control("mute", () => setLocal({ muted: !call.muted })),
      control("camera", () => setLocal({ cameraOff: !call.cameraOff })));
  }
  showControl(controls.children[0], call.muted, t(call.muted ? "call.unmute" : "call.mute"));
  showControl(controls.children[1], call.cameraOff, t(call.cameraOff ? "call.camera_on" : "call.camera_off"));
}

function setLocal(change) {
  Object.assign(call, change);
  for (const track of call.local?.getAudioTracks() ?? []) track.enabled = !call.muted;
  for (const track of call.local?.getVideoTracks() ?? []) track.enabled = !call.cameraOff;
  tellRemote();
  renderPanel();
}

function tellRemote() {
  if (call.channel?.readyState === "open") {
    call.channel.send(JSON.stringify({ audio: !call.muted, video: !call.cameraOff }));
  }
}

function useChannel(channel) {
  call.channel = channel;
  channel.addEventListener("open", tellRemote);
  channel.addEventListener("message", (event) => {
    const remote = JSON.parse(event.data);
    call.remoteAudio = remote.audio !== false;
    call.remoteVideo = remote.video !== false;
    renderPanel();
  });
}

// ---- the peer connection ---------------------------------------------------------------

async function start(callId) {
  Object.assign(call, { callId, state: "new", muted: false, cameraOff: false, remoteAudio: true, remoteVideo: true,
    pending: early.candidates.get(callId) ?? [], announced: false, channel: null });
  early.offers.delete(callId);
  early.candidates.delete(callId);
  try {
    call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch (error) {
    console.warn("no camera or microphone", error);
    call.local = new MediaStream();
  }
  if (call.callId !== callId) return;  // ended while the camera was opening
  const iceServers = state.frame?.data?.media?.ice_servers ?? [];
  const pc = new RTCPeerConnection({ iceServers });
  call.pc = pc;
  call.remote = new MediaStream();
  for (const track of call.local.getTracks()) pc.addTrack(track, call.local);
  pc.addEventListener("track", (event) => {
    call.remote.addTrack(event.track);
    renderPanel();
    if (!call.announced) {
      call.announced = true;
      window.dispatchEvent(new CustomEvent("branchline:call-streams",
        { detail: { callId, side: SIDE, local: call.local, remote: call.remote } }));
    }
  });
  pc.addEventListener("icecandidate", (event) => {
    if (event.candidate) {
      sendFrame({ type: "call_signal", call_id: callId, kind: "candidate", payload: JSON.stringify(event.candidate.toJSON()) });
    }
  });
  pc.addEventListener("connectionstatechange", () => {
    call.state = pc.connectionState;
    renderPanel();
    if (pc.connectionState === "failed") {
      sendFrame({ type: "call_media", event: "ended", call_id: callId });
      end("failed");
    }
  });
  pc.addEventListener("datachannel", (event) => useChannel(event.channel));
  // The agent gone (restart, crash): the media stops with it; the agent hangs up once back.
  state.ws?.addEventListener("close", () => { if (call.callId === callId) end("agent_link_lost"); });
  sendFrame({ type: "call_media", event: "joined", call_id: callId });
  renderPanel();
}

function end(reason) {
  if (!call.callId) return;
  const callId = call.callId;
  finished.add(callId);
  chains.delete(callId);
  for (const track of call.local?.getTracks() ?? []) track.stop();
  call.pc?.close();
  Object.assign(call, { callId: "", pc: null, state: "closed", channel: null });
  renderPanel();
  window.dispatchEvent(new CustomEvent("branchline:call-ended", { detail: { callId, side: SIDE, reason } }));
}

async function onSignal(frame) {
  if (finished.has(frame.call_id)) return;
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
    if (call.callId && call.callId !== frame.call_id) end("replaced");
    if (!call.pc) await start(frame.call_id);
    if (!call.pc || call.callId !== frame.call_id) return;
    await call.pc.setRemoteDescription({ type: "offer", sdp: frame.payload });
    const answer = await call.pc.createAnswer();
    await call.pc.setLocalDescription(answer);
    sendFrame({ type: "call_signal", call_id: frame.call_id, kind: "answer", payload: answer.sdp });
    for (const candidate of call.pending.splice(0)) await call.pc.addIceCandidate(candidate);
  } else if (frame.kind === "candidate" && frame.call_id === call.callId) {
    const candidate = JSON.parse(frame.payload);
    if (call.pc?.remoteDescription) await call.pc.addIceCandidate(candidate);
    else call.pending.push(candidate);
  } else if (frame.kind === "candidate" && early.offers.has(frame.call_id)) {
    const list = early.candidates.get(frame.call_id) ?? [];
    if (list.length < 64) list.push(JSON.parse(frame.payload));
    early.candidates.set(frame.call_id, list);
  }
}

onFrame("call_signal", (frame) => {
  if (!finished.has(frame.call_id)) queue(frame.call_id, () => onSignal(frame));
});

onFrame("call_media", (frame) => {
  if (frame.event === "ended" && frame.call_id === call.callId) end("ended");
  if (frame.event === "ended") { finished.add(frame.call_id); chains.delete(frame.call_id); }
});

afterRender((frame) => {
  const d = frame.data ?? {};
  const inCall = frame.screen === "video" && d.state === "connected";
  if (!inCall && call.callId) end(d.state === "ended" ? "ended" : "left");
  else renderPanel();
  // An offer that came before this screen: take it now.
  const offer = inCall && !call.callId ? early.offers.get(d.call_id) : undefined;
  if (offer) queue(offer.call_id, () => onSignal(offer));
});

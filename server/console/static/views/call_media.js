// The teller's side of a video call's media (docs/console.md "Video calls", docs/flows/calls.md
// "Media"). When the teller's call is active this page opens the camera and microphone and
// makes the WebRTC offer; the console process relays it to the terminal's kiosk page, which
// answers. The videos and the mute/camera controls live in a panel outside #main (it is
// re-rendered on every frame); hang-up is the view's "End call" action.
//
// For tests and the recorder: `window.branchlineCall` is {callId, pc, local, remote, state};
// window events `branchline:call-streams` {callId, side, local, remote} (when the remote
// media arrives) and `branchline:call-ended` {callId, side, reason}.

import { page, onFrame, afterRender, t, el, sendFrame } from "../ui.js";

const SIDE = "console";
const call = { callId: "", pc: null, local: null, remote: null, state: "", channel: null, muted: false,
  cameraOff: false, remoteAudio: true, remoteVideo: true, pending: [], announced: false, lastEnded: "" };
const finished = new Set();
// Each call's start and signals run in order on their own chain: a peer connection closed while
// one of its operations was pending never settles that operation (Chromium, per the WebRTC
// spec), which must not hold up the next call.
const chains = new Map();  // call id -> promise of its last step

function queue(callId, work, what) {
  const next = (chains.get(callId) ?? Promise.resolve()).then(work)
    .catch((error) => console.error(what, error));
  chains.set(callId, next);
}
window.branchlineCall = call;

function holder() {
  let node = document.getElementById("call-media");
  if (!node) {
    node = el("aside", { id: "call-media", "aria-label": "Video call" });
    document.body.append(node);
  }
  return node;
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
  let panel = root.querySelector('[data-role="call-media"]');
  if (!call.callId) {
    if (panel && panel.dataset.state !== "ended") {
      panel.replaceChildren(el("p", { role: "status" }, t("call.media.ended")));
      panel.dataset.state = "ended";
    }
    return;
  }
  if (!panel || panel.dataset.call !== call.callId) {
    panel?.remove();
    panel = el("section", { "data-role": "call-media", class: "call-media panel", "data-call": call.callId },
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
  panel.querySelector('[data-role="call-connection"]').textContent = t(`call.media.${call.state || "new"}`);
  const notes = [!call.remoteAudio ? t("call.media.customer_muted") : "",
    !call.remoteVideo ? t("call.media.customer_camera_off") : ""];
  panel.querySelector('[data-role="remote-note"]').textContent = notes.filter(Boolean).join(" · ");
  // Updated in place (never rebuilt: a button replaced on each render slips from under a press).
  const controls = panel.querySelector('[data-role="call-controls"]');
  if (!controls.children.length) {
    controls.append(control("mute", () => setLocal({ muted: !call.muted })),
      control("camera", () => setLocal({ cameraOff: !call.cameraOff })));
  }
  showControl(controls.children[0], call.muted, t(call.muted ? "call.media.unmute" : "call.media.mute"));
  showControl(controls.children[1], call.cameraOff, t(call.cameraOff ? "call.media.camera_on" : "call.media.camera_off"));
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

async function start(callId, iceServers) {
  Object.assign(call, { callId, state: "new", muted: false, cameraOff: false, remoteAudio: true, remoteVideo: true,
    pending: [], announced: false });
  try {
    call.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch (error) {
    console.warn("no camera or microphone", error);
    call.local = new MediaStream();
  }
  if (call.callId !== callId) return;
  const pc = new RTCPeerConnection({ iceServers });
  call.pc = pc;
  call.remote = new MediaStream();
  for (const track of call.local.getTracks()) pc.addTrack(track, call.local);
  if (!call.local.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
  if (!call.local.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
  call.channel = pc.createDataChannel("control");
  call.channel.addEventListener("open", tellRemote);
  call.channel.addEventListener("message", (event) => {
    const remote = JSON.parse(event.data);
    call.remoteAudio = remote.audio !== false;
    call.remoteVideo = remote.video !== false;
    renderPanel();
  });
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
  // The console process gone (restart): the media stops with it; once back it ends the call.
  page.ws?.addEventListener("close", () => { if (call.callId === callId) end("console_link_lost"); });
  sendFrame({ type: "call_media", event: "joined", call_id: callId });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  sendFrame({ type: "call_signal", call_id: callId, kind: "offer", payload: offer.sdp });
  renderPanel();
}

function end(reason) {
  if (!call.callId) return;
  const callId = call.callId;
  finished.add(callId);
  chains.delete(callId);
  for (const track of call.local?.getTracks() ?? []) track.stop();
  call.pc?.close();
  Object.assign(call, { callId: "", pc: null, state: "closed", channel: null, lastEnded: callId });
  renderPanel();
  window.dispatchEvent(new CustomEvent("branchline:call-ended", { detail: { callId, side: SIDE, reason } }));
}

async function onSignal(frame) {
  if (frame.call_id !== call.callId || !call.pc) return;
  if (frame.kind === "answer") {
    await call.pc.setRemoteDescription({ type: "answer", sdp: frame.payload });
    for (const candidate of call.pending.splice(0)) await call.pc.addIceCandidate(candidate);
  } else if (frame.kind === "candidate") {
    const candidate = JSON.parse(frame.payload);
    if (call.pc.remoteDescription) await call.pc.addIceCandidate(candidate);
    else call.pending.push(candidate);
  }
}

onFrame("call_signal", (frame) => {
  if (!finished.has(frame.call_id)) queue(frame.call_id, () => onSignal(frame), "call signal");
});

onFrame("call_media", (frame) => {
  if (frame.event !== "ended") return;
  finished.add(frame.call_id);
  if (frame.call_id === call.callId) end("ended");
  chains.delete(frame.call_id);
});

afterRender((frame) => {
  const calls = frame.calls;
  const current = calls?.current;
  const active = current && current.state === "active" ? current.call_id : "";
  if (call.callId && call.callId !== active) end("ended");
  if (active && !call.callId && !finished.has(active)) {
    call.callId = active;
    queue(active, () => start(active, calls.media?.ice_servers ?? []), "call start");
    return;
  }
  renderPanel();
});

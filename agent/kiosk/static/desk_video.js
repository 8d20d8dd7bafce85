// The back office's camera on the customer's tube screen (docs/kiosk.md "Back office video",
// docs/flows/tube.md). While the back office handles this transaction's carrier its console
// page offers one-way video; this page answers (receive only) and shows it in #media beside
// what was counted. Signalling goes through the agent as `desk_signal` frames.
//
// For tests and the recorder: `window.branchlineDesk` is {txnId, pc, remote, state}; window
// events `branchline:desk-streams` {txnId, remote} and `branchline:desk-ended` {txnId, reason}.

import { state, onFrame, afterRender, t, el, sendFrame } from "./ui.js";

const desk = { txnId: "", pc: null, remote: null, state: "", pending: [] };
let chain = Promise.resolve();
window.branchlineDesk = desk;

function renderPanel() {
  const root = document.getElementById("media");
  let panel = root.querySelector('[data-role="desk-video"]');
  if (!desk.txnId) {
    panel?.remove();
    return;
  }
  if (!panel || panel.dataset.txn !== desk.txnId) {
    panel?.remove();
    panel = el("section", { "data-role": "desk-video", class: "desk-video", "data-txn": desk.txnId,
      "aria-labelledby": "desk-title" },
      el("h2", { id: "desk-title" }),
      el("video", { "data-role": "desk-remote-video", autoplay: true, playsinline: true, muted: true }),
      el("p", { "data-role": "desk-counted", role: "status", "aria-live": "polite" }));
    root.append(panel);
  }
  const video = panel.querySelector("video");
  if (desk.remote && video.srcObject !== desk.remote) { video.srcObject = desk.remote; video.muted = true; }
  panel.dataset.state = desk.state || "new";
  panel.querySelector("h2").textContent = t("desk.title");
  const counted = state.frame?.screen === "tube" ? state.frame.data.counted : "";
  const shown = panel.querySelector('[data-role="desk-counted"]');
  shown.dataset.counted = counted ? "true" : "false";
  shown.textContent = counted ? `${t("tube.counted")}: ${counted}` : t("desk.counting");
}

function end(reason) {
  if (!desk.txnId) return;
  const txnId = desk.txnId;
  desk.pc?.close();
  Object.assign(desk, { txnId: "", pc: null, state: "closed", pending: [] });
  renderPanel();
  window.dispatchEvent(new CustomEvent("branchline:desk-ended", { detail: { txnId, reason } }));
}

async function answer(frame) {
  end("replaced");
  const txnId = frame.txn_id;
  const pc = new RTCPeerConnection({ iceServers: frame.ice_servers ?? [] });
  Object.assign(desk, { txnId, pc, remote: new MediaStream(), state: "new", pending: [] });
  pc.addEventListener("track", (event) => {
    desk.remote.addTrack(event.track);
    renderPanel();
    window.dispatchEvent(new CustomEvent("branchline:desk-streams", { detail: { txnId, remote: desk.remote } }));
  });
  pc.addEventListener("icecandidate", (event) => {
    if (event.candidate) {
      sendFrame({ type: "desk_signal", txn_id: txnId, kind: "candidate", payload: JSON.stringify(event.candidate.toJSON()) });
    }
  });
  pc.addEventListener("connectionstatechange", () => {
    desk.state = pc.connectionState;
    renderPanel();
    if (pc.connectionState === "failed") end("failed");
  });
  await pc.setRemoteDescription({ type: "offer", sdp: frame.payload });
  const sdp = await pc.createAnswer();
  await pc.setLocalDescription(sdp);
  sendFrame({ type: "desk_signal", txn_id: txnId, kind: "answer", payload: sdp.sdp });
  for (const candidate of desk.pending.splice(0)) await pc.addIceCandidate(candidate);
  renderPanel();
}

async function onSignal(frame) {
  if (state.frame?.screen !== "tube") return;
  if (frame.kind === "offer") await answer(frame);
  else if (frame.txn_id !== desk.txnId) return;
  else if (frame.kind === "bye") end("bye");
  else if (frame.kind === "candidate") {
    const candidate = JSON.parse(frame.payload);
    if (desk.pc?.remoteDescription) await desk.pc.addIceCandidate(candidate);
    else desk.pending.push(candidate);
  }
}

onFrame("desk_signal", (frame) => {
  chain = chain.then(() => onSignal(frame)).catch((error) => console.error("desk signal", error));
});

afterRender((frame) => {
  if (frame.screen !== "tube" && desk.txnId) end("left");
  else renderPanel();
});

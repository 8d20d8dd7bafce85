// The back office's camera on the customer's screen (docs/console.md "Back office",
// docs/flows/tube.md). When the clerk opens the count of a carrier, this page offers one-way
// video from the workstation's camera to the kiosk of that transaction, until the
// transaction leaves the desk (final) or the clerk counts another one. Signalling goes
// through the console process as `desk_signal` frames.
//
// For tests and the recorder: `window.branchlineDesk` is {txnId, pc, local, state}; window
// events `branchline:desk-streams` {txnId, local} and `branchline:desk-ended` {txnId, reason}.

import { page, onFrame, afterRender, t, el, sendFrame, named } from "../ui.js";

const desk = { txnId: "", pc: null, local: null, state: "", pending: [] };
let chain = Promise.resolve();
window.branchlineDesk = desk;

function renderPanel() {
  let root = document.getElementById("desk-media");
  if (!root) {
    root = el("aside", { id: "desk-media" });
    document.body.append(root);
  }
  if (!desk.txnId) {
    root.replaceChildren();
    return;
  }
  let panel = root.querySelector('[data-role="desk-video"]');
  if (!panel || panel.dataset.txn !== desk.txnId) {
    panel = el("section", { "data-role": "desk-video", class: "panel", "data-txn": desk.txnId },
      el("p", { "data-role": "desk-note" }),
      el("video", { "data-role": "desk-local-video", autoplay: true, playsinline: true, muted: true }));
    root.replaceChildren(panel);
  }
  const video = panel.querySelector("video");
  if (desk.local && video.srcObject !== desk.local) { video.srcObject = desk.local; video.muted = true; }
  panel.dataset.state = desk.state || "new";
  panel.querySelector('[data-role="desk-note"]').textContent =
    t("desk.on_customer_screen", { txn: desk.txnId, state: named("call.media", desk.state || "new") });
}

function end(reason, bye = true) {
  if (!desk.txnId) return;
  const txnId = desk.txnId;
  if (bye) sendFrame({ type: "desk_signal", txn_id: txnId, kind: "bye", payload: "" });
  for (const track of desk.local?.getTracks() ?? []) track.stop();
  desk.pc?.close();
  Object.assign(desk, { txnId: "", pc: null, local: null, state: "closed", pending: [] });
  renderPanel();
  window.dispatchEvent(new CustomEvent("branchline:desk-ended", { detail: { txnId, reason } }));
}

async function start(txnId, iceServers) {
  let local;
  try {
    local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    console.warn("no camera for the customer's screen", error);
    desk.txnId = "";
    return;
  }
  if (desk.txnId !== txnId) { for (const track of local.getTracks()) track.stop(); return; }
  const pc = new RTCPeerConnection({ iceServers });
  Object.assign(desk, { pc, local, state: "new", pending: [] });
  for (const track of local.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [local] });
  pc.addEventListener("icecandidate", (event) => {
    if (event.candidate) {
      sendFrame({ type: "desk_signal", txn_id: txnId, kind: "candidate", payload: JSON.stringify(event.candidate.toJSON()) });
    }
  });
  pc.addEventListener("connectionstatechange", () => { desk.state = pc.connectionState; renderPanel(); });
  window.dispatchEvent(new CustomEvent("branchline:desk-streams", { detail: { txnId, local } }));
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  sendFrame({ type: "desk_signal", txn_id: txnId, kind: "offer", payload: offer.sdp });
  renderPanel();
}

async function onSignal(frame) {
  if (frame.txn_id !== desk.txnId || !desk.pc) return;
  if (frame.kind === "answer") {
    await desk.pc.setRemoteDescription({ type: "answer", sdp: frame.payload });
    for (const candidate of desk.pending.splice(0)) await desk.pc.addIceCandidate(candidate);
  } else if (frame.kind === "candidate") {
    const candidate = JSON.parse(frame.payload);
    if (desk.pc.remoteDescription) await desk.pc.addIceCandidate(candidate);
    else desk.pending.push(candidate);
  } else if (frame.kind === "bye") end("bye", false);
}

onFrame("desk_signal", (frame) => {
  chain = chain.then(() => onSignal(frame)).catch((error) => console.error("desk signal", error));
});

// The page's link to the console process gone: the video stops (the process says bye).
function watchLink() {
  page.ws?.addEventListener("close", () => end("console_link_lost", false), { once: true });
}

afterRender((frame) => {
  const carriers = frame.backoffice?.carriers;
  if (!carriers) return;
  if (desk.txnId && !carriers.some((c) => c.txn_id === desk.txnId)) end("finished");
  const wanted = page.counting && carriers.some((c) => c.txn_id === page.counting) ? page.counting : "";
  if (wanted && wanted !== desk.txnId) {
    end("another");
    desk.txnId = wanted;
    watchLink();
    chain = chain.then(() => start(wanted, frame.desk_media?.ice_servers ?? []))
      .catch((error) => console.error("desk video", error));
  }
  renderPanel();
});

// The teller's side of a video call's media (docs/console.md "Video calls", docs/flows/calls.md
// "Media"). When the teller's call is active this page opens the camera and microphone and
// makes the WebRTC offer; the console process relays it to the terminal's kiosk page, which
// answers. The peer connection, the videos and the mute/camera controls are the shared
// common/webrtc/peer.js, its panel outside #main (re-rendered on every frame); hang-up is the
// view's "End call" action.
//
// For tests and the recorder: `window.branchlineCall` is {callId, pc, local, remote, state};
// window events `branchline:call-streams` {callId, side, local, remote} (when the remote
// media arrives) and `branchline:call-ended` {callId, side, reason}.

import { page, onFrame, afterRender, t, el, sendFrame } from "../ui.js";
import { PeerCall } from "/webrtc/peer.js";

function holder() {
  let node = document.getElementById("call-media");
  if (!node) {
    node = el("aside", { id: "call-media", "aria-label": "Video call" });
    document.body.append(node);
  }
  return node;
}

const media = new PeerCall({
  side: "console",
  t,
  texts: { connection: "call.media.", remoteMuted: "call.media.customer_muted",
    remoteCameraOff: "call.media.customer_camera_off", mute: "call.media.mute", unmute: "call.media.unmute",
    cameraOn: "call.media.camera_on", cameraOff: "call.media.camera_off" },
  holder,
  sendFrame,
  ended: "call.media.ended",
  panelClass: "call-media panel",
});
const call = media.call;

// This page offers: a data channel for mute/camera, receive-only where it has no device.
async function start(callId, iceServers) {
  if (!(await media.open(callId, iceServers, page.ws))) return;
  const pc = call.pc;
  if (!call.local.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
  if (!call.local.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
  media.useChannel(pc.createDataChannel("control"));
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  media.signal(callId, "offer", offer.sdp);
}

async function onSignal(frame) {
  if (frame.call_id !== call.callId || !call.pc) return;
  if (frame.kind === "answer") await media.remoteDescription("answer", frame.payload);
  else if (frame.kind === "candidate") await media.candidate(frame.payload);
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
  const calls = frame.calls;
  const current = calls?.current;
  const active = current && current.state === "active" ? current.call_id : "";
  if (call.callId && call.callId !== active) media.end("ended");
  // A call ringing at this desk: open the camera now, not once answered (set-up time).
  if (current?.state === "ringing") media.prepare(current.call_id);
  else if (!active) media.cool();
  if (active && !call.callId && !media.finished.has(active)) {
    call.callId = active;
    media.queue(active, () => start(active, calls.media?.ice_servers ?? []), "call start");
    return;
  }
  media.render();
});

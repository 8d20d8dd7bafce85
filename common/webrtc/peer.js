// A video call's peer connection in a page, shared by the kiosk page (agent/kiosk/static/call.js,
// which answers) and the teller's console page (server/console/static/views/call_media.js, which
// offers); docs/flows/calls.md "Media". Here: the camera, the RTCPeerConnection and its ICE
// candidates, each call's signals in order, the mute/camera controls told over the data
// channel, the media panel, and the end. The pages keep what is theirs: when a call starts, who
// offers, and the screen around it.
//
// For tests and the recorder: `window.branchlineCall` is {callId, pc, local, remote, state, ...};
// window events `branchline:call-streams` {callId, side, local, remote} (when the remote media
// arrives) and `branchline:call-ended` {callId, side, reason}.

const CAMERA = { audio: true, video: { width: 640, height: 480 } };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

/** The camera and microphone (an empty stream where there are none: the call goes on). */
async function openCamera() {
  try {
    return await navigator.mediaDevices.getUserMedia(CAMERA);
  } catch (error) {
    console.warn("no camera or microphone", error);
    return new MediaStream();
  }
}

export class PeerCall {
  /**
   * side: "kiosk" | "console"; t: the page's text function; texts: catalogue keys
   * {connection (prefix + state), remoteMuted, remoteCameraOff, mute, unmute, cameraOn, cameraOff};
   * holder(): the element the panel lives in; sendFrame(frame): to the page's process;
   * ended: the text key shown once a call ended ("" removes the panel); panelClass: the
   * panel's CSS classes.
   */
  constructor({ side, t, texts, holder, sendFrame, ended = "", panelClass = "call-media" }) {
    Object.assign(this, { side, t, texts, holder, sendFrame, ended, panelClass });
    this.call = { callId: "", pc: null, local: null, remote: null, state: "", channel: null, muted: false,
      cameraOff: false, remoteAudio: true, remoteVideo: true, pending: [], announced: false, marks: {} };
    this.finished = new Set();
    // Each call's steps run in order on their own chain: a peer connection closed while one
    // of its operations was pending never settles that operation (Chromium, per the WebRTC
    // spec), which must not hold up the next call (it did after an agent restart).
    this.chains = new Map();
    this.warm = null;  // {callId, stream}: the camera opened ahead of the call's offer
    window.branchlineCall = this.call;
  }

  /** Run `work` after the call's earlier steps; an error is logged, the chain goes on. */
  queue(callId, work, what = "call signal") {
    const next = (this.chains.get(callId) ?? Promise.resolve()).then(work)
      .catch((error) => console.error(what, error));
    this.chains.set(callId, next);
  }

  /** The call is over for this page: nothing of it is handled any more. */
  forget(callId) {
    this.finished.add(callId);
    this.chains.delete(callId);
    if (this.warm?.callId === callId) this.cool();
  }

  /** Open the camera for `callId` ahead of its peer connection (set-up time). */
  prepare(callId) {
    if (this.warm?.callId === callId || this.call.callId === callId || this.finished.has(callId)) return;
    this.cool();
    this.warm = { callId, stream: openCamera() };
  }

  cool() {
    const warm = this.warm;
    this.warm = null;
    if (warm && warm.callId !== this.call.callId) {
      warm.stream.then((stream) => stream.getTracks().forEach((track) => track.stop()));
    }
  }

  /** Start the call's media: camera, peer connection, handlers. False when it ended meanwhile. */
  async open(callId, iceServers, ws) {
    const call = this.call;
    Object.assign(call, { callId, state: "new", muted: false, cameraOff: false, remoteAudio: true,
      remoteVideo: true, pending: call.pending ?? [], announced: false, channel: null, marks: {} });
    const warm = this.warm?.callId === callId ? this.warm.stream : null;
    this.warm = null;
    call.local = await (warm ?? openCamera());
    this.mark("camera");
    if (call.callId !== callId) {  // ended while the camera was opening
      call.local.getTracks().forEach((track) => track.stop());
      return false;
    }
    const pc = new RTCPeerConnection({ iceServers });
    call.pc = pc;
    call.remote = new MediaStream();
    for (const track of call.local.getTracks()) pc.addTrack(track, call.local);
    pc.addEventListener("track", (event) => this.remoteTrack(callId, event.track));
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate) this.signal(callId, "candidate", JSON.stringify(event.candidate.toJSON()));
    });
    pc.addEventListener("connectionstatechange", () => {
      call.state = pc.connectionState;
      if (call.state === "connected") this.mark("connected");
      this.render();
      if (pc.connectionState === "failed") {
        this.sendFrame({ type: "call_media", event: "ended", call_id: callId });
        this.end("failed");
      }
    });
    // The page's process gone (restart, crash): the media stops with it; it hangs up once back.
    ws?.addEventListener("close", () => { if (call.callId === callId) this.end(`${this.side === "kiosk" ? "agent" : "console"}_link_lost`); });
    this.sendFrame({ type: "call_media", event: "joined", call_id: callId });
    this.render();
    return true;
  }

  /** When this call reached a step (wall clock ms; `call.marks`, read by bench/call_setup.py). */
  mark(step) {
    this.call.marks[step] ??= performance.timeOrigin + performance.now();
  }

  signal(callId, kind, payload) {
    if (kind !== "candidate") this.mark(`sent_${kind}`);
    this.sendFrame({ type: "call_signal", call_id: callId, kind, payload });
  }

  remoteTrack(callId, track) {
    const call = this.call;
    call.remote.addTrack(track);
    this.render();
    if (!call.announced) {
      call.announced = true;
      window.dispatchEvent(new CustomEvent("branchline:call-streams",
        { detail: { callId, side: this.side, local: call.local, remote: call.remote } }));
    }
  }

  /** The other side's description; then the candidates that came before it. */
  async remoteDescription(type, sdp) {
    const pc = this.call.pc;
    this.mark(`got_${type}`);
    await pc.setRemoteDescription({ type, sdp });
    for (const candidate of this.call.pending.splice(0)) await pc.addIceCandidate(candidate);
  }

  async candidate(payload) {
    const candidate = JSON.parse(payload);
    if (this.call.pc?.remoteDescription) await this.call.pc.addIceCandidate(candidate);
    else this.call.pending.push(candidate);
  }

  /** The `control` data channel: this side's mute and camera, the other side's. */
  useChannel(channel) {
    this.call.channel = channel;
    channel.addEventListener("open", () => this.tellRemote());
    channel.addEventListener("message", (event) => {
      const remote = JSON.parse(event.data);
      this.call.remoteAudio = remote.audio !== false;
      this.call.remoteVideo = remote.video !== false;
      this.render();
    });
  }

  setLocal(change) {
    const call = this.call;
    Object.assign(call, change);
    for (const track of call.local?.getAudioTracks() ?? []) track.enabled = !call.muted;
    for (const track of call.local?.getVideoTracks() ?? []) track.enabled = !call.cameraOff;
    this.tellRemote();
    this.render();
  }

  tellRemote() {
    const call = this.call;
    if (call.channel?.readyState === "open") {
      call.channel.send(JSON.stringify({ audio: !call.muted, video: !call.cameraOff }));
    }
  }

  end(reason) {
    const call = this.call;
    if (!call.callId) return;
    const callId = call.callId;
    this.forget(callId);
    for (const track of call.local?.getTracks() ?? []) track.stop();
    call.pc?.close();
    Object.assign(call, { callId: "", pc: null, state: "closed", channel: null, pending: [] });
    this.render();
    window.dispatchEvent(new CustomEvent("branchline:call-ended", { detail: { callId, side: this.side, reason } }));
  }

  // ---- the panel (outside the page's re-rendered part) ---------------------------------

  render() {
    const { call, t, texts } = this;
    const root = this.holder();
    let panel = root.querySelector('[data-role="call-media"]');
    if (!call.callId) {
      if (panel && !this.ended) panel.remove();
      else if (panel && panel.dataset.state !== "ended") {
        panel.replaceChildren(el("p", { role: "status" }, t(this.ended)));
        panel.dataset.state = "ended";
      }
      return;
    }
    if (!panel || panel.dataset.call !== call.callId) {
      panel?.remove();
      panel = this.panel();
      root.append(panel);
    }
    const remote = panel.querySelector('[data-role="remote-video"]');
    const local = panel.querySelector('[data-role="local-video"]');
    if (call.remote && remote.srcObject !== call.remote) remote.srcObject = call.remote;
    if (call.local && local.srcObject !== call.local) { local.srcObject = call.local; local.muted = true; }
    Object.assign(panel.dataset, { state: call.state || "new", muted: String(call.muted), camera: call.cameraOff ? "off" : "on",
      remoteAudio: call.remoteAudio ? "on" : "off", remoteVideo: call.remoteVideo ? "on" : "off" });
    panel.querySelector('[data-role="call-connection"]').textContent = t(`${texts.connection}${call.state || "new"}`);
    const notes = [!call.remoteAudio ? t(texts.remoteMuted) : "", !call.remoteVideo ? t(texts.remoteCameraOff) : ""];
    panel.querySelector('[data-role="remote-note"]').textContent = notes.filter(Boolean).join(" · ");
    // Updated in place, never rebuilt: a button replaced on each render slips from under a press.
    const [mute, camera] = panel.querySelector('[data-role="call-controls"]').children;
    showControl(mute, call.muted, t(call.muted ? texts.unmute : texts.mute));
    showControl(camera, call.cameraOff, t(call.cameraOff ? texts.cameraOn : texts.cameraOff));
  }

  panel() {
    const control = (name, toggle) => {
      const node = el("button", { type: "button", "data-call-control": name, "aria-pressed": "false" });
      node.addEventListener("click", toggle);
      return node;
    };
    return el("section", { "data-role": "call-media", class: this.panelClass, "data-call": this.call.callId },
      el("video", { "data-role": "remote-video", autoplay: true, playsinline: true }),
      el("video", { "data-role": "local-video", autoplay: true, playsinline: true, muted: true }),
      el("p", { "data-role": "call-connection", role: "status", "aria-live": "polite" }),
      el("p", { "data-role": "remote-note", role: "status" }),
      el("div", { class: "actions", "data-role": "call-controls" },
        control("mute", () => this.setLocal({ muted: !this.call.muted })),
        control("camera", () => this.setLocal({ cameraOff: !this.call.cameraOff }))));
  }
}

function showControl(node, pressed, label) {
  node.setAttribute("aria-pressed", String(pressed));
  if (node.textContent !== label) node.textContent = label;
}

// The page side of recordings, shared by the kiosk page and the staff console (each serves
// this file as /static/recorder.js). See docs/flows/recordings.md.
//
// A Recording runs a MediaRecorder (WebM) on a MediaStream with a 1 s timeslice and posts to
// the local process, strictly in order, each request retried until the process answers:
//   POST /recordings/{id}/open    {txn_ref, kind, source, media_type}   (before any chunk)
//   POST /recordings/{id}/chunks/{index}                                (index from 0)
//   POST /recordings/{id}/close   {txn_ref, kind, source, media_type}
// What was posted is kept by the process. A page that goes away (reload, crash) leaves its
// recording open: the process closes it after 30 s without a chunk, with what it holds (a
// WebM cut anywhere plays up to the cut); the reloaded page starts a new recording of the
// same transaction if it is still asked to record.

const TIMESLICE_MS = 1000;
const RETRY_MS = [200, 500, 1000, 2000, 3000];
const GIVE_UP_AFTER = 60;  // attempts (a few minutes): the process is gone for good

function newId(source) {
  const random = globalThis.crypto?.randomUUID?.() ??
    `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${source}-${random}`.slice(0, 64);
}

function mediaType() {
  for (const type of ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp8", "video/webm"]) {
    if (globalThis.MediaRecorder?.isTypeSupported?.(type)) return type;
  }
  return "video/webm";
}

async function post(url, body, contentType) {
  for (let attempt = 0; ; attempt += 1) {
    let reply = null;
    try {
      reply = await fetch(url, { method: "POST", body, headers: { "Content-Type": contentType } });
    } catch (error) {
      reply = null;  // the process is restarting or gone: try again
    }
    if (reply && reply.status < 500) {
      const answer = await reply.json().catch(() => ({}));
      if (!reply.ok) throw Object.assign(new Error(answer.message || `HTTP ${reply.status}`), { answer });
      return answer;
    }
    if (attempt >= GIVE_UP_AFTER) throw new Error(`${url}: no answer`);
    await new Promise((done) => setTimeout(done, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]));
  }
}

export class Recording {
  /** Start recording `stream` for `meta` = {txn_ref, kind, source}. */
  constructor(stream, meta) {
    this.meta = { ...meta, media_type: "video/webm" };
    this.id = newId(meta.source);
    this.posted = 0;
    this.state = "recording";
    this.result = null;
    this.error = null;
    this.queue = this.send("open", JSON.stringify(this.meta), "application/json");
    let index = 0;
    this.recorder = new MediaRecorder(stream, { mimeType: mediaType() });
    this.recorder.addEventListener("dataavailable", (event) => {
      if (!event.data || event.data.size === 0) return;
      const n = index;
      index += 1;
      this.queue = this.queue.then(() => this.send(`chunks/${n}`, event.data, "application/octet-stream"))
        .then(() => { this.posted = n + 1; });
    });
    this.ended = new Promise((done) => this.recorder.addEventListener("stop", done, { once: true }));
    this.recorder.start(TIMESLICE_MS);
  }

  send(path, body, contentType) {
    return post(`/recordings/${this.id}/${path}`, body, contentType);
  }

  /** Stop and close; resolves with the process's answer {recording_id, sha256, size}. */
  stop() {
    if (this.closing) return this.closing;
    this.state = "closing";
    if (this.recorder.state !== "inactive") this.recorder.stop();
    this.closing = this.ended
      .then(() => this.queue)
      .then(() => this.send("close", JSON.stringify(this.meta), "application/json"))
      .then((answer) => { this.state = "closed"; this.result = answer; return answer; })
      .catch((error) => { this.state = "failed"; this.error = String(error.message || error); return null; });
    return this.closing;
  }
}

// ---- what a page records now, by key ------------------------------------------------------

export const recordings = new Map();  // key -> Recording
const listeners = [];

/** Called with the map of recordings after each start and stop (for an indicator). */
export function onRecordingsChange(listener) {
  listeners.push(listener);
}

function changed() {
  for (const listener of listeners) listener(recordings);
}

/** Record `stream` (a MediaStream or a function giving a promise of one) under `key` for
 *  `meta`; a key already recording the same transaction is left alone, another one is
 *  stopped and closed first. */
export async function want(key, meta, stream) {
  const current = recordings.get(key);
  if (current && current.meta.txn_ref === meta.txn_ref && current.meta.source === meta.source) return current;
  if (current) unwant(key);
  const placeholder = { meta, pending: true };
  recordings.set(key, placeholder);
  let media;
  try {
    media = typeof stream === "function" ? await stream() : stream;
  } catch (error) {
    recordings.delete(key);
    console.warn("recording: no camera", error);
    return null;
  }
  if (recordings.get(key) !== placeholder) return null;  // unwanted meanwhile
  const recording = new Recording(media, meta);
  recordings.set(key, recording);
  changed();
  return recording;
}

/** Stop and close the recording under `key` (if any). */
export function unwant(key) {
  const current = recordings.get(key);
  recordings.delete(key);
  if (!current || current.pending) return Promise.resolve(null);
  stopped.push(current);
  const done = current.stop();
  done.then(changed);
  changed();
  return done;
}

/** Stop every recording whose key starts with `prefix`. */
export function unwantAll(prefix) {
  return Promise.all([...recordings.keys()].filter((k) => k.startsWith(prefix)).map(unwant));
}

let cameraStream = null;

/** The camera (video only), opened once and kept. */
export function camera() {
  if (!cameraStream) {
    cameraStream = navigator.mediaDevices.getUserMedia({ video: true, audio: false })
      .catch((error) => { cameraStream = null; throw error; });
  }
  return cameraStream;
}

/** Record video calls from the calls module's window events: `branchline:call-streams`
 *  {callId, local, remote} starts a recording per side given (`sources` maps local/remote
 *  to a source, or null not to record it), `branchline:call-ended` {callId} closes them. */
export function recordCalls(sources) {
  window.addEventListener("branchline:call-streams", (event) => {
    const { callId, local, remote } = event.detail || {};
    if (!callId) return;
    for (const [side, stream] of [["local", local], ["remote", remote]]) {
      if (stream && sources[side]) {
        want(`call:${callId}:${side}`, { txn_ref: String(callId), kind: "call", source: sources[side] }, stream);
      }
    }
  });
  window.addEventListener("branchline:call-ended", (event) => {
    const callId = event.detail?.callId;
    unwantAll(callId ? `call:${callId}:` : "call:");
  });
}

/** A small "recording" indicator (the person on camera is told), kept in #media. */
export function indicator(label) {
  const node = document.createElement("p");
  node.dataset.role = "recording";
  node.setAttribute("role", "status");
  node.className = "recording";
  const show = () => {
    const live = [...recordings.values()].filter((r) => !r.pending && r.state === "recording");
    node.dataset.state = live.length ? "recording" : "idle";
    node.dataset.count = String(live.length);
    node.textContent = live.length ? label() : "";
    node.hidden = !live.length;
  };
  onRecordingsChange(show);
  show();
  return node;
}

// For tests and diagnostics: the recordings of this page, running and stopped.
export const stopped = [];
globalThis.branchlineRecordings = { recordings, stopped };

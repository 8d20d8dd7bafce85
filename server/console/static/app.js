// The staff console page: a thin view of the console process's state (docs/console.md).
// Every frame from the console is the full state; the page renders it and sends actions
// back. Form fields being typed in survive a re-render (values and focus are carried over).

import { page, VIEWS, frameHandler, runRenderHooks, setRenderer, t, el, send, hideError, showError, named } from "./ui.js";
import "./views/backoffice.js";
import "./views/tasks.js";
import "./views/calls.js";
import "./views/fleet.js";
import "./views/cheques.js";
import "./views/assistant.js";
import "./views/recordings.js";
import "./recording.js";
import "./views/call_media.js";
import "./views/desk_video.js";

const RETRY_MS = 500;

// ---- the wire ----------------------------------------------------------------------------

function setConnection(connected) {
  const node = document.querySelector('[data-role="connection"]');
  node.dataset.state = connected ? "connected" : "connecting";
  node.textContent = connected ? t("conn.connected") : t("conn.connecting");
}


function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  page.ws = ws;
  // Sequence numbers are a process's own: a restarted console counts from 1 again.
  page.seq = 0;
  ws.addEventListener("open", () => setConnection(true));
  ws.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  ws.addEventListener("close", () => {
    setConnection(false);
    setTimeout(connect, RETRY_MS);
  });
}

function receive(frame) {
  if (frame.type === "catalogue") {
    page.messages = frame.messages;
    page.lang = frame.lang;
  } else if (frame.type === "state") {
    if (frame.seq < page.seq) return;
    page.seq = frame.seq;
    page.frame = frame;
    page.receivedAt = Date.now();
    render();
  } else if (frame.type === "refused") {
    showError(frame);
  } else {
    frameHandler(frame.type)?.(frame);
  }
}



// ---- rendering ---------------------------------------------------------------------------

function render() {
  const frame = page.frame;
  document.documentElement.lang = frame.lang;
  document.title = t("app.title");
  document.querySelector('[data-role="title"]').textContent = t("app.title");
  document.querySelector('[data-action="language"]').textContent = t("lang.switch");
  setConnection(page.ws && page.ws.readyState === WebSocket.OPEN);
  const server = document.querySelector('[data-role="server"]');
  server.dataset.state = frame.server;
  server.textContent = named("server", frame.server);
  const me = frame.me;
  document.querySelector('[data-role="me"]').textContent = me.role === "operator"
    ? t("me.operator", me) : t("me.signed_in", { ...me, role: named("role", me.role) });

  // A console process still signing in (just restarted) lists no views yet: the screen the
  // person is on stays theirs, or a call ringing at a teller would ring on a screen not shown.
  if (frame.views.length && !frame.views.includes(page.view)) page.view = frame.views[0];
  const nav = document.querySelector('[data-role="views"]');
  nav.replaceChildren(...frame.views.map((view) => {
    const node = el("button", { type: "button", "data-view-button": view,
      "aria-current": view === page.view ? "page" : null }, named("view", view));
    node.addEventListener("click", () => { page.view = view; render(); });
    return node;
  }));

  // Carry what is being typed (and the focus) over the re-render.
  const main = document.getElementById("main");
  const typed = {};
  for (const input of main.querySelectorAll("input[id]")) typed[input.id] = input.value;
  const focused = document.activeElement && document.activeElement.id;

  let content;
  if (!frame.signed_in) {
    content = el("section", { "data-screen": "signin" }, el("h1", {}, t("signin.waiting")),
      frame.sign_in_refusal ? el("p", {}, t("signin.refused", frame.sign_in_refusal)) : null);
  } else if (VIEWS[page.view]) content = VIEWS[page.view](frame);
  else content = el("section", { "data-screen": "none" }, el("p", {}, t("view.none")));
  main.replaceChildren(content);

  for (const [id, value] of Object.entries(typed)) {
    const input = document.getElementById(id);
    if (input && input.type !== "hidden") input.value = value;
  }
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  runRenderHooks(frame);
}

setRenderer(render);


document.querySelector('[data-action="language"]').addEventListener("click", () => send("language"));
connect();

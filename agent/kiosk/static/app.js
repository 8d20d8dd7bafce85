// The kiosk page: a thin view of the agent's session (see docs/kiosk.md).
// It renders the screen the agent names and sends the customer's actions back; it holds no
// state that matters, so a reload or a reconnect shows exactly what the agent shows.

import { state, SCREENS, frameHandler, runRenderHooks, t, el, button, formValues, send, title } from "./ui.js";
import "./screens/core.js";
import "./screens/cheque.js";
import "./screens/assistant.js";
import "./screens/handover.js";
import "./recording.js";
import "./screens/recordings.js";
import "./call.js";
import "./desk_video.js";
import "./screens/phone.js";

const RETRY_MS = 500;
const STALE_MS = 1500;

function showConnecting() {
  state.frame = null;
  renderOverlay(null);
  document.getElementById("screen").replaceChildren(
    el("section", { "data-screen": "connecting", class: "screen" }, el("h1", {}, t("connection.connecting"))));
}

function setConnection(connected) {
  const node = document.querySelector('[data-role="connection"]');
  node.dataset.state = connected ? "connected" : "connecting";
  node.textContent = connected ? t("connection.connected") : t("connection.connecting");
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.ws = ws;
  ws.addEventListener("open", () => setConnection(true));
  ws.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  ws.addEventListener("close", () => {
    setConnection(false);
    // Nothing on a screen the agent no longer vouches for can be pressed; after a moment
    // the screen itself gives way to "connecting" (never a stale screen).
    document.getElementById("screen").inert = true;
    clearTimeout(state.staleTimer);
    state.staleTimer = setTimeout(showConnecting, STALE_MS);
    setTimeout(connect, RETRY_MS);
  });
  ws.addEventListener("error", () => ws.close());
}

function receive(frame) {
  if (frame.type === "catalogue") {
    state.messages = frame.messages;
    state.lang = frame.lang;
    setConnection(true);
  } else if (frame.type === "screen") {
    render(frame);
  } else if (frame.type === "refused") {
    showError(frame);
  } else {
    frameHandler(frame.type)?.(frame);
  }
}

function showError(frame) {
  const root = document.querySelector("[data-screen]");
  let box = root.querySelector('[data-role="error"]');
  if (!box) {
    box = el("p", { "data-role": "error", role: "alert", class: "error" });
    root.append(box);
  }
  box.dataset.field = frame.field || "";
  box.textContent = frame.detail ? `${frame.message} (${frame.detail})` : frame.message;
  if (frame.field) {
    const input = root.querySelector(`[name="${CSS.escape(frame.field)}"]`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }
}


// ---- rendering -------------------------------------------------------------------------

function render(frame) {
  clearTimeout(state.staleTimer);
  document.getElementById("screen").inert = false;
  const previous = state.frame;
  state.frame = frame;
  document.documentElement.lang = frame.lang;
  document.body.dataset.contrast = frame.display.contrast;
  document.body.dataset.text = frame.display.text;
  renderSettings(frame);
  const main = document.getElementById("screen");
  const same = previous && previous.screen === frame.screen;
  const old = main.querySelector("[data-screen]");
  const kept = same && old ? formValues(old) : {};
  const focused = same ? document.activeElement?.dataset?.action : null;
  const build = SCREENS[frame.screen] ?? ((d) => [title("screen.unknown")]);
  const root = el("section", { "data-screen": frame.screen, class: "screen", "aria-labelledby": "screen-title" },
    build(frame.data));
  for (const [name, value] of Object.entries(kept)) {
    const input = root.querySelector(`[name="${CSS.escape(name)}"]`);
    if (input) input.value = value;
  }
  main.replaceChildren(root);
  const again = focused && root.querySelector(`[data-action="${CSS.escape(focused)}"]`);
  if (again) again.focus();
  else if (!same) (root.querySelector("input, select, button") ?? main).focus();
  renderOverlay(frame.overlay);
  runRenderHooks(frame);
}

function renderSettings(frame) {
  const other = frame.lang === "en" ? "zh-CN" : "en";
  const language = document.querySelector('header [data-action="language"]');
  language.textContent = t("settings.language");
  language.lang = other;
  const contrast = document.querySelector('header [data-action="contrast"]');
  contrast.textContent = t("settings.contrast");
  contrast.setAttribute("aria-pressed", String(frame.display.contrast === "high"));
  const text = document.querySelector('header [data-action="text_size"]');
  text.textContent = t("settings.text_size");
  text.setAttribute("aria-pressed", String(frame.display.text === "large"));
  document.querySelector("nav.settings").setAttribute("aria-label", t("settings.label"));
}

function renderOverlay(overlay) {
  const holder = document.getElementById("overlay");
  clearInterval(state.countdown);
  if (!overlay) {
    holder.replaceChildren();
    return;
  }
  let seconds = overlay.seconds;
  const count = el("span", { "data-role": "countdown" }, String(seconds));
  const more = button("more_time", t("timeout.more_time"));
  const dialog = el("div", { class: "dialog", role: "alertdialog", "aria-modal": "true",
    "aria-labelledby": "timeout-title", "aria-describedby": "timeout-body", "data-screen-overlay": overlay.name },
    el("h2", { id: "timeout-title" }, t("timeout.title")),
    el("p", { id: "timeout-body" }, t("timeout.body_before"), " ", count, " ", t("timeout.body_after")),
    el("div", { class: "actions" }, more));
  holder.replaceChildren(el("div", { class: "scrim" }, dialog));
  more.focus();
  state.countdown = setInterval(() => {
    seconds = Math.max(0, seconds - 1);
    count.textContent = String(seconds);
  }, 1000);
}

// ---- keyboard and PIN-pad function keys ------------------------------------------------

document.addEventListener("keydown", (event) => {
  const overlay = document.querySelector("[data-screen-overlay] button");
  if (overlay && ["F1", "Enter"].includes(event.key)) {
    event.preventDefault();
    overlay.click();
    return;
  }
  const fkey = /^F([1-4])$/.exec(event.key);
  if (fkey) {
    event.preventDefault();
    const buttons = [...document.querySelectorAll("#screen [data-action]:not([disabled])")];
    buttons[Number(fkey[1]) - 1]?.click();
  } else if (event.key === "Escape") {
    document.querySelector('#screen [data-action="cancel"], #screen [data-action="back"]')?.click();
  }
});

for (const node of document.querySelectorAll("header [data-action]")) {
  node.addEventListener("click", () => send(node.dataset.action));
}

connect();

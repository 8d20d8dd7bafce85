// The phone page: fills the server-rendered shell from the JSON API (openapi.json).
// It keeps no state that matters: the session rides in an HttpOnly cookie.

import { openForm } from "./jobs.js";

const text = JSON.parse(document.getElementById("catalogue").textContent);
const t = (key) => text[key] ?? text["error.generic"];
let csrf = "";

function showError(reason) {
  const box = document.querySelector('[data-role="error"]');
  if (!box) return;
  box.textContent = t(`error.${reason}`);
  box.hidden = false;
}

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({ error: "generic" }));
  if (!response.ok) throw Object.assign(new Error(data.error), { data, status: response.status });
  return data;
}

function showServices(list) {
  const root = document.querySelector('[data-role="services"]');
  root.replaceChildren();
  root.dataset.live = "true"; // the page's own list (if any) replaced: these buttons work
  if (!list.services.length) {
    root.append(Object.assign(document.createElement("li"), { textContent: t("paired.none") }));
  }
  for (const id of list.services) {
    const item = document.createElement("li");
    item.dataset.service = id;
    const pick = document.createElement("button");
    pick.type = "button";
    pick.dataset.action = "open";
    pick.textContent = t(`service.${id}`);
    pick.addEventListener("click", () => openForm(id, { call, t, authMethods: list.auth_methods }));
    item.append(pick);
    root.append(item);
  }
  document.querySelector('[data-role="auth"]').hidden = !list.auth_methods.includes("terminal");
}

function ended() {
  document.querySelector('[data-screen="paired"]').dataset.state = "ended";
  document.querySelector('[data-action="cancel"]').hidden = true;
  showError("pairing_ended");
}

async function paired() {
  try {
    // Both at once: the list is what the customer waits for after scanning.
    const [pairing, list] = await Promise.all([call("GET", "/api/pairing"), call("GET", "/api/services")]);
    csrf = pairing.csrf_token;
    const code = document.querySelector('[data-role="matching-code"]');
    code.textContent = pairing.matching_code;
    code.dataset.code = pairing.matching_code;
    showServices(list);
  } catch (error) {
    if (error.status === 410) ended(); else showError(error.message);
    return;
  }
  const events = new EventSource("/api/services/events");
  events.addEventListener("services", (event) => showServices(JSON.parse(event.data)));
  events.addEventListener("ended", () => { events.close(); ended(); });
  document.querySelector('[data-action="cancel"]').addEventListener("click", async () => {
    events.close();
    try { await call("POST", "/api/cancel"); } catch (error) { showError(error.message); }
    ended();
  });
}

function pairForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("POST", "/api/pair", { short_code: form.elements.short_code.value });
      location.assign("/");
    } catch (error) {
      showError(error.message);
    }
  });
}

if (document.querySelector('[data-screen="paired"]')) paired();
const form = document.querySelector('[data-role="pair-form"]');
if (form) pairForm(form);

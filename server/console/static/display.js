// The branch display (/display): the console's counter-screen mode (docs/console.md,
// "Branch display"). It shows frame.cheques.display, pushed by the console whenever the
// server's ChequeDesk.WatchDisplay changes: after identity passes, the buyer (name, masked ID
// number, the photo from the card) and the company's contact person; then the order.
// The card photo is loaded from the console's route by the URL in the state (never its
// bytes); the server audits each photo it hands out, so a render keeps the <img> it had.

const RETRY_MS = 500;
const page = { messages: {}, frame: null, photos: new Map() };

function t(key, values = {}) {
  const message = page.messages[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// An id in words: the catalogue's `<prefix>.<id>`, else humanised (as ui.js named()).
function named(prefix, id) {
  const key = `${prefix}.${String(id ?? "").toLowerCase()}`;
  if (key in page.messages) return t(key);
  const words = String(id ?? "").replace(/[_-]/g, " ").trim().toLowerCase();
  return words ? words[0].toUpperCase() + words.slice(1) : "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, String(value));
  }
  // Any depth: a screen builds lists of [label, value] pairs.
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function facts(pairs) {
  return el("dl", {}, pairs.flatMap(([label, value, role]) =>
    [el("dt", {}, label), el("dd", { "data-role": role }, value)]));
}

// The photo's <img> shown before at this URL (not loaded again), else a new one.
function photo(url) {
  if (!url) return null;
  const kept = page.photos.get(url);
  if (kept) {
    kept.alt = t("display.photo");
    return kept;
  }
  return el("img", { src: url, alt: t("display.photo"), "data-role": "photo" });
}

function purchase(p) {
  const who = el("div", { class: "who" },
    photo(p.photo),
    facts([
      [t("display.buyer"), p.buyer_name, "buyer"],
      [t("display.id_number"), p.id_number_masked, "id-number"],
      [t("display.company"), p.company_name, "company"],
      [t("display.contact"), `${p.contact_name} ${p.contact_phone}`.trim(), "contact"],
    ]));
  let order = el("p", { "data-role": "waiting" }, t("display.choosing"));
  if (p.books.length) {
    order = el("section", { "data-role": "order" },
      el("table", {}, el("thead", {}, el("tr", {},
        [t("display.book_type"), t("display.first"), t("display.last"), t("display.fee")]
          .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, p.books.map((b) => el("tr", { "data-book": b.first },
        el("td", {}, named("book", b.book_type)), el("td", { "data-role": "first" }, b.first),
        el("td", { "data-role": "last" }, b.last), el("td", {}, b.fee))))),
      el("p", {}, t("display.fee_total"), " ", el("strong", { "data-role": "fee" }, p.fee_total)));
  }
  return el("article", { "data-purchase": p.purchase_id, "data-state": p.state },
    el("h2", {}, named("display.state", p.state), " · ", p.terminal_id), who, order);
}

function render() {
  const frame = page.frame;
  document.documentElement.lang = frame.lang;
  document.title = t("display.title");
  document.querySelector('[data-role="title"]').textContent = t("display.title");
  const shown = frame.cheques ? frame.cheques.display : null;
  const main = document.getElementById("main");
  page.photos = new Map(
    [...main.querySelectorAll('img[data-role="photo"]')].map((img) => [img.getAttribute("src"), img]));
  if (!shown || !shown.purchases.length) {
    main.replaceChildren(el("p", { "data-role": "idle" }, t("display.idle")));
    return;
  }
  main.replaceChildren(...shown.purchases.map(purchase));
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  const status = document.querySelector('[data-role="connection"]');
  ws.addEventListener("open", () => { status.dataset.state = "connected"; status.textContent = ""; });
  ws.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "catalogue") page.messages = frame.messages;
    else if (frame.type === "state") { page.frame = frame; render(); }
  });
  ws.addEventListener("close", () => {
    status.dataset.state = "connecting";
    setTimeout(connect, RETRY_MS);
  });
}

connect();

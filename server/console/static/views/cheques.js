// The cheque-sale view (../cheques.js, docs/console.md "Cheque sale") on the page-module
// registry: cheques.js was written against the console before the module split and takes its
// helpers as an argument; this registers it and hands them over.

import { registerView, t, el, button, table, send } from "../ui.js";
import { renderCheques } from "../cheques.js";

// The page's error line (the same contract as app.js's refusals), for the face upload's
// refusals, which arrive over HTTP rather than as a frame.
function showError(frame) {
  const node = document.querySelector('[data-role="error"]');
  node.hidden = false;
  node.dataset.field = frame.field || "";
  node.dataset.reason = frame.reason || "";
  node.dataset.status = frame.status || "";
  node.textContent = t("refused", { message: frame.message });
}

registerView("cheques", (frame) => renderCheques(frame.cheques, { el, t, table, button, send, showError }));

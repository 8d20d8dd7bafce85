// Recordings made at the console (docs/flows/recordings.md): the back-office camera while
// this person handles a carrier (the console process says which: `backoffice.record`), and
// the teller's side of video calls (the calls module's window events).

import { afterRender, t, el } from "./ui.js";
import { want, unwant, camera, recordCalls, indicator } from "/recordings/recorder.js";

let shown = false;

afterRender((frame) => {
  if (!shown) {
    let media = document.getElementById("media");
    if (!media) {
      media = el("div", { id: "media", "data-role": "media" });
      document.body.append(media);
    }
    media.prepend(indicator(() => t("rec.recording")));
    shown = true;
  }
  const record = frame.backoffice?.record;
  if (record && record.txn_ref) want("backoffice", record, camera);
  else unwant("backoffice");
});

recordCalls({ local: "teller", remote: null });

// Recordings on the kiosk page (docs/kiosk.md "Recording", docs/flows/recordings.md).
// The agent decides when the camera is recorded: a screen whose data carries
// `record: {txn_ref, kind, source}` is recorded (the tube screen for the whole transaction,
// the cheque screen for the whole purchase); a screen without it stops and closes the
// recording. Both sides of a video call are recorded on the calls module's window events.

import { afterRender, t } from "./ui.js";
import { want, unwant, camera, recordCalls, indicator } from "/recordings/recorder.js";

let shown = false;

afterRender((frame) => {
  if (!shown) {
    document.getElementById("media").append(indicator(() => t("recording.active")));
    shown = true;
  }
  const record = frame.data?.record;
  if (record && record.txn_ref) want("screen", record, camera);
  else unwant("screen");
});

recordCalls({ local: "kiosk", remote: "teller" });

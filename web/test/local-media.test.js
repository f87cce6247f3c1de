// What the page says when the camera or microphone cannot be used (web/static/local-media.js):
// which device, what to do, and that joining still works; in the page's language.
import assert from "node:assert/strict";
import { test } from "node:test";

import { mediaProblem } from "../static/local-media.js";

const error = (name) => ({ name });

test("a blocked camera says so, that joining still works, and how to allow it", () => {
  assert.equal(mediaProblem(error("NotAllowedError"), "video"),
    "Access to your camera is blocked. You can still join to see and hear the others. " +
    "To be seen and heard, select the camera icon in your browser's address bar (or the site settings), " +
    "choose Allow, then press Try again.");
  assert.equal(mediaProblem(error("NotFoundError")),
    "No camera or microphone was found. Check that it is plugged in, then press Try again. " +
    "You can still join to see and hear the others.");
  assert.equal(mediaProblem(error("NotReadableError"), "audio"),
    "Your microphone could not start; another app may be using it. Close that app and press Try again. " +
    "You can still join to see and hear the others.");
  assert.equal(mediaProblem(error("TypeError"), "video"),
    "Your camera could not start. You can still join to see and hear the others.");
});

test("on a Spanish page the problem reads Spanish, the device named rightly", () => {
  const before = globalThis.document;
  globalThis.document = /** @type {any} */ ({ documentElement: { lang: "es" } });
  try {
    assert.equal(mediaProblem(error("NotFoundError"), "video"),
      "No se encontró ninguna cámara. Revise que esté conectada y luego pulse Intentar de nuevo. " +
      "Aun así puede unirse para ver y oír a los demás.");
    assert.match(mediaProblem(error("SecurityError"), "audio"), /^El acceso a su micrófono está bloqueado\. .*Permitir/);
  } finally {
    globalThis.document = before;
  }
});

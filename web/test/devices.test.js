// The microphone level's words (web/static/devices.js, LevelMeter) in the page's language.
import assert from "node:assert/strict";
import { test } from "node:test";

import { LevelMeter } from "../static/devices.js";

function fakeMeter() {
  const attributes = new Map();
  return { value: 0, attributes, setAttribute: (name, value) => attributes.set(name, value) };
}

/** A browser without Web Audio, a track, then none. @param {string} [lang] */
function meterWords(lang) {
  const saved = { window: globalThis.window, document: globalThis.document };
  globalThis.window = /** @type {any} */ ({});
  if (lang) globalThis.document = /** @type {any} */ ({ documentElement: { lang } });
  try {
    const meter = fakeMeter();
    const text = { textContent: "" };
    const level = new LevelMeter(/** @type {any} */ (meter), /** @type {any} */ (text));
    level.attach(/** @type {any} */ ({ enabled: true }));
    const unsupported = text.textContent;
    level.attach(null);
    return { unsupported, none: text.textContent, valuetext: meter.attributes.get("aria-valuetext") };
  } finally {
    globalThis.window = saved.window;
    globalThis.document = saved.document;
  }
}

test("the level meter's words, in English by default", () => {
  assert.deepEqual(meterWords(), {
    unsupported: "This browser cannot show the microphone level.",
    none: "No microphone.",
    valuetext: "0 percent",
  });
});

test("the level meter's words on a Spanish page", () => {
  assert.deepEqual(meterWords("es"), {
    unsupported: "Este navegador no puede mostrar el nivel del micrófono.",
    none: "Sin micrófono.",
    valuetext: "0 por ciento",
  });
});

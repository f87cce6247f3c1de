// The pre-join network check's verdicts (web/static/network-check.js): which figures pass,
// the advice, and the figures' words in the page's language.
import assert from "node:assert/strict";
import { test } from "node:test";

import { adviceFor, figureText, judge } from "../static/network-check.js";

const THRESHOLDS = { max_rtt_ms: 300, max_loss_percent: 5, min_kbps: 500 };

/** @param {string} lang @param {() => void} body */
function onPage(lang, body) {
  const before = globalThis.document;
  globalThis.document = /** @type {any} */ ({ documentElement: { lang } });
  try {
    body();
  } finally {
    globalThis.document = before;
  }
}

test("a weak connection fails its figures and gets advice", () => {
  const { checks, passed } = judge({ rttMs: 600, lossPercent: 1, kbps: 200 }, THRESHOLDS);
  assert.deepEqual(checks, { rtt: false, loss: true, kbps: false });
  assert.equal(passed, false);
  assert.deepEqual(adviceFor(checks), [
    "Move closer to your Wi-Fi router, or use a cable if you can.",
    "Close other apps using the internet (downloads, video streaming).",
    "You can still join; we'll switch to audio only if needed.",
  ]);
  assert.deepEqual(adviceFor({ rtt: true, loss: true, kbps: true }), [], "nothing failed: no advice");
});

test("the figures in words", () => {
  const figures = { rttMs: 600, lossPercent: 12.5, kbps: 2400 };
  assert.deepEqual(figureText("rtt", figures, false), { value: "600 ms", verdict: "! Slow" });
  assert.deepEqual(figureText("loss", figures, false), { value: "12.5 %", verdict: "! High" });
  assert.deepEqual(figureText("kbps", figures, true), { value: "2.4 Mbps", verdict: "✓ OK" });
  assert.deepEqual(figureText("kbps", { ...figures, kbps: 300 }, false), { value: "300 kbps", verdict: "! Low" });
  assert.equal(figureText("rtt", { ...figures, rttMs: null }, false).value, "no answer");
});

test("on a Spanish page the advice and the figures read Spanish", () => {
  onPage("es", () => {
    assert.deepEqual(adviceFor({ rtt: false, loss: true, kbps: true }), [
      "Acérquese a su router wifi o, si puede, use un cable.",
      "Aun así puede unirse; cambiaremos a solo audio si hace falta.",
    ]);
    const figures = { rttMs: 600, lossPercent: 0, kbps: null };
    assert.deepEqual(figureText("rtt", figures, false), { value: "600 ms", verdict: "! Alto" });
    assert.deepEqual(figureText("loss", figures, true), { value: "0 %", verdict: "✓ Bien" });
    assert.deepEqual(figureText("kbps", figures, false), { value: "desconocida", verdict: "! Baja" });
  });
});

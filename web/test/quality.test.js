// Connection quality (web/static/quality.js): the level from a sample, and its words in
// the page's language.
import assert from "node:assert/strict";
import { test } from "node:test";

import { classify, qualityLabel } from "../static/quality.js";

test("a sample's level", () => {
  assert.equal(classify({ rttMs: 40, lossPercent: 0, fps: 24 }), "good");
  assert.equal(classify({ rttMs: 300, lossPercent: 0, fps: null }), "fair");
  assert.equal(classify({ rttMs: 40, lossPercent: 10, fps: null }), "poor");
  assert.equal(classify({ rttMs: 40, lossPercent: 0, fps: 5 }), "poor");
});

test("the levels in words: English by default, Spanish when asked", () => {
  assert.equal(qualityLabel("good"), "Good connection");
  assert.equal(qualityLabel("fair", { short: true }), "Fair");
  assert.equal(qualityLabel("poor"), "Poor connection");
  assert.equal(qualityLabel("good", { language: "es" }), "Buena conexión");
  assert.equal(qualityLabel("fair", { language: "es" }), "Conexión regular");
  assert.equal(qualityLabel("poor", { short: true, language: "es" }), "Mala");
});

test("the labels are in the page's language", () => {
  const before = globalThis.document;
  globalThis.document = /** @type {any} */ ({ documentElement: { lang: "es" } });
  try {
    assert.equal(qualityLabel("good", { short: true }), "Buena");
    assert.equal(qualityLabel("poor"), "Mala conexión");
  } finally {
    globalThis.document = before;
  }
  assert.equal(qualityLabel("good"), "Good connection");
});

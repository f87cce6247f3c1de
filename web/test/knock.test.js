// The waiting room's knock (web/static/knock.js): the chime, the title's count, and a
// notification only while the tab is hidden; "sound off" is remembered.
import assert from "node:assert/strict";
import { test } from "node:test";

import { KnockAlert } from "../static/knock.js";

function setUp({ hidden = false } = {}) {
  const doc = { title: "Medication review", hidden };
  const stored = new Map();
  const storage = { getItem: (key) => stored.get(key) ?? null, setItem: (key, value) => stored.set(key, value) };
  const notified = [];
  let chimed = 0;
  const alert = new KnockAlert({ doc, chime: () => { chimed += 1; }, notify: (text) => notified.push(text), storage });
  return { doc, alert, notified, storage, chimed: () => chimed };
}

test("a knock chimes and puts the count in the title; an empty room restores it", () => {
  const { doc, alert, notified, chimed } = setUp();
  alert.update(1, 1);
  assert.equal(doc.title, "(1) Medication review");
  assert.equal(chimed(), 1);
  alert.update(2, 1);
  assert.equal(doc.title, "(2) Medication review");
  alert.update(1, 0);
  assert.equal(chimed(), 2, "someone leaving the room is no knock");
  alert.update(0, 0);
  assert.equal(doc.title, "Medication review");
  assert.deepEqual(notified, [], "the tab is visible: no notification");
});

test("sound off is remembered and silences the chime, not the title", () => {
  const { doc, alert, storage, chimed } = setUp();
  alert.soundOn = false;
  assert.equal(storage.getItem("mtm:knock-sound"), "off");
  const again = new KnockAlert({ doc, chime: () => assert.fail("chimed"), notify: () => {}, storage });
  assert.equal(again.soundOn, false);
  again.update(1, 1);
  assert.equal(doc.title, "(1) Medication review");
  assert.equal(chimed(), 0);
});

test("a hidden tab is notified, without the patient's name", () => {
  const { alert, notified } = setUp({ hidden: true });
  alert.update(1, 1);
  alert.update(3, 2);
  assert.deepEqual(notified, [
    "Someone is waiting to join the consult.",
    "2 people are waiting to join the consult.",
  ]);
});

test("without storage (a sandboxed embed) the switch still works for the page", () => {
  const doc = { title: "Medication review", hidden: false };
  let chimed = 0;
  const alert = new KnockAlert({ doc, chime: () => { chimed += 1; }, notify: () => {}, storage: null });
  alert.soundOn = false;
  assert.equal(alert.soundOn, false);
  alert.update(1, 1);
  assert.equal(chimed, 0);
  const refusing = { getItem: () => { throw new Error("SecurityError"); }, setItem: () => { throw new Error("QuotaExceeded"); } };
  const strict = new KnockAlert({ doc, chime: () => { chimed += 1; }, notify: () => {}, storage: refusing });
  assert.equal(strict.soundOn, true, "unreadable storage: the default");
  strict.soundOn = false; // does not throw
  strict.update(1, 1);
  assert.equal(chimed, 0);
});

test("on a Spanish page the notification reads Spanish, still without the name", () => {
  const before = globalThis.document;
  globalThis.document = /** @type {any} */ ({ documentElement: { lang: "es" } });
  try {
    const { alert, notified } = setUp({ hidden: true });
    alert.update(1, 1);
    alert.update(3, 2);
    assert.deepEqual(notified, [
      "Alguien está esperando para unirse a la consulta.",
      "2 personas están esperando para unirse a la consulta.",
    ]);
  } finally {
    globalThis.document = before;
  }
});

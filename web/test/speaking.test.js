// Who is speaking (web/static/speaking.js): outlined from the first loud sample, kept
// through short pauses between words, dropped after a longer silence.
import assert from "node:assert/strict";
import { test } from "node:test";

import { HOLD_MS, SPEAKING_LEVEL, SpeakingState, averageLevel } from "../static/speaking.js";

test("speech starts the outline at once and a short pause keeps it", () => {
  const state = new SpeakingState();
  assert.equal(state.sample(0.01, 0), false, "room noise is not speech");
  assert.equal(state.speaking, false);
  assert.equal(state.sample(0.3, 200), true);
  assert.equal(state.speaking, true);
  assert.equal(state.sample(0, 400), false, "a pause between words");
  assert.equal(state.sample(SPEAKING_LEVEL, 600), false);
  assert.equal(state.speaking, true);
});

test("a longer silence ends it; silence alone never starts it", () => {
  const state = new SpeakingState();
  state.sample(0.5, 0);
  assert.equal(state.sample(0, HOLD_MS - 1), false);
  assert.equal(state.sample(0, HOLD_MS), true);
  assert.equal(state.speaking, false);
  const muted = new SpeakingState();
  for (let now = 0; now < 5_000; now += 200) muted.sample(0, now);
  assert.equal(muted.speaking, false);
});

test("the level is the average over the interval, from the accumulated energy", () => {
  assert.equal(averageLevel(null, { energy: 5, duration: 10 }), 0, "no interval yet");
  // A 50 ms beep at level 0.4 within a 200 ms interval: power 0.16 x 0.05 / 0.2.
  const level = averageLevel({ energy: 1, duration: 10 }, { energy: 1 + 0.16 * 0.05, duration: 10.2 });
  assert.ok(Math.abs(level - 0.2) < 1e-9, String(level));
  assert.equal(averageLevel({ energy: 1, duration: 10 }, { energy: 1, duration: 10.2 }), 0, "silence");
  assert.equal(averageLevel({ energy: 1, duration: 10 }, { energy: 1, duration: 10 }), 0, "no new audio");
});

/** A connection whose one audio receiver reports the energy the test sets. */
function fakeConnection() {
  const totals = { energy: 0, duration: 0 };
  const receiver = {
    track: { kind: "audio" },
    getStats: async () => new Map([["in", {
      type: "inbound-rtp", totalAudioEnergy: totals.energy, totalSamplesDuration: totals.duration,
    }]]),
  };
  return { totals, pc: /** @type {any} */ ({ getReceivers: () => [receiver] }) };
}

test("the monitor outlines a loud remote, and clears the outline when its connection goes", async () => {
  const { SpeakingMonitor } = await import("../static/speaking.js");
  const loud = fakeConnection();
  const peers = new Map([["p_a", loud.pc]]);
  /** @type {[string, boolean][]} */
  const changes = [];
  const monitor = new SpeakingMonitor(() => peers, (id, speaking) => changes.push([id, speaking]));
  monitor.start();
  const tick = () => new Promise((resolve) => setTimeout(resolve, 230));
  await tick(); // first reading: no interval yet
  loud.totals.energy += 0.16 * 0.05;
  loud.totals.duration += 0.2;
  await tick();
  assert.deepEqual(changes, [["p_a", true]]);
  peers.delete("p_a"); // their connection closed; their tile may stay (reconnecting)
  await tick();
  monitor.stop();
  assert.deepEqual(changes, [["p_a", true], ["p_a", false]]);
});

// The care team's visit timer (web/static/visit-timer.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { VisitTimer, formatElapsed } from "../static/visit-timer.js";

test("elapsed time reads as minutes and seconds, then hours", () => {
  assert.equal(formatElapsed(0), "0:00");
  assert.equal(formatElapsed(65_400), "1:05");
  assert.equal(formatElapsed(15 * 60_000), "15:00");
  assert.equal(formatElapsed(3_729_000), "1:02:09");
  assert.equal(formatElapsed(-5_000), "0:00", "a clock a little behind the server's");
});

test("the timer shows once the visit started, counting from the record's time", () => {
  const element = { hidden: true };
  const output = { textContent: "" };
  let now = Date.parse("2026-12-01T14:40:07Z");
  const timer = new VisitTimer(/** @type {any} */ (element), /** @type {any} */ (output), () => now);
  timer.start(null);
  assert.equal(element.hidden, true, "not started: nothing shown");
  timer.start("not a time");
  assert.equal(element.hidden, true);
  timer.start("2026-12-01T14:31:07.120000+00:00");
  assert.equal(element.hidden, false);
  assert.equal(output.textContent, "8:59");
  now += 1_000;
  timer.start("2026-12-01T14:31:07.120000+00:00");
  assert.equal(output.textContent, "9:00");
  timer.stop();
});

test("the time is counted by the server's clock when this page's is off", () => {
  const element = { hidden: true };
  const output = { textContent: "" };
  // This computer's clock is 5 minutes behind the server's.
  const now = Date.parse("2026-12-01T14:35:07Z");
  const timer = new VisitTimer(/** @type {any} */ (element), /** @type {any} */ (output), () => now);
  timer.start("2026-12-01T14:31:07Z", "2026-12-01T14:40:07Z");
  assert.equal(output.textContent, "9:00");
  timer.stop();
});

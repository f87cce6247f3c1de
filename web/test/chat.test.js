// The call's chat log (web/static/chat.js): server order, each message once, junk ignored,
// and what the person typed checked before it is sent.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ChatLog, MAX_LENGTH, isMessage, outgoing } from "../static/chat.js";

const message = (id, text = `m${id}`) => ({
  id, text, at: "2026-12-01T14:35:02+00:00", author: { id: "p_a", role: "pharmacist", display_name: "Ana" },
});

test("messages are kept once each, in the server's order", () => {
  const log = new ChatLog();
  assert.equal(log.add([message(2), message(1)]), true);
  assert.equal(log.add([message(2)]), false, "our own, from the ack and then the history");
  log.add([message(3)]);
  assert.deepEqual(log.messages.map((m) => m.id), [1, 2, 3]);
});

test("anything that is not a message is ignored", () => {
  const log = new ChatLog();
  assert.equal(log.add([null, {}, { id: "1", text: "x" }, { ...message(1), text: 5 }, "<b>"]), false);
  assert.equal(isMessage(message(1)), true);
  assert.deepEqual(log.messages, []);
});

test("what is sent is trimmed; empty or too long is refused before it leaves", () => {
  assert.deepEqual(outgoing("  hello \n"), { text: "hello" });
  assert.deepEqual(outgoing("<b>x</b>"), { text: "<b>x</b>" });
  assert.ok("problem" in outgoing("   "));
  assert.ok("problem" in outgoing("x".repeat(MAX_LENGTH + 1)));
  assert.deepEqual(outgoing("x".repeat(MAX_LENGTH)), { text: "x".repeat(MAX_LENGTH) });
});

// The client's words (web/static/i18n.js): a language's message, English where it has none,
// and what a page shows for a refusal from the server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { serverMessage, t, tCount } from "../static/i18n.js";

test("a message in the language asked for, with its values filled in", () => {
  assert.equal(t("control.join-button", {}, "es"), "Unirse");
  assert.equal(t("roster.left", { name: "Ana" }, "es"), "Ana salió.");
  assert.equal(t("roster.left", { name: "Ana" }, "fr"), "Ana left.", "a language not offered reads English");
  assert.throws(() => t("no.such.message"), /no message no.such.message/);
});

test("an English page shows the server's own message; another shows the catalogue's", () => {
  const refusal = { code: "consult_ended", message: "The consult ended at 10:02." };
  assert.equal(serverMessage(refusal, "fallback", "en"), "The consult ended at 10:02.");
  assert.equal(serverMessage(refusal, "fallback", "es"), "Esta consulta ha terminado.");
  assert.equal(serverMessage({ code: "no_such_code", message: "English only" }, "respaldo", "es"), "respaldo");
  assert.equal(serverMessage({ code: "consult_ended" }, "fallback", "en"), "This consult has ended.");
  assert.equal(serverMessage(null, "fallback", "en"), "fallback");
});

test("a count picks the message for one or for more", () => {
  assert.equal(tCount("knock.notify", 1, {}, "es"), t("knock.notify.one", {}, "es"));
  assert.equal(tCount("knock.notify", 3, {}, "en"), "3 people are waiting to join the consult.");
  assert.equal(tCount("knock.notify", 0, {}, "en"), "0 people are waiting to join the consult.");
});

// The client's words (web/static/i18n.js): a language's message, English where it has none,
// and what a page shows for a refusal from the server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { serverMessage, t } from "../static/i18n.js";

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

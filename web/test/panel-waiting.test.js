// @ts-check
// The words of the panel's "waiting for you" section, its offline and queue lines and how
// it names a person (static/panel-waiting.js, panel-view.js, panel-conflict.js), in English
// and in Spanish.

import assert from "node:assert/strict";
import { test } from "node:test";

import { personText } from "../static/panel-conflict.js";
import { offlineText, queueText } from "../static/panel-view.js";
import { waitingSummary } from "../static/panel-waiting.js";

test("the summary counts what waits, one or many, for each role", () => {
  assert.equal(waitingSummary("clinician", 1, 0), "1 recommendation needs your decision.");
  assert.equal(waitingSummary("clinician", 2, 0), "2 recommendations need your decision.");
  assert.equal(waitingSummary("patient", 0, 1), "Please check 1 medicine: is this how you take it?");
  assert.equal(waitingSummary("patient", 0, 0), "Nothing is waiting for you.");
  assert.equal(
    waitingSummary("pharmacist", 2, 1),
    "2 recommendations waiting for a decision · 1 medication not confirmed by the patient.",
  );
  assert.equal(waitingSummary("patient", 0, 3, "es"), "Revise 3 medicamentos: ¿es así como los toma?");
  assert.equal(waitingSummary("clinician", 0, 0, "es"), "No hay nada pendiente de su decisión.");
  assert.equal(
    waitingSummary("pharmacist", 1, 2, "es"),
    "1 recomendación esperando una decisión · 2 medicamentos sin confirmar por el paciente.",
  );
});

test("the queue and offline lines, in the language asked for", () => {
  assert.equal(queueText(1, false), "1 edit waiting to be sent");
  assert.equal(queueText(3, false), "3 edits waiting to be sent");
  assert.match(queueText(2, true), /^2 edits not saved yet: /);
  assert.equal(queueText(2, false, "es"), "2 cambios esperando a enviarse");
  assert.match(queueText(1, true, "es"), /^1 cambio aún sin guardar: /);
  assert.match(offlineText({ waiting: false, queued: 0 }), /^Offline\. Changes you make/);
  assert.match(offlineText({ waiting: true, queued: 2 }, "es"), /^Esperando a que le dejen entrar de nuevo\./);
});

test("a person is named with their role in the page's words, someone without a name", () => {
  assert.equal(personText({ name: "Ana", role: "pharmacist" }), "Ana (pharmacist)");
  assert.equal(personText({ name: "Ana", role: "pharmacist" }, { language: "es" }), "Ana (farmacéutico)");
  assert.equal(personText({ role: "patient" }, { language: "es" }), "Alguien (paciente)");
  assert.equal(personText(null), "Someone");
  assert.equal(personText({ name: "Bo", role: "observer" }), "Bo (observer)", "a role the catalogue does not know reads as sent");
});

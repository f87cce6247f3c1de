// @ts-check
// The panel's field rules as the browser reads them from the server's settings
// (static/panel-schema.js), with the settings the server's own code makes.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  choiceOptions,
  compareEntities,
  describeEvent,
  describeMutation,
  entityName,
  isCompareAndSet,
  nextStatuses,
  openItems,
  permissions,
  readSettings,
} from "../static/panel-schema.js";
import { settingsFor } from "./support/settings.js";

test("readSettings names what is missing", () => {
  assert.throws(() => readSettings(null), /settings/);
  assert.throws(() => readSettings({ may: {} }), /panel_schema is missing/);
  assert.throws(() => readSettings({ panel_schema: settingsFor("pharmacist").panel_schema }), /settings\.may is missing/);
  const { panel_schema } = settingsFor("pharmacist");
  delete panel_schema.plan_item;
  assert.throws(() => readSettings({ panel_schema, may: {} }), /no fields for plan_item/);
  assert.doesNotThrow(() => readSettings(settingsFor("patient")));
});

test("permissions follow the server's roles", () => {
  const may = (/** @type {"pharmacist"|"clinician"|"patient"} */ role) => {
    const { schema, may: allowed } = readSettings(settingsFor(role));
    return permissions(allowed, schema);
  };
  assert.equal(may("pharmacist").edit("medication", "strength"), true);
  assert.equal(may("patient").edit("medication", "strength"), false);
  assert.equal(may("patient").edit("medication", "patient_confirmation"), true);
  assert.equal(may("clinician").decide(), true);
  assert.equal(may("pharmacist").decide(), false);
  assert.equal(may("patient").history(), false);
  assert.equal(may("pharmacist").create("medication"), true);
  assert.equal(may("patient").create("medication"), false);
});

test("field rules come from the schema: compare-and-set, choices, transitions", () => {
  const { schema } = readSettings(settingsFor("pharmacist"));
  assert.equal(isCompareAndSet(schema, "medication", "strength"), true);
  assert.equal(isCompareAndSet(schema, "medication", "no_such_field"), false);
  const decisions = choiceOptions(schema, "recommendation", "status");
  assert.ok(decisions);
  assert.deepEqual(
    decisions.map(([value]) => value),
    schema.recommendation.fields.status.choices,
  );
  for (const next of nextStatuses(schema, "medication", "active")) {
    assert.ok(schema.medication.fields.status.choices?.includes(next), String(next));
  }
});

test("entities sort by position, then id, by plain string comparison", () => {
  const items = [
    { id: "b", type: "problem", position: "a1" },
    { id: "a", type: "problem", position: "a1" },
    { id: "c", type: "problem", position: "Z" },
  ];
  assert.deepEqual(items.sort(compareEntities).map((e) => e.id), ["c", "a", "b"]);
});

test("open items: the clinician decides, the patient confirms", () => {
  const { schema } = readSettings(settingsFor("clinician"));
  const entities = [
    { id: "r_1", type: "recommendation", position: "a", data: { status: "proposed" } },
    { id: "r_2", type: "recommendation", position: "b", data: { status: "accepted" } },
    { id: "m_1", type: "medication", position: "a", data: { status: "active", patient_confirmation: "needs-confirming" } },
    { id: "m_2", type: "medication", position: "b", data: { status: "active", patient_confirmation: "confirmed" } },
  ];
  const ids = (/** @type {{id: string}[]} */ list) => list.map((e) => e.id);
  assert.deepEqual(ids(openItems(entities, "clinician", schema).toDecide), ["r_1"]);
  assert.deepEqual(ids(openItems(entities, "clinician", schema).toConfirm), []);
  assert.deepEqual(ids(openItems(entities, "patient", schema).toConfirm), ["m_1"]);
  assert.deepEqual(ids(openItems(entities, "patient", schema).toDecide), []);
  assert.deepEqual(ids(openItems(entities, "pharmacist", schema).toConfirm), ["m_1"]);
});

test("sentences for changes and queued mutations", () => {
  const med = { id: "m_1", type: "medication", data: { name: "Metformin" } };
  assert.equal(entityName(med), "Metformin");
  assert.equal(entityName(null), "an item");
  const event = {
    seq: 2,
    op: "set",
    outcome: "applied",
    entity_type: "medication",
    field: "strength",
    new: "750 mg",
    actor: { name: "Cal" },
  };
  assert.equal(describeEvent(event, med), "Cal changed Metformin strength to 750 mg");
  assert.equal(describeEvent({ ...event, outcome: "conflict" }, med), null);
  assert.equal(describeEvent({ ...event, op: "hidden" }, med), null);
  assert.equal(
    describeMutation({ mutation_id: "p1-1", op: "set", entity: "medication", field: "strength", value: "750 mg" }, med),
    "Metformin: strength → 750 mg",
  );
  assert.match(describeMutation({ mutation_id: "p1-2", op: "add", entity: "medication", value: { name: "Lisinopril" } }, null), /“Lisinopril”/);
});

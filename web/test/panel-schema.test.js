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
  describeProposed,
  entityName,
  fieldWord,
  formatValue,
  isCompareAndSet,
  nextStatuses,
  openItems,
  permissions,
  readSettings,
  valueLabel,
} from "../static/panel-schema.js";
import {
  changedByText,
  medFieldLabel,
  medFieldNamed,
  patientProposalText,
  proposedLabel,
  staffProposalText,
} from "../static/panel-view-common.js";
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

test("the words read in the page's language; the codes stay the server's", (context) => {
  const previous = Object.getOwnPropertyDescriptor(globalThis, "document");
  Object.defineProperty(globalThis, "document", { value: { documentElement: { lang: "es" } }, configurable: true });
  context.after(() => {
    if (previous) Object.defineProperty(globalThis, "document", previous);
    else delete globalThis.document;
  });
  const { schema } = readSettings(settingsFor("patient"));
  const statuses = choiceOptions(schema, "medication", "status", "patient");
  assert.ok(statuses);
  assert.deepEqual(statuses.map(([value]) => value), schema.medication.fields.status.choices);
  assert.ok(statuses.some(([value, label]) => value === "active" && label === "Lo toma ahora"));
  assert.equal(formatValue("medication", "status", "active"), "Activo");
  assert.equal(formatValue("medication", "status", "no-such-code"), "no-such-code");
  assert.equal(fieldWord("medication", "strength"), "concentración");
  assert.equal(entityName(null), "un elemento");
  const med = { id: "m_1", type: "medication", data: { name: "Metformin" } };
  const event = { seq: 2, op: "set", outcome: "applied", entity_type: "medication", field: "strength", new: "750 mg", actor: { name: "Cal" } };
  assert.equal(describeEvent(event, med), "Cal cambió Metformin (concentración) a 750 mg");
  assert.equal(describeEvent({ ...event, actor: null, new: null }, med), "Alguien dejó en blanco Metformin (concentración)");
  assert.equal(
    describeMutation({ mutation_id: "p1-2", op: "add", entity: "problem", value: { category: "dosage-too-low" } }, null),
    "Agregar un problema «Dosis demasiado baja»",
  );
  assert.equal(describeProposed({ strength: "1000 mg", status: "stopped" }, { role: "patient" }), "concentración: 1000 mg · dejar de tomarlo");
  assert.equal(valueLabel("category", "nonadherence"), "Falta de adherencia");
  assert.equal(medFieldLabel("how_taken", true), "Cómo lo uso");
  assert.equal(medFieldNamed("strength", false, "Metformin"), "Concentración de Metformin");
  assert.equal(proposedLabel("strength"), "Nueva concentración");
  assert.equal(changedByText({ updated_by: { name: "Ana", role: "pharmacist" } }), "cambiado por Ana (farmacéutico)");
  assert.equal(patientProposalText("accepted", "concentración: 1000 mg"), "Su médico estuvo de acuerdo: concentración: 1000 mg");
  assert.equal(staffProposalText({ status: "declined", decided_by: "Dr Lee" }, "x"), "Rechazada por Dr Lee, sin cambios — x");
});

test("English stays the default where there is no page", () => {
  assert.equal(formatValue("medication", "adherence", "unknown", { role: "patient" }), "Not sure");
  assert.equal(medFieldNamed("why", true, "Metformin"), "Why I use Metformin");
  assert.equal(medFieldNamed("strength", false, "Metformin"), "Strength of Metformin");
  assert.equal(changedByText({ updated_by: { name: "Ana", role: "clinician" } }), "changed by Ana (clinician)");
  assert.equal(staffProposalText({ status: "accepted" }, "x"), "Accepted — x");
  assert.equal(describeEvent({ seq: 3, op: "add", outcome: "applied", entity_type: "plan_item", actor: { name: "Pat" } }, null), "Pat added an action plan item");
});

// @ts-check
// Shared by the panel's rows and sections: how medication fields are labelled, small
// wording helpers, a recommendation decision, and the row of a queued addition.

import { h, setText } from "./panel-dom.js";
import { fieldSpec, formatValue, PROPOSED_ORDER, required } from "./panel-schema.js";

/**
 * How each medication field is shown: its labels and, for text, a one-line input or a
 * textarea. Everything else (choices, transitions, lengths, required, who may change it)
 * comes from the server's schema (store.schema).
 */
// `named(name)` / `patientNamed(name)`: the label with the medication's name in it, as it
// reads in an editor's label ("How often I take Atorvastatin as directed"); without one,
// "<label> of <name>".
export const MED_FIELD_UI = {
  name: { label: "Name" },
  strength: { label: "Strength" },
  form: { label: "Form" },
  how_taken: {
    label: "How taken",
    patientLabel: "How I use it",
    multiline: true,
    named: (n) => `How ${n} is taken`,
    patientNamed: (n) => `How I use ${n}`,
  },
  why: { label: "Why", patientLabel: "Why I use it", named: (n) => `Why ${n} is taken`, patientNamed: (n) => `Why I use ${n}` },
  prescriber: { label: "Prescriber" },
  start_date: { label: "Start date" },
  stop_date: { label: "Stop date" },
  why_stopped: { label: "Why stopped", named: (n) => `Why ${n} was stopped` },
  rxnorm_code: { label: "RxNorm code" },
  status: { label: "Status" },
  kind: { label: "Kind" },
  adherence: {
    label: "Adherence",
    patientLabel: "How often I take it as directed",
    named: (n) => `Adherence to ${n}`,
    patientNamed: (n) => `How often I take ${n} as directed`,
  },
  patient_confirmation: { label: "Patient confirmation", empty: "Not confirmed yet" },
  patient_how_taken: { label: "Patient says", multiline: true, named: (n) => `How the patient says they take ${n}` },
  patient_note: {
    label: "Patient note",
    patientLabel: "My note",
    multiline: true,
    named: (n) => `Patient note on ${n}`,
    patientNamed: (n) => `My note on ${n}`,
  },
  notes: { label: "Notes", patientLabel: "From your care team", multiline: true, named: (n) => `Care team notes on ${n}` },
  notes_audience: { label: "Notes seen by", named: (n) => `Who sees the notes on ${n}` },
  source: { label: "Source", named: (n) => `Where the details of ${n} come from` },
};

// The proposed-value inputs of the recommendation form.
export const PROPOSED_LABELS = {
  name: "Medication to start",
  strength: "New strength",
  form: "New form",
  how_taken: "New directions (how taken)",
  why: "Why (indication)",
  stop_date: "Stop on",
  why_stopped: "Why stop",
};

// Medication fields a mutation may say the source of (the reconciled facts).
export const EDIT_MEDICATION = "edit_medication";

// The wire formats of the `date` and `rxnorm` value kinds (docs/protocol.md).
export const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
export const DIGITS_PATTERN = /^[0-9]+$/;

/** " (required)" after a form label when the server requires the field. */
export function requiredMark(schema, type, field) {
  return required(schema, type, field) ? " (required)" : "";
}

/** The `required` / `aria-required` attributes of a control, from the schema. */
export function requiredAttrs(schema, type, field) {
  return required(schema, type, field) ? { required: true, "aria-required": "true" } : {};
}

export function changedByText(entity) {
  const by = entity?.updated_by;
  if (!by?.name) return "";
  return `changed by ${by.name}${by.role ? ` (${by.role})` : ""}`;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The medication fields a recommendation may propose: the schema's list when it gives one
 * (`proposed.choices`: the fields a proposal may set), else the protocol's.
 */
export function proposedKeys(schema) {
  const spec = fieldSpec(schema, "recommendation", "proposed");
  const keys = spec?.choices ?? spec?.keys;
  return Array.isArray(keys) && keys.length ? keys : PROPOSED_ORDER;
}

/** The audience tag of a problem, recommendation, plan item or medication note. */
export function audienceText(value) {
  return formatValue("problem", "audience", value, { empty: "" });
}

/** "10 mg · tablet · “1 tablet every morning”": the values a patient confirmed. */
export function confirmedValuesText(values, role) {
  if (!values || typeof values !== "object") return "";
  const parts = [];
  if (values.strength) parts.push(values.strength);
  if (values.form) parts.push(values.form);
  if (values.how_taken) parts.push(`“${values.how_taken}”`);
  if (values.status && values.status !== "active") parts.push(formatValue("medication", "status", values.status, { role }));
  return parts.join(" · ");
}

/** A patient's line about a proposed change of one of their medications. */
export function patientProposalText(status, values) {
  if (status === "accepted") return `Your doctor agreed${values ? `: ${values}` : "."}`;
  if (status === "declined") return `Not changed${values ? ` (proposed: ${values})` : "."}`;
  return `Proposed — waiting for your doctor${values ? `: ${values}` : "."}`;
}

/** The care team's line about a recommendation linked to a medication. */
export function staffProposalText(data, values) {
  const change = data.change ? `${formatValue("recommendation", "change", data.change)}: ` : "";
  const state = {
    proposed: "Proposed, waiting for a decision",
    "no-response": "Proposed, no response yet",
    accepted: `Accepted${data.decided_by ? ` by ${data.decided_by}` : ""}`,
    declined: `Declined${data.decided_by ? ` by ${data.decided_by}` : ""}, not changed`,
  }[data.status] ?? formatValue("recommendation", "status", data.status);
  return `${state} — ${change}${values}`;
}

/** A decision on a recommendation: compare-and-set on the status version shown now. */
export function decide(store, entity, status) {
  return store.setField("recommendation", entity.id, "status", status, {
    baseVersion: entity.versions?.status ?? entity.created_seq,
  });
}

/** A queued addition not acknowledged yet: shown, marked, not editable. */
export function pendingRow(testid, text) {
  const title = h("span", { class: "mp-item__title" });
  const state = h("span", { class: "mp-pending" });
  const el = h("li", { class: "mp-item mp-item--pending", "data-testid": testid }, title, " ", state);
  return {
    el,
    update(label, waiting) {
      setText(title, label || text);
      setText(state, waiting ? "(waiting to be sent)" : "(sending…)");
    },
  };
}

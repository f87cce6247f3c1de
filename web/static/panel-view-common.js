// @ts-check
// Shared by the panel's rows and sections: how medication fields are labelled, small
// wording helpers, a recommendation decision, and the row of a queued addition.

import { h, setText } from "./panel-dom.js";
import { has, t } from "./i18n.js";
import { fieldSpec, fieldWord, formatValue, PROPOSED_ORDER, required } from "./panel-schema.js";

/**
 * How each medication field is shown: a one-line input or a textarea for text, and the
 * catalogue's words for it (medFieldLabel, medFieldNamed). Everything else (choices,
 * transitions, lengths, required, who may change it) comes from the server's schema
 * (store.schema). `empty`: the key of what an empty value reads as.
 * @type {Record<string, {multiline?: boolean, empty?: string}>}
 */
export const MED_FIELD_UI = {
  name: {},
  strength: {},
  form: {},
  how_taken: { multiline: true },
  why: {},
  prescriber: {},
  start_date: {},
  stop_date: {},
  why_stopped: {},
  rxnorm_code: {},
  status: {},
  kind: {},
  adherence: {},
  patient_confirmation: { empty: "panel.waiting.unconfirmed" },
  patient_how_taken: { multiline: true },
  patient_note: { multiline: true },
  notes: { multiline: true },
  notes_audience: {},
  source: {},
};

/**
 * A medication field's label ("Strength"; a patient's "How I use it"), the catalogue's
 * `panel.common.label.<field>` / `panel.common.label_patient.<field>`.
 * @param {string} field
 * @param {boolean} [patient]
 */
export function medFieldLabel(field, patient = false) {
  if (patient && has(`panel.common.label_patient.${field}`)) return t(`panel.common.label_patient.${field}`);
  if (has(`panel.common.label.${field}`)) return t(`panel.common.label.${field}`);
  return fieldWord("medication", field);
}

/**
 * The label with the medication's name in it, as it reads in an editor's label ("How
 * Atorvastatin is taken", "How I use Atorvastatin"); without one, "<label> of <name>".
 * @param {string} field
 * @param {boolean} patient
 * @param {string} name
 */
export function medFieldNamed(field, patient, name) {
  const key = patient ? `panel.common.named_patient.${field}` : `panel.common.named.${field}`;
  if (has(key)) return t(key, { name });
  if (patient && has(`panel.common.label_patient.${field}`)) return `${medFieldLabel(field, true)} (${name})`;
  return t("panel.common.label_of", { label: medFieldLabel(field, patient), name });
}

/**
 * The label of the recommendation form's input for a proposed `field` (null: none).
 * @param {string} field
 */
export function proposedLabel(field) {
  return has(`panel.common.proposed.${field}`) ? t(`panel.common.proposed.${field}`) : null;
}

// Medication fields a mutation may say the source of (the reconciled facts).
export const EDIT_MEDICATION = "edit_medication";

// The wire formats of the `date` and `rxnorm` value kinds (docs/protocol.md).
export const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
export const DIGITS_PATTERN = /^[0-9]+$/;

/** " (required)" after a form label when the server requires the field. */
export function requiredMark(schema, type, field) {
  return required(schema, type, field) ? ` ${t("panel.common.required")}` : "";
}

/** The `required` / `aria-required` attributes of a control, from the schema. */
export function requiredAttrs(schema, type, field) {
  return required(schema, type, field) ? { required: true, "aria-required": "true" } : {};
}

/** "changed by Ana (pharmacist)": who changed an entity last ("" when unknown). */
export function changedByText(entity) {
  const by = entity?.updated_by;
  if (!by?.name) return "";
  const role = by.role && has(`panel.common.role.${by.role}`) ? t(`panel.common.role.${by.role}`) : by.role;
  const name = role ? t("panel.common.with_role", { name: by.name, role }) : by.name;
  return t("panel.common.changed_by", { name });
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
  if (values.how_taken) parts.push(t("panel.common.quoted", { text: values.how_taken }));
  if (values.status && values.status !== "active") parts.push(formatValue("medication", "status", values.status, { role }));
  return parts.join(" · ");
}

/** A patient's line about a proposed change of one of their medications. */
export function patientProposalText(status, values) {
  const state = status === "accepted" || status === "declined" ? status : "proposed";
  const key = `panel.common.proposal.patient.${state}`;
  return values ? t(`${key}_values`, { values }) : t(key);
}

/** The care team's line about a recommendation linked to a medication. */
export function staffProposalText(data, values) {
  const change = data.change ? `${formatValue("recommendation", "change", data.change)}: ` : "";
  return `${staffProposalState(data)} — ${change}${values}`;
}

/** "Proposed, waiting for a decision", "Accepted by Dr Lee": where a recommendation stands. */
function staffProposalState(data) {
  const who = data.decided_by;
  switch (data.status) {
    case "proposed":
      return t("panel.common.proposal.staff.proposed");
    case "no-response":
      return t("panel.common.proposal.staff.no_response");
    case "accepted":
      return who ? t("panel.common.proposal.staff.accepted_by", { who }) : formatValue("recommendation", "status", "accepted");
    case "declined":
      return who ? t("panel.common.proposal.staff.declined_by", { who }) : t("panel.common.proposal.staff.declined");
    default:
      return formatValue("recommendation", "status", data.status);
  }
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
      setText(state, t(waiting ? "panel.common.pending.waiting" : "panel.common.pending.sending"));
    },
  };
}

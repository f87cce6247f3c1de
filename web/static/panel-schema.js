// @ts-check
// The medication panel's field rules as the browser needs them, read from the server:
// the join acknowledgement's `settings.panel_schema` (models/panel.py `schema()`) and
// `settings.may` (models/roles.py). docs/protocol.md, "Joining" and "Medication panel".
// Nothing here repeats a rule: every list of values, transition, compare-and-set flag,
// length limit and permission comes from those two objects. What stays here is wording.
// No DOM here: panel-store.js and the view modules (panel-view.js and its rows) use it.

import { has, t } from "./i18n.js";

/** @typedef {import("./panel-types.js").Entity} Entity */
/** @typedef {import("./panel-types.js").PanelEvent} PanelEvent */
/** @typedef {import("./panel-types.js").Mutation} Mutation */
/** @typedef {import("./panel-types.js").PanelSchema} PanelSchema */
/** @typedef {import("./panel-types.js").May} May */
/** @typedef {import("./panel-types.js").Settings} Settings */

export const ENTITY_TYPES = ["medication", "problem", "recommendation", "plan_item"];

/**
 * Checks the join acknowledgement's `settings` and returns `{schema, may}`; throws an Error
 * saying what is missing (the panel offers nothing it cannot derive from the server's rules).
 * @param {any} settings   checked here: anything else throws
 * @returns {{schema: PanelSchema, may: May}}
 */
export function readSettings(settings) {
  if (!settings || typeof settings !== "object") {
    throw new Error("Medication panel: `settings` from the join acknowledgement is required (settings.panel_schema and settings.may).");
  }
  const schema = settings.panel_schema;
  if (!schema || typeof schema !== "object") {
    throw new Error("Medication panel: settings.panel_schema is missing; pass the join acknowledgement's `settings`.");
  }
  const may = settings.may;
  if (!may || typeof may !== "object") {
    throw new Error("Medication panel: settings.may is missing; pass the join acknowledgement's `settings`.");
  }
  const missing = ENTITY_TYPES.filter((type) => !schema[type] || typeof schema[type].fields !== "object" || !schema[type].fields);
  if (missing.length) {
    throw new Error(`Medication panel: settings.panel_schema has no fields for ${missing.join(", ")}.`);
  }
  return { schema, may };
}

/**
 * The server's description of one field (`FieldSpec.describe()`), or null if unknown.
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function fieldSpec(schema, type, field) {
  return schema?.[type]?.fields?.[field] ?? null;
}

/**
 * The allowed values of a choice field, in the server's order (null: not a choice field).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function choicesFor(schema, type, field) {
  const choices = fieldSpec(schema, type, field)?.choices;
  return Array.isArray(choices) ? [...choices] : null;
}

/**
 * The value a field gets when an `add` leaves it out.
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function defaultFor(schema, type, field) {
  return fieldSpec(schema, type, field)?.default ?? null;
}

/**
 * Required at creation (an `add` without it is refused; it can never be emptied).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function required(schema, type, field) {
  return fieldSpec(schema, type, field)?.required === true;
}

/**
 * Whether the field may be null: neither required nor given a default (the server gives
 * every field that may not be null a value at creation).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function nullable(schema, type, field) {
  const spec = fieldSpec(schema, type, field);
  return Boolean(spec) && spec.required !== true && (spec.default === null || spec.default === undefined);
}

/**
 * The longest text the server accepts for the field (null: no limit, or not text).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function maxLength(schema, type, field) {
  const max = fieldSpec(schema, type, field)?.max_length;
  return Number.isInteger(max) ? max : null;
}

/**
 * The field's value kind: `text`, `choice`, `date`, `rxnorm` or `ids` (null: unknown).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function valueKind(schema, type, field) {
  return fieldSpec(schema, type, field)?.kind ?? null;
}

/**
 * The values `current` of `field` may change to (an empty list: final, or no transition
 * rules), in the order of the field's choices.
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 * @param {string | null | undefined} current
 */
export function nextValues(schema, type, field, current) {
  const next = schema?.[type]?.transitions?.[field]?.[current ?? ""];
  if (!Array.isArray(next)) return [];
  const order = choicesFor(schema, type, field) ?? [];
  const rank = (value) => {
    const i = order.indexOf(value);
    return i === -1 ? order.length : i;
  };
  return next
    .map((value, i) => /** @type {[string, number]} */ ([value, i]))
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
    .map(([value]) => value);
}

/**
 * Whether changes of `field` of a `type` follow transition rules (a status workflow).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function hasTransitions(schema, type, field) {
  const table = schema?.[type]?.transitions?.[field];
  return Boolean(table) && typeof table === "object";
}

/**
 * The statuses `current` may change to (an empty list: final).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string | null | undefined} current
 */
export function nextStatuses(schema, type, current) {
  return nextValues(schema, type, "status", current);
}

/**
 * Compare-and-set fields: a `set` must carry `base_version`.
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function isCompareAndSet(schema, type, field) {
  return fieldSpec(schema, type, field)?.compare_and_set === true;
}

/**
 * The Action (a `settings.may` key) needed to change `field` of a `type` (null: unknown field).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function actionFor(schema, type, field) {
  return fieldSpec(schema, type, field)?.action ?? null;
}

/**
 * May this participant change `field` of a `type`?
 * @param {May} may
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 */
export function mayChange(may, schema, type, field) {
  const action = actionFor(schema, type, field);
  return action !== null && may?.[action] === true;
}

/**
 * May this participant create (and reorder) entities of `type`?
 * @param {May} may
 * @param {PanelSchema | null} schema
 * @param {string} type
 */
export function mayCreate(may, schema, type) {
  const action = schema?.[type]?.create_action;
  return typeof action === "string" && may?.[action] === true;
}

/**
 * What this participant may do, bound to the join acknowledgement's `settings.may` and
 * `settings.panel_schema` (docs/protocol.md: "offer no control the server would refuse").
 * @param {May} may
 * @param {PanelSchema | null} schema
 */
export function permissions(may, schema) {
  return {
    edit: (type, field) => mayChange(may, schema, type, field),
    create: (type) => mayCreate(may, schema, type),
    history: () => may?.read_audit === true,
    decide: () => mayChange(may, schema, "recommendation", "status"),
  };
}

// ---- words ---------------------------------------------------------------------------
// The words are the catalogue's (web/static/messages), looked up when they are used, so
// they read in the page's language. Keys are made of the schema's names and codes:
// `panel.schema.<type>.<field>` (a field inside a sentence), `panel.schema.value.<table>.<code>`
// (a value); the codes themselves are the server's and are never translated.

/**
 * A field's name as it reads inside a sentence ("changed Metformin strength to …"); for a
 * patient, in plain language where it has one.
 * @param {string} type
 * @param {string} field
 * @param {string} [role]
 */
export function fieldWord(type, field, role) {
  const patientKey = `panel.schema.medication_patient.${field}`;
  if (role === "patient" && type === "medication" && has(patientKey)) return t(patientKey);
  const key = `panel.schema.${type}.${field}`;
  return ENTITY_TYPES.includes(type) && has(key) ? t(key) : String(field);
}

/**
 * "a problem", "an action plan item": an entity of `type`, not yet named.
 * @param {string} type
 */
export function typeWithArticle(type) {
  const key = `panel.schema.indefinite.${type}`;
  return t(has(key) ? key : "panel.schema.indefinite.item");
}

/** Which value table names the values of `field` of `type`. */
function labelTable(type, field) {
  if (type === "problem" && field === "status") return "problem_status";
  if (type === "recommendation" && field === "status") return "rec_status";
  if (field === "notes_audience") return "audience";
  return field;
}

/**
 * The label of a value of `table` (null: no label for it); a patient's words for their
 * medications where there are some.
 * @param {string} table
 * @param {string} value
 * @param {boolean} [patient]
 */
export function valueLabel(table, value, patient = false) {
  const patientKey = `panel.schema.value_patient.${table}.${value}`;
  if (patient && has(patientKey)) return t(patientKey);
  const key = `panel.schema.value.${table}.${value}`;
  return has(key) ? t(key) : null;
}

/**
 * A value as a person reads it (null/empty → `empty`).
 * @param {string} type
 * @param {string} field
 * @param {any} value
 * @param {{role?: string, empty?: string}} [options]
 */
export function formatValue(type, field, value, { role = "", empty = "—" } = {}) {
  if (value === null || value === undefined || value === "") return empty;
  if (Array.isArray(value)) return value.length ? value.join(", ") : empty;
  if (typeof value === "object") {
    if (type === "recommendation" && field === "proposed") return describeProposed(value, { role }) || empty;
    return JSON.stringify(value);
  }
  const label = valueLabel(labelTable(type, field), String(value), role === "patient" && type === "medication");
  return label ?? String(value);
}

/**
 * The options of a choice field as [value, label] pairs, in the server's order, with null
 * first where the field may be cleared (null: not a choice field).
 * @param {PanelSchema | null} schema
 * @param {string} type
 * @param {string} field
 * @param {string} [role]
 */
export function choiceOptions(schema, type, field, role = "") {
  const values = choicesFor(schema, type, field);
  if (!values) return null;
  if (nullable(schema, type, field)) values.unshift(null);
  return values.map((value) => [value, value === null ? t("panel.schema.not_recorded") : formatValue(type, field, value, { role })]);
}

/**
 * Plain string comparison of position, then id (never locale-aware).
 * @param {Entity} a
 * @param {Entity} b
 */
export function compareEntities(a, b) {
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

/**
 * A short name for an entity in sentences and notices.
 * @param {Entity | null | undefined} entity
 */
export function entityName(entity) {
  if (!entity) return t("panel.schema.indefinite.item");
  const data = entity.data ?? {};
  switch (entity.type) {
    case "medication":
      return data.name || t("panel.schema.indefinite.medication");
    case "problem":
      return t("panel.schema.name.problem", { category: formatValue("problem", "category", data.category) });
    case "recommendation":
      return t("panel.schema.name.recommendation", { text: shorten(data.text) });
    case "plan_item":
      return t("panel.schema.name.plan_item", { text: shorten(data.talked_about) });
    default:
      return t("panel.schema.indefinite.item");
  }
}

/** @param {string | null | undefined} text @param {number} [max] */
export function shorten(text, max = 48) {
  const value = String(text ?? "");
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

// ---- proposed changes ----------------------------------------------------------------------

/** The medication fields a recommendation may propose, in the order they are read out. */
export const PROPOSED_ORDER = ["name", "strength", "form", "how_taken", "why", "status", "stop_date", "why_stopped"];
// Free text is quoted inside a sentence; short values are not.
const QUOTED_FIELDS = new Set(["how_taken", "why", "why_stopped"]);

/**
 * "strength 1000 mg · how taken “1 tablet twice daily”": what a recommendation proposes,
 * as a reader of `role` reads it ("" when nothing is proposed).
 * @param {Record<string, any> | null | undefined} proposed
 * @param {{role?: string}} [options]
 */
export function describeProposed(proposed, { role = "" } = {}) {
  if (!proposed || typeof proposed !== "object") return "";
  const keys = [...PROPOSED_ORDER.filter((k) => k in proposed), ...Object.keys(proposed).filter((k) => !PROPOSED_ORDER.includes(k))];
  const parts = [];
  for (const key of keys) {
    const value = proposed[key];
    if (value === null || value === undefined || value === "") continue;
    if (key === "status") {
      // A proposed status as a patient reads it (`panel.schema.proposed.patient.<status>`):
      // never "Taking now" for something not decided.
      const patientKey = `panel.schema.proposed.patient.${value}`;
      if (role !== "patient") parts.push(t("panel.schema.proposed.status", { value: formatValue("medication", key, value) }));
      else parts.push(has(patientKey) ? t(patientKey) : formatValue("medication", key, value));
      continue;
    }
    const shown = formatValue("medication", key, value, { role });
    const words = QUOTED_FIELDS.has(key) ? "panel.schema.proposed.quoted" : "panel.schema.proposed.value";
    parts.push(t(words, { field: fieldWord("medication", key, role), value: shown }));
  }
  return parts.join(" · ");
}

// ---- open items ("waiting for you") ---------------------------------------------------------

// The same rule as the server's models/open_items (docs/protocol.md, "Open items").
const UNDECIDED = new Set(["proposed", "no-response"]);
const CONFIRMABLE_STATUSES = new Set(["active", "on-hold"]);
const UNCONFIRMED = new Set([null, undefined, "needs-confirming"]);

/**
 * What is still open on the panel: `toDecide` (recommendations waiting for the clinician's
 * decision) and `toConfirm` (medications the patient has not confirmed, or must confirm
 * again), each in list order. `role` keeps what that reader acts on: a clinician decides,
 * a patient confirms, a pharmacist (or no role given) sees both.
 * @param {Iterable<Entity> | null | undefined} entities
 * @param {string} [role]
 * @param {PanelSchema | null} [schema]
 */
export function openItems(entities, role = "", schema = null) {
  const toDecide = [];
  const toConfirm = [];
  // The server's rule (panel schema) when given; the same rule written here otherwise.
  const decide = schema?.recommendation?.to_decide;
  const confirm = schema?.medication?.to_confirm;
  const undecided = decide ? new Set(decide.statuses) : UNDECIDED;
  const confirmable = confirm ? new Set(confirm.statuses) : CONFIRMABLE_STATUSES;
  const unconfirmed = confirm ? new Set([undefined, ...confirm.confirmations]) : UNCONFIRMED;
  for (const entity of entities ?? []) {
    const data = entity?.data ?? {};
    if (entity?.type === "recommendation" && undecided.has(data.status)) toDecide.push(entity);
    else if (
      entity?.type === "medication" &&
      confirmable.has(data.status) &&
      unconfirmed.has(data.patient_confirmation)
    ) {
      toConfirm.push(entity);
    }
  }
  toDecide.sort(compareEntities);
  toConfirm.sort(compareEntities);
  return {
    toDecide: role === "patient" ? [] : toDecide,
    toConfirm: role === "clinician" ? [] : toConfirm,
  };
}

// ---- sentences ------------------------------------------------------------------------------

/**
 * Why a derived event happened, for a sentence: "because strength changed", "from an accepted
 * recommendation". `cause` is the event with seq `detail.cause_seq`, when known.
 * @param {PanelEvent | null | undefined} event
 * @param {PanelEvent | null} cause
 * @param {string} [role]
 */
export function derivedReason(event, cause, role = "") {
  const reason = event?.detail?.reason;
  if (reason === "confirmation-reset") {
    // The server names the changed field (`detail.changed`); the cause event says it too.
    const changed = event.detail?.changed ?? cause?.field;
    const field = changed ? fieldWord("medication", changed, role) : "";
    return field ? t("panel.schema.reason.field_changed", { field }) : t("panel.schema.reason.confirmed_changed");
  }
  if (reason === "recommendation-accepted") return t("panel.schema.reason.recommendation_accepted");
  return "";
}

// A sentence ending in an empty reason: "… was added ." → "… was added."
const tidy = (sentence) => sentence.replace(/\s+\./, ".");

/**
 * The sentence announced when someone else's change arrives, or null for nothing to say.
 * `entity` is the entity after the change; `role` is the reader's role; `cause` (for a
 * derived event) is the event that caused it, when known.
 * @param {PanelEvent | null | undefined} event
 * @param {Entity | null | undefined} entity
 * @param {string} [role]
 * @param {PanelEvent | null} [cause]
 */
export function describeEvent(event, entity, role = "", cause = null) {
  if (!event || event.outcome !== "applied") return null;
  if (event.op === "hidden" || event.op === "remove") return null;
  const who = event.actor?.name || t("panel.common.someone");
  const type = event.entity_type;
  if (event.op === "derived") {
    const why = derivedReason(event, cause, role);
    const name = entityName(entity);
    if (event.detail?.reason === "confirmation-reset") {
      return role === "patient"
        ? t("panel.schema.event.check_again", { name })
        : tidy(t("panel.schema.event.needs_confirming", { name, why }));
    }
    if (event.field === null || event.field === undefined) return tidy(t("panel.schema.event.derived_added", { name, why }));
    const value = formatValue(type, event.field, event.new, { role, empty: t("panel.common.empty") });
    return tidy(t("panel.schema.event.derived_set", { name, field: fieldWord(type, event.field, role), value, why }));
  }
  if (event.op === "add") {
    return t("panel.schema.event.added", { who, item: type === "medication" ? entityName(entity) : typeWithArticle(type) });
  }
  if (event.op === "move") return t("panel.schema.event.moved", { who, name: entityName(entity) });
  if (type === "recommendation" && event.field === "status") {
    const key = `panel.schema.event.decision.${event.new}`;
    return t(has(key) ? key : "panel.schema.event.decision.other", { who, name: entityName(entity) });
  }
  const name =
    type === "medication" && event.field === "name" ? event.old || t("panel.schema.indefinite.medication") : entityName(entity);
  const field = fieldWord(type, event.field, role);
  const overrode = event.detail?.overrode?.actor?.name;
  const replacing = overrode ? t("panel.schema.event.replacing", { name: overrode }) : "";
  if (event.new === null || event.new === undefined || event.new === "") {
    return t("panel.schema.event.cleared", { who, name, field, replacing });
  }
  const value = formatValue(type, event.field, event.new, { role });
  return t("panel.schema.event.changed", { who, name, field, value, replacing });
}

/**
 * "Metformin: strength → 1000 mg": what a queued mutation does, for notices.
 * @param {Mutation} mutation
 * @param {Entity | null | undefined} entity
 * @param {string} [role]
 */
export function describeMutation(mutation, entity, role = "") {
  const type = mutation.entity;
  if (mutation.op === "add") {
    const value = mutation.value ?? {};
    const what = value.name || value.text || value.talked_about || formatValue(type, "category", value.category, { empty: "" });
    const item = typeWithArticle(type);
    return what ? t("panel.schema.mutation.add_named", { item, what: shorten(what) }) : t("panel.schema.mutation.add", { item });
  }
  if (mutation.op === "move") return t("panel.schema.mutation.move", { name: entityName(entity) });
  const name = entityName(entity);
  const field = fieldWord(type, mutation.field, role);
  const value = formatValue(type, mutation.field, mutation.value, { role, empty: t("panel.common.empty") });
  return `${name}: ${field} → ${value}`;
}

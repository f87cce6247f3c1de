// The medication panel's field rules as the browser needs them (docs/protocol.md,
// "Medication panel"; models/panel.py and models/roles.py are the source of truth).
// No DOM here: panel-store.js and panel-view.js both use it.

export const MED_STATUSES = ["active", "stopped", "on-hold", "entered-in-error", "not-taken"];
export const MED_KINDS = ["prescription", "otc", "herbal", "vitamin", "mineral"];
export const ADHERENCE = ["as-prescribed", "sometimes-missed", "often-missed", "not-taking", "unknown"];
export const CONFIRMATIONS = ["confirmed", "corrected"];
export const PROBLEM_CATEGORIES = [
  "unnecessary-therapy",
  "needs-additional-therapy",
  "ineffective-drug",
  "dosage-too-low",
  "adverse-drug-reaction",
  "dosage-too-high",
  "nonadherence",
];
export const SEVERITIES = ["low", "moderate", "high"];
export const PROBLEM_STATUSES = ["open", "resolved"];
export const REC_TARGETS = ["prescriber", "patient"];

/** Which status may follow which (anything else is refused with invalid_transition). */
export const TRANSITIONS = {
  medication: {
    active: ["stopped", "on-hold", "entered-in-error", "not-taken"],
    "on-hold": ["active", "stopped", "entered-in-error"],
    stopped: ["active", "entered-in-error"],
    "not-taken": ["active", "entered-in-error"],
    "entered-in-error": [],
  },
  recommendation: {
    proposed: ["accepted", "declined", "no-response"],
    "no-response": ["accepted", "declined"],
    accepted: [],
    declined: [],
  },
};

/** The statuses `current` may change to (an empty list: final). */
export function nextStatuses(type, current) {
  return TRANSITIONS[type]?.[current ?? ""] ?? [];
}

/** Compare-and-set fields: a `set` must carry `base_version`. */
export const CAS_FIELDS = {
  medication: new Set(["strength", "how_taken", "stop_date", "status"]),
  problem: new Set(),
  recommendation: new Set(["status"]),
  plan_item: new Set(),
};

export function isCompareAndSet(type, field) {
  return CAS_FIELDS[type]?.has(field) ?? false;
}

// Medication fields everyone may change (Action.CONFIRM_HOW_TAKEN).
export const PATIENT_FIELDS = new Set(["adherence", "patient_confirmation", "patient_how_taken", "patient_note"]);

// The default permission matrix (DESIGN.md, models/roles.py), for when the join
// acknowledgement carries no `settings.may`.
const DEFAULT_MAY = {
  pharmacist: { edit_medication: true, annotate: true, decide_recommendation: false, confirm_how_taken: true, read_audit: true },
  clinician: { edit_medication: true, annotate: true, decide_recommendation: true, confirm_how_taken: true, read_audit: true },
  patient: { edit_medication: false, annotate: false, decide_recommendation: false, confirm_how_taken: true, read_audit: false },
};

/** The Action (models/roles.py) that governs a change of `field` of a `type`. */
export function actionFor(type, field) {
  if (type === "medication") return PATIENT_FIELDS.has(field) ? "confirm_how_taken" : "edit_medication";
  if (type === "recommendation" && field === "status") return "decide_recommendation";
  return "annotate";
}

/**
 * What this participant may do: from the join acknowledgement's `settings.may` when given
 * (docs/protocol.md: "offer no control the server would refuse"), else the default matrix.
 */
export function permissions(role, may = null) {
  const table = may && typeof may === "object" ? may : DEFAULT_MAY[role] ?? {};
  const allowed = (action) => table[action] === true;
  return {
    edit: (type, field) => allowed(actionFor(type, field)),
    create: (type) => allowed(type === "medication" ? "edit_medication" : "annotate"),
    history: () => allowed("read_audit"),
    decide: () => allowed("decide_recommendation"),
  };
}

// ---- words ---------------------------------------------------------------------------

/** Field names as they read inside a sentence ("changed Metformin strength to …"). */
export const FIELD_WORDS = {
  medication: {
    name: "name",
    strength: "strength",
    form: "form",
    rxnorm_code: "RxNorm code",
    how_taken: "how taken",
    why: "why",
    prescriber: "prescriber",
    start_date: "start date",
    stop_date: "stop date",
    why_stopped: "why stopped",
    status: "status",
    kind: "kind",
    adherence: "adherence",
    patient_confirmation: "patient confirmation",
    patient_how_taken: "how the patient takes it",
    patient_note: "patient note",
    notes: "notes",
    position: "position",
  },
  problem: {
    category: "category",
    description: "description",
    medication_ids: "linked medications",
    severity: "severity",
    status: "status",
    position: "position",
  },
  recommendation: {
    text: "text",
    to: "recipient",
    problem_id: "linked problem",
    status: "decision",
    position: "position",
  },
  plan_item: {
    talked_about: "what we talked about",
    to_do: "what I need to do",
    what_i_did: "what I did",
    position: "position",
  },
};

/** The same words for a patient, in plain language. */
export const PATIENT_FIELD_WORDS = {
  how_taken: "instructions",
  why: "reason",
  patient_how_taken: "how you take it",
  patient_note: "note",
  patient_confirmation: "confirmation",
  adherence: "how often you take it",
};

export function fieldWord(type, field, role) {
  if (role === "patient" && type === "medication" && PATIENT_FIELD_WORDS[field]) {
    return PATIENT_FIELD_WORDS[field];
  }
  return FIELD_WORDS[type]?.[field] ?? String(field);
}

export const TYPE_WORDS = {
  medication: "medication",
  problem: "problem",
  recommendation: "recommendation",
  plan_item: "action plan item",
};

export const VALUE_LABELS = {
  status: {
    active: "Active",
    stopped: "Stopped",
    "on-hold": "On hold",
    "entered-in-error": "Entered in error",
    "not-taken": "Not taken",
  },
  kind: {
    prescription: "Prescription",
    otc: "Over the counter",
    herbal: "Herbal",
    vitamin: "Vitamin",
    mineral: "Mineral",
  },
  adherence: {
    "as-prescribed": "Takes it as directed",
    "sometimes-missed": "Sometimes missed",
    "often-missed": "Often missed",
    "not-taking": "Not taking it",
    unknown: "Unknown",
  },
  patient_confirmation: {
    confirmed: "Confirmed by patient",
    corrected: "Corrected by patient",
  },
  category: {
    "unnecessary-therapy": "Unnecessary drug therapy",
    "needs-additional-therapy": "Needs additional drug therapy",
    "ineffective-drug": "Ineffective drug",
    "dosage-too-low": "Dosage too low",
    "adverse-drug-reaction": "Adverse drug reaction",
    "dosage-too-high": "Dosage too high",
    nonadherence: "Nonadherence",
  },
  severity: { low: "Low", moderate: "Moderate", high: "High" },
  problem_status: { open: "Open", resolved: "Resolved" },
  to: { prescriber: "To prescriber", patient: "To patient" },
  rec_status: {
    proposed: "Proposed",
    accepted: "Accepted",
    declined: "Declined",
    "no-response": "No response",
  },
};

// What a patient reads for the same values.
export const PATIENT_VALUE_LABELS = {
  status: {
    active: "Taking now",
    stopped: "Stopped",
    "on-hold": "Paused for now",
    "entered-in-error": "Listed by mistake",
    "not-taken": "Not taking",
  },
  kind: {
    prescription: "Prescription",
    otc: "Bought without a prescription",
    herbal: "Herbal",
    vitamin: "Vitamin",
    mineral: "Mineral",
  },
  adherence: {
    "as-prescribed": "Every time, as directed",
    "sometimes-missed": "I sometimes miss it",
    "often-missed": "I often miss it",
    "not-taking": "I am not taking it",
    unknown: "Not sure",
  },
};

/** Which VALUE_LABELS table names the values of `field` of `type`. */
function labelTable(type, field) {
  if (type === "problem" && field === "status") return "problem_status";
  if (type === "recommendation" && field === "status") return "rec_status";
  return field;
}

/** A value as a person reads it (null/empty → `empty`). */
export function formatValue(type, field, value, { role = "", empty = "—" } = {}) {
  if (value === null || value === undefined || value === "") return empty;
  if (Array.isArray(value)) return value.length ? value.join(", ") : empty;
  if (typeof value === "object") return JSON.stringify(value);
  const table = labelTable(type, field);
  const label =
    (role === "patient" && type === "medication" && PATIENT_VALUE_LABELS[table]?.[value]) ||
    VALUE_LABELS[table]?.[value];
  return label ?? String(value);
}

/** The options of a choice field: [value, label] pairs (null first where it may be cleared). */
export function choicesOf(type, field, role = "") {
  const values = {
    "medication.status": MED_STATUSES,
    "medication.kind": MED_KINDS,
    "medication.adherence": [null, ...ADHERENCE],
    "medication.patient_confirmation": [null, ...CONFIRMATIONS],
    "problem.category": PROBLEM_CATEGORIES,
    "problem.severity": SEVERITIES,
    "problem.status": PROBLEM_STATUSES,
    "recommendation.to": REC_TARGETS,
  }[`${type}.${field}`];
  if (!values) return null;
  return values.map((value) => [value, value === null ? "Not recorded" : formatValue(type, field, value, { role })]);
}

/** Plain string comparison of position, then id (never locale-aware). */
export function compareEntities(a, b) {
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

/** A short name for an entity in sentences and notices. */
export function entityName(entity) {
  if (!entity) return "an item";
  const data = entity.data ?? {};
  switch (entity.type) {
    case "medication":
      return data.name || "a medication";
    case "problem":
      return `problem “${formatValue("problem", "category", data.category)}”`;
    case "recommendation":
      return `recommendation “${shorten(data.text)}”`;
    case "plan_item":
      return `action plan item “${shorten(data.talked_about)}”`;
    default:
      return "an item";
  }
}

export function shorten(text, max = 48) {
  const value = String(text ?? "");
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

const DECISION_VERBS = { accepted: "accepted", declined: "declined", "no-response": "marked no response on" };

/**
 * The sentence announced when someone else's change arrives, or null for nothing to say.
 * `entity` is the entity after the change; `role` is the reader's role.
 */
export function describeEvent(event, entity, role = "") {
  if (!event || event.outcome !== "applied") return null;
  const who = event.actor?.name || "Someone";
  const type = event.entity_type;
  if (event.op === "add") {
    return `${who} added ${type === "medication" ? entityName(entity) : `a ${TYPE_WORDS[type] ?? "item"}`}`;
  }
  if (event.op === "move") return `${who} moved ${entityName(entity)}`;
  if (type === "recommendation" && event.field === "status") {
    return `${who} ${DECISION_VERBS[event.new] ?? "changed"} ${entityName(entity)}`;
  }
  const name = type === "medication" && event.field === "name" ? event.old || "a medication" : entityName(entity);
  const field = fieldWord(type, event.field, role);
  if (event.new === null || event.new === undefined || event.new === "") {
    return `${who} cleared ${name} ${field}`;
  }
  return `${who} changed ${name} ${field} to ${formatValue(type, event.field, event.new, { role })}`;
}

/** "Metformin strength → 1000 mg": what a queued mutation does, for notices. */
export function describeMutation(mutation, entity, role = "") {
  const type = mutation.entity;
  if (mutation.op === "add") {
    const value = mutation.value ?? {};
    const what = value.name || value.text || value.talked_about || formatValue(type, "category", value.category, { empty: "" });
    return `Add ${TYPE_WORDS[type] ?? "item"}${what ? ` “${shorten(what)}”` : ""}`;
  }
  if (mutation.op === "move") return `Move ${entityName(entity)}`;
  const name = entityName(entity);
  const field = fieldWord(type, mutation.field, role);
  const value = formatValue(type, mutation.field, mutation.value, { role, empty: "(empty)" });
  return `${name}: ${field} → ${value}`;
}

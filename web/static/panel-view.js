// The medication panel's DOM: the "waiting for you" section, medication cards with inline
// editing, conflict prompts, override notices, history drawers, the patient's
// plain-language view, and the problem / recommendation / action plan sections. Everything it shows comes from a PanelStore (panel-store.js);
// everything a person does becomes a store call. Rows are kept by entity id and updated in
// place, so an open editor, its typed text and the keyboard focus survive incoming changes.

import { formatTime, h, labelled, selectOf, setAttr, setText, show, syncChildren, uid } from "./panel-dom.js";
import {
  actionFor,
  choiceOptions,
  defaultFor,
  derivedReason,
  describeProposed,
  fieldSpec,
  formatValue,
  hasTransitions,
  isCompareAndSet,
  maxLength,
  nextStatuses,
  nextValues,
  PROPOSED_ORDER,
  required,
  shorten,
  valueKind,
  VALUE_LABELS,
  fieldWord,
} from "./panel-schema.js";

/**
 * How each medication field is shown: its labels and, for text, a one-line input or a
 * textarea. Everything else (choices, transitions, lengths, required, who may change it)
 * comes from the server's schema (store.schema).
 */
// `named(name)` / `patientNamed(name)`: the label with the medication's name in it, as it
// reads in an editor's label ("How often I take Atorvastatin as directed"); without one,
// "<label> of <name>".
const MED_FIELD_UI = {
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
const PROPOSED_LABELS = {
  name: "Medication to start",
  strength: "New strength",
  form: "New form",
  how_taken: "New directions (how taken)",
  why: "Why (indication)",
  stop_date: "Stop on",
  why_stopped: "Why stop",
};

// Medication fields a mutation may say the source of (the reconciled facts).
const EDIT_MEDICATION = "edit_medication";

// The wire formats of the `date` and `rxnorm` value kinds (docs/protocol.md).
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const DIGITS_PATTERN = /^[0-9]+$/;

/** " (required)" after a form label when the server requires the field. */
function requiredMark(schema, type, field) {
  return required(schema, type, field) ? " (required)" : "";
}

/** The `required` / `aria-required` attributes of a control, from the schema. */
function requiredAttrs(schema, type, field) {
  return required(schema, type, field) ? { required: true, "aria-required": "true" } : {};
}

function changedByText(entity) {
  const by = entity?.updated_by;
  if (!by?.name) return "";
  return `changed by ${by.name}${by.role ? ` (${by.role})` : ""}`;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The medication fields a recommendation may propose: the schema's list when it gives one
 * (`proposed.choices`: the fields a proposal may set), else the protocol's.
 */
function proposedKeys(schema) {
  const spec = fieldSpec(schema, "recommendation", "proposed");
  const keys = spec?.choices ?? spec?.keys;
  return Array.isArray(keys) && keys.length ? keys : PROPOSED_ORDER;
}

/** The audience tag of a problem, recommendation, plan item or medication note. */
function audienceText(value) {
  return formatValue("problem", "audience", value, { empty: "" });
}

/** "10 mg · tablet · “1 tablet every morning”": the values a patient confirmed. */
function confirmedValuesText(values, role) {
  if (!values || typeof values !== "object") return "";
  const parts = [];
  if (values.strength) parts.push(values.strength);
  if (values.form) parts.push(values.form);
  if (values.how_taken) parts.push(`“${values.how_taken}”`);
  if (values.status && values.status !== "active") parts.push(formatValue("medication", "status", values.status, { role }));
  return parts.join(" · ");
}

/** A patient's line about a proposed change of one of their medications. */
function patientProposalText(status, values) {
  if (status === "accepted") return `Your doctor agreed${values ? `: ${values}` : "."}`;
  if (status === "declined") return `Not changed${values ? ` (proposed: ${values})` : "."}`;
  return `Proposed — waiting for your doctor${values ? `: ${values}` : "."}`;
}

/** The care team's line about a recommendation linked to a medication. */
function staffProposalText(data, values) {
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
function decide(store, entity, status) {
  return store.setField("recommendation", entity.id, "status", status, {
    baseVersion: entity.versions?.status ?? entity.created_seq,
  });
}

// ---- override notice -------------------------------------------------------------------

/**
 * "<name> replaced your <field> “<mine>” with “<theirs>”", next to the field, until
 * dismissed (the author of the replaced value sees it; both values stay in the history).
 */
class OverrideSlot {
  constructor(view, type, field, focusAfter) {
    this.view = view;
    this.type = type;
    this.field = field;
    this.focusAfter = focusAfter;
    this.el = h("div", { class: "mp-override-slot" });
    this.key = "";
  }

  update(entityId) {
    const notices = this.view.store.overridesFor(entityId, this.field);
    const key = notices.map((n) => n.id).join(" ");
    if (key === this.key) return;
    this.key = key;
    const hadFocus = this.el.contains(document.activeElement);
    const role = this.view.role;
    const word = fieldWord(this.type, this.field, role);
    const fmt = (value) => formatValue(this.type, this.field, value, { role, empty: "(empty)" });
    this.el.replaceChildren(
      ...notices.map((notice) => {
        const who = notice.by?.name || "Someone";
        const text = h("p", {
          class: "mp-override__text",
          id: uid("mp-override"),
          text: `${who}${notice.by?.role ? ` (${notice.by.role})` : ""} replaced your ${word} “${fmt(notice.mine)}” with “${fmt(notice.theirs)}”.`,
        });
        const when = notice.at ? formatTime(notice.at) : null;
        return h(
          "div",
          { class: "mp-override", role: "group", "aria-labelledby": text.id, "data-testid": "override-notice", "data-field": this.field },
          text,
          h("p", {
            class: "mp-override__meta",
            text: `${when ? `${when.short} · ` : ""}They chose their value after a conflict. Both values are kept in the history.`,
          }),
          h(
            "div",
            { class: "mp-actions" },
            h("button", {
              type: "button",
              class: "mp-btn mp-btn--small",
              "data-testid": "override-dismiss",
              "aria-label": `Dismiss: ${who} replaced your ${word}`,
              text: "Dismiss",
              onclick: () => this.view.store.dismissOverride(notice.id),
            }),
          ),
        );
      }),
    );
    if (hadFocus && !this.el.contains(document.activeElement)) this.focusAfter();
  }
}

// ---- conflict prompt -------------------------------------------------------------------

/**
 * "Changed by <name> while you were editing": both values, Keep theirs / Use mine.
 * `onDone(focusTarget?)` runs after either button.
 */
function conflictPrompt(view, conflict, onDone) {
  const { type, field } = conflict;
  const role = view.role;
  const theirs = formatValue(type, field, conflict.theirs, { role, empty: "(empty)" });
  const mine = formatValue(type, field, conflict.mine, { role, empty: "(empty)" });
  const title = h("p", {
    class: "mp-conflict__title",
    id: uid("mp-conflict"),
    text: `Changed by ${conflict.by?.name || "someone else"} while you were editing`,
  });
  const values = h(
    "dl",
    { class: "mp-conflict__values" },
    h("div", {}, h("dt", { text: "Theirs (saved)" }), h("dd", { "data-testid": "conflict-theirs", text: theirs })),
    h("div", {}, h("dt", { text: "Yours (not saved)" }), h("dd", { "data-testid": "conflict-mine", text: mine })),
  );
  const statusField = hasTransitions(view.schema, type, field);
  const mineAllowed =
    !view.store.readOnly &&
    view.may.edit(type, field) &&
    (statusField ? nextValues(view.schema, type, field, conflict.theirs).includes(conflict.mine) : theirs !== mine);
  const keep = h("button", {
    type: "button",
    class: "mp-btn mp-btn--small",
    "data-testid": "keep-theirs",
    text: "Keep theirs",
    onclick: () => {
      view.store.keepTheirs(conflict.entity_id, field);
      onDone();
    },
  });
  const useMine = h("button", {
    type: "button",
    class: "mp-btn mp-btn--small mp-btn--primary",
    "data-testid": "use-mine",
    text: "Use mine",
    hidden: !mineAllowed,
    onclick: () => {
      view.store.useMine(conflict.entity_id, field);
      onDone();
    },
  });
  const note = mineAllowed
    ? null
    : h("p", { class: "mp-hint", text: statusField ? "Your choice is no longer possible from their value." : "" });
  return h(
    "div",
    {
      class: "mp-conflict",
      role: "group",
      "aria-labelledby": title.id,
      "data-testid": "conflict-prompt",
      "data-field": field,
    },
    title,
    values,
    note?.textContent ? note : null,
    h("div", { class: "mp-actions" }, keep, useMine),
  );
}

/** Keeps one conflict prompt in `slot` in step with the store (rebuilt only when it changes). */
class ConflictSlot {
  constructor(view, onDone) {
    this.view = view;
    this.onDone = onDone;
    this.el = h("div", { class: "mp-conflict-slot" });
    this.key = null;
  }

  update(conflict) {
    const key = conflict ? `${conflict.id}|${this.view.store.readOnly}` : null;
    if (key === this.key) return;
    this.key = key;
    const hadFocus = this.el.contains(document.activeElement);
    this.el.replaceChildren();
    if (conflict) this.el.append(conflictPrompt(this.view, conflict, () => this.onDone()));
    if (hadFocus && !conflict) this.onDone();
  }
}

// ---- one medication field --------------------------------------------------------------

class FieldCell {
  /**
   * @param {MedRow} row
   * @param {string} field
   * @param {object} [options]
   * @param {"field"|"title"|"badge"|"tag"} [options.variant]
   * @param {boolean} [options.editable]  false: never offer editing here
   * @param {(entity: object) => string} [options.editText]  the edit button's text
   * @param {boolean} [options.hideEmpty]  hide the whole field while it has no value
   */
  constructor(row, field, { variant = "field", editable = true, editText, hideEmpty = false } = {}) {
    this.row = row;
    this.view = row.view;
    this.store = row.view.store;
    this.field = field;
    this.ui = MED_FIELD_UI[field] ?? { label: fieldWord("medication", field) };
    this.schema = this.view.schema;
    this.kind = valueKind(this.schema, "medication", field);
    this.max = maxLength(this.schema, "medication", field);
    this.variant = variant;
    this.hideEmpty = hideEmpty;
    this.editText = editText ?? (() => "Edit");
    this.labelText = (this.view.patient && this.ui.patientLabel) || this.ui.label;
    this.editing = null;
    this.entity = null;

    this.labelEl = h("span", {
      class: variant === "title" ? "visually-hidden" : "mp-field__label",
      id: uid("mp-label"),
      text: this.labelText,
    });
    this.valueEl = h("span", {
      class: variant === "badge" ? "mp-badge" : variant === "tag" ? "mp-tag" : "mp-field__value",
      "data-testid": `med-field-${field}`,
    });
    this.pendingEl = h("span", { class: "mp-pending", "data-testid": `pending-${field}`, hidden: true });
    // No edit control at all where this role can never change the field.
    this.everEditable = editable && this.view.may.edit("medication", field);
    this.editButton = this.everEditable
      ? h("button", {
          type: "button",
          class: "mp-btn mp-btn--small mp-btn--quiet",
          "data-testid": `edit-${field}`,
          hidden: true,
          onclick: () => this.open(),
        })
      : null;
    const shown = variant === "title" ? h("h3", { class: "mp-med__name" }, this.valueEl) : this.valueEl;
    this.body = h("div", { class: "mp-field__body" }, shown, this.pendingEl, this.editButton);
    // (h() skips a null child: a read-only field has no button.)
    this.conflict = new ConflictSlot(this.view, () => this.focusAfter());
    this.override = new OverrideSlot(this.view, "medication", field, () => this.focusAfter());
    this.el = h(
      "div",
      { class: `mp-field mp-field--${variant}`, "data-field": field },
      this.labelEl,
      this.body,
      this.conflict.el,
      this.override.el,
    );
  }

  /** The label with the medication's name: "Strength of Metformin", "How I use Metformin". */
  namedLabel() {
    const name = this.row.name();
    const named = (this.view.patient && this.ui.patientNamed) || (!this.view.patient && this.ui.named) || null;
    if (named) return named(name);
    if (this.view.patient && this.ui.patientLabel) return `${this.ui.patientLabel} (${name})`;
    return `${this.labelText} of ${name}`;
  }

  display(value) {
    return formatValue("medication", this.field, value, { role: this.view.role, empty: this.ui.empty ?? "—" });
  }

  isEditable(entity) {
    if (!this.everEditable || this.store.readOnly) return false;
    if (hasTransitions(this.schema, "medication", this.field)) {
      return nextValues(this.schema, "medication", this.field, entity.data?.[this.field]).length > 0;
    }
    return true;
  }

  update(entity) {
    this.entity = entity;
    const value = entity.data?.[this.field] ?? null;
    setText(this.valueEl, this.display(value));
    setAttr(this.valueEl, "data-empty", value === null || value === "" ? "true" : null);
    if (this.hideEmpty) show(this.el, value !== null && value !== "");
    if (this.variant === "badge" || this.variant === "tag") setAttr(this.valueEl, "data-value", value ?? "");

    const editable = this.isEditable(entity);
    if (this.editing && !editable) this.close(false);
    if (this.editButton) {
      show(this.editButton, editable && !this.editing);
      setText(this.editButton, this.editText(entity));
      setAttr(this.editButton, "aria-label", `${this.editText(entity)}: ${this.namedLabel()}`);
    }

    const pending = this.store.pendingFor(entity.id, this.field);
    show(this.pendingEl, Boolean(pending));
    if (pending) {
      setText(this.pendingEl, `${this.display(pending.value)} (${pending.waiting ? "waiting to be sent" : "sending…"})`);
      setAttr(this.pendingEl, "data-state", pending.waiting ? "waiting" : "sending");
    }

    this.conflict.update(this.store.conflictFor(entity.id, this.field));
    this.override.update(entity.id);

    if (this.editing) {
      const seen = entity.versions?.[this.field];
      const changed = seen !== this.editing.seenVersion;
      show(this.editing.note, changed);
      if (changed) {
        const who = entity.updated_by?.name || "Someone";
        setText(
          this.editing.note,
          isCompareAndSet(this.schema, "medication", this.field)
            ? `${who} just changed this to “${this.display(value)}”. If you save, you will be asked which value to keep.`
            : `${who} just changed this to “${this.display(value)}”. Saving replaces it with yours.`,
        );
      }
    }
  }

  makeControl(start, entity) {
    const { field, max, schema } = this;
    if (hasTransitions(schema, "medication", field)) {
      // A status: its value now, then only the values the transitions allow from it.
      const current = entity.data?.[field] ?? defaultFor(schema, "medication", field);
      const options = [
        [current, `${formatValue("medication", field, current)} (now)`],
        ...nextValues(schema, "medication", field, current).map((s) => [s, formatValue("medication", field, s)]),
      ];
      return selectOf(options, current);
    }
    if (this.kind === "choice") return selectOf(choiceOptions(schema, "medication", field, this.view.role), start);
    if (this.kind === "date") return h("input", { type: "date", value: start ?? "" });
    if (this.ui.multiline) return h("textarea", { rows: 3, maxlength: max, value: start ?? "" });
    return h("input", {
      type: "text",
      maxlength: max,
      autocomplete: "off",
      inputmode: this.kind === "rxnorm" ? "numeric" : null,
      value: start ?? "",
    });
  }

  open() {
    if (this.editing || !this.entity || !this.isEditable(this.entity)) return;
    const entity = this.entity;
    const field = this.field;
    const pending = this.store.pendingFor(entity.id, field);
    const confirmed = entity.data?.[field] ?? null;
    const start = pending && field !== "status" ? pending.value : confirmed;
    const control = this.makeControl(start, entity);
    control.id = uid("mp-input");
    control.setAttribute("data-testid", `input-${field}`);
    const label = h("label", { class: "mp-label", for: control.id, text: this.namedLabel() });
    // A reconciled fact says where it comes from (patient, fill history, chart, other).
    const sourceChoices =
      actionFor(this.schema, "medication", field) === EDIT_MEDICATION && field !== "source"
        ? choiceOptions(this.schema, "medication", "source")
        : null;
    const sourceSelect = sourceChoices
      ? selectOf(sourceChoices, entity.data?.source ?? null, { "data-testid": `source-${field}` })
      : null;
    const sourceControl = sourceSelect ? labelled("Where this comes from", sourceSelect).wrap : null;
    const note = h("p", { class: "mp-editor__note", "aria-live": "polite", hidden: true });
    const error = h("p", { class: "mp-error", hidden: true });
    const errorId = uid("mp-error");
    error.id = errorId;
    const form = h(
      "form",
      { class: "mp-editor", novalidate: true, "data-testid": `editor-${field}` },
      label,
      control,
      sourceControl,
      note,
      error,
      h(
        "div",
        { class: "mp-actions" },
        h("button", { type: "submit", class: "mp-btn mp-btn--small mp-btn--primary", "data-testid": `save-${field}`, text: "Save" }),
        h("button", {
          type: "button",
          class: "mp-btn mp-btn--small",
          "data-testid": `cancel-${field}`,
          text: "Cancel",
          onclick: () => this.close(true),
        }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.close(true);
      }
    });
    // The version the person sees now is the base of a compare-and-set change.
    const seenVersion = entity.versions?.[field] ?? entity.created_seq;
    this.editing = { form, control, note, error, start, confirmed, seenVersion, sourceSelect };
    this.body.after(form);
    show(this.editButton, false);
    control.focus();
  }

  fail(message) {
    const { error, control } = this.editing;
    setText(error, message);
    show(error, true);
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", error.id);
    control.focus();
  }

  save() {
    if (!this.editing) return;
    const { control, start, confirmed, seenVersion, sourceSelect } = this.editing;
    let value = typeof control.value === "string" ? control.value.trim() : control.value;
    if (value === "") value = null;
    const label = this.labelText;
    if (required(this.schema, "medication", this.field) && value === null) return this.fail(`${label} cannot be empty.`);
    if (this.max !== null && typeof value === "string" && value.length > this.max) {
      return this.fail(`${label} can be at most ${this.max} characters.`);
    }
    if (this.kind === "rxnorm" && value !== null && !DIGITS_PATTERN.test(value)) {
      return this.fail(`${label}: digits only${this.max !== null ? `, at most ${this.max}` : ""}.`);
    }
    if (this.kind === "date" && value !== null && !DATE_PATTERN.test(value)) {
      return this.fail(`${label}: a date as YYYY-MM-DD.`);
    }
    if (value === (start ?? null) && (value === confirmed || this.field === "status")) {
      this.close(true); // nothing changed
      return;
    }
    this.store.setField("medication", this.entity.id, this.field, value, {
      baseVersion: seenVersion,
      source: sourceSelect?.value || undefined,
    });
    this.close(true);
  }

  close(focus) {
    if (!this.editing) return;
    const hadFocus = this.editing.form.contains(document.activeElement);
    this.editing.form.remove();
    this.editing = null;
    if (this.entity) this.update(this.entity);
    if (focus || hadFocus) this.focusAfter();
  }

  focusAfter() {
    if (this.editButton && !this.editButton.hidden) this.editButton.focus();
    else this.row.focus();
  }
}

// ---- a medication card -----------------------------------------------------------------

class MedRow {
  constructor(view, entity) {
    this.view = view;
    this.store = view.store;
    this.id = entity.id;
    this.entity = entity;
    this.cells = [];
    this.el = h("li", { class: "mp-med", "data-testid": "med-row", "data-entity-id": entity.id, tabindex: "-1" });
    this.changedBy = h("p", { class: "mp-changed", "data-testid": "med-field-updated_by" });
    // Recommendations about this medication: proposed values are never shown as current.
    this.proposals = h("ul", { class: "mp-proposals", "data-testid": "med-proposals", hidden: true });
    this.proposalItems = new Map();
    if (view.patient) this.buildPatient();
    else this.buildStaff();
    this.update(entity);
  }

  cell(field, options) {
    const cell = new FieldCell(this, field, options);
    this.cells.push(cell);
    return cell.el;
  }

  name() {
    return this.entity?.data?.name || "this medication";
  }

  focus() {
    this.el.focus();
  }

  buildStaff() {
    const head = h("div", { class: "mp-med__head" }, this.cell("name", { variant: "title" }));
    const main = h(
      "div",
      { class: "mp-fields" },
      this.cell("status", { variant: "badge" }),
      this.cell("kind", { variant: "tag" }),
      this.cell("strength"),
      this.cell("form"),
      this.cell("how_taken"),
      this.cell("why"),
      this.cell("patient_confirmation", { variant: "badge" }),
      (this.confirmedValues = h("p", { class: "mp-item__meta mp-confirmed", "data-testid": "med-confirmed-values", hidden: true })),
      this.cell("patient_how_taken"),
      this.cell("adherence"),
      this.cell("patient_note"),
      this.cell("notes"),
      this.cell("notes_audience", { variant: "tag" }),
    );
    this.moreRegion = h(
      "div",
      { class: "mp-fields mp-more", id: uid("mp-more"), hidden: true, "data-testid": "med-more-fields" },
      this.cell("prescriber"),
      this.cell("start_date"),
      this.cell("stop_date"),
      this.cell("why_stopped"),
      this.cell("rxnorm_code"),
      this.cell("source"),
    );
    this.moreButton = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "med-more",
      "aria-expanded": "false",
      "aria-controls": this.moreRegion.id,
      text: "More details",
      onclick: () => {
        const open = this.moreRegion.hidden;
        show(this.moreRegion, open);
        setAttr(this.moreButton, "aria-expanded", String(open));
        setText(this.moreButton, open ? "Fewer details" : "More details");
      },
    });
    const actions = h("div", { class: "mp-actions mp-med__actions" }, this.moreButton);
    if (this.view.may.history()) {
      this.history = new HistoryDrawer(this);
      actions.append(this.history.button);
    }
    this.el.append(head, main, this.proposals, this.moreRegion, this.changedBy, actions);
    if (this.history) this.el.append(this.history.el);
  }

  buildPatient() {
    const head = h("div", { class: "mp-med__head" }, this.cell("name", { variant: "title", editable: false }));
    const main = h(
      "div",
      { class: "mp-fields" },
      this.cell("status", { variant: "badge", editable: false }),
      this.cell("strength", { editable: false }),
      this.cell("form", { editable: false }),
      this.cell("how_taken", { editable: false }),
      this.cell("why", { editable: false }),
      // Only sent to a patient when the care team shared it (notes_audience "patient").
      this.cell("notes", { editable: false, hideEmpty: true }),
    );
    this.confirmText = h("p", { class: "mp-confirm__text", "data-testid": "med-field-patient_confirmation" });
    this.confirmedValues = h("p", { class: "mp-confirm__how", "data-testid": "med-confirmed-values", hidden: true });
    this.confirmConflict = h("p", { class: "mp-confirm__changed", "data-testid": "confirm-conflict", hidden: true });
    this.patientHow = h("p", { class: "mp-confirm__how", "data-testid": "med-field-patient_how_taken", hidden: true });
    this.confirmPending = h("p", { class: "mp-pending", "data-testid": "pending-patient_confirmation", hidden: true });
    const nameId = uid("mp-med-name");
    this.nameId = nameId;
    this.confirmButton = h("button", {
      type: "button",
      class: "mp-btn mp-btn--primary",
      "data-testid": "confirm-how-taken",
      text: "Yes, that's how I take it",
      onclick: () => {
        // Compare-and-set: the store sends the confirmation's version as shown now, so a
        // confirmation of values that changed meanwhile is refused, not recorded.
        this.store.setField("medication", this.id, "patient_confirmation", "confirmed");
        this.view.announce(`Thank you. Sending your confirmation for ${this.name()}.`);
      },
    });
    this.differentForm = this.buildDifferentForm();
    this.differentButton = h("button", {
      type: "button",
      class: "mp-btn",
      "data-testid": "take-differently",
      "aria-expanded": "false",
      "aria-controls": this.differentForm.id,
      text: "I take it differently",
      onclick: () => this.toggleDifferent(this.differentForm.hidden),
    });
    this.confirmActions = h("div", { class: "mp-actions" }, this.confirmButton, this.differentButton);
    const confirm = h(
      "div",
      { class: "mp-confirm", role: "group", "aria-label": "Is this how you take it?", "data-testid": "med-confirm" },
      this.confirmText,
      this.confirmedValues,
      this.confirmConflict,
      this.patientHow,
      this.confirmPending,
      this.confirmActions,
      this.differentForm,
    );
    const own = h(
      "div",
      { class: "mp-fields" },
      this.cell("adherence", { editText: (e) => (e.data?.adherence ? "Change" : "Tell us") }),
      this.cell("patient_note", { editText: (e) => (e.data?.patient_note ? "Change my note" : "Add a note") }),
    );
    this.el.append(head, main, this.proposals, confirm, own, this.changedBy);
  }

  /** The confirm button, for the "waiting for you" section's "Check" link. */
  focusConfirm() {
    this.el.scrollIntoView({ block: "nearest" });
    if (!this.confirmActions?.hidden && this.confirmButton) this.confirmButton.focus();
    else this.el.focus();
  }

  buildDifferentForm() {
    const input = h("textarea", {
      rows: 3,
      maxlength: maxLength(this.view.schema, "medication", "patient_how_taken"),
      "data-testid": "patient-how-taken-input",
    });
    const { wrap } = labelled("How do you take it?", input, {
      hint: "For example: one tablet in the morning only.",
    });
    const error = h("p", { class: "mp-error", id: uid("mp-error"), hidden: true });
    const form = h(
      "form",
      { class: "mp-editor", id: uid("mp-different"), hidden: true, novalidate: true },
      wrap,
      error,
      h(
        "div",
        { class: "mp-actions" },
        h("button", { type: "submit", class: "mp-btn mp-btn--primary", "data-testid": "patient-how-taken-save", text: "Save" }),
        h("button", {
          type: "button",
          class: "mp-btn",
          "data-testid": "patient-how-taken-cancel",
          text: "Cancel",
          onclick: () => this.toggleDifferent(false),
        }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) {
        setText(error, "Please tell us how you take it.");
        show(error, true);
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
        input.focus();
        return;
      }
      this.store.setField("medication", this.id, "patient_how_taken", text);
      this.store.setField("medication", this.id, "patient_confirmation", "corrected");
      this.view.announce(`Thank you. Sending how you take ${this.name()}.`);
      this.toggleDifferent(false);
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.toggleDifferent(false);
      }
    });
    this.differentInput = input;
    this.differentError = error;
    return form;
  }

  toggleDifferent(open) {
    show(this.differentForm, open);
    setAttr(this.differentButton, "aria-expanded", String(open));
    if (open) {
      this.differentInput.value = this.entity.data?.patient_how_taken ?? "";
      show(this.differentError, false);
      this.differentInput.removeAttribute("aria-invalid");
      this.differentInput.focus();
    } else if (!this.differentButton.hidden) {
      this.differentButton.focus();
    }
  }

  update(entity) {
    this.entity = entity;
    const data = entity.data ?? {};
    setAttr(this.el, "data-name", data.name ?? "");
    setAttr(this.el, "data-status", data.status ?? "");
    for (const cell of this.cells) cell.update(entity);
    setText(this.changedBy, changedByText(entity));
    this.updateProposals();
    if (this.view.patient) this.updatePatient(entity);
    else this.updateConfirmedValues(data);
    this.history?.update(entity);
  }

  /** Staff card: what the patient confirmed, beside "Confirmed by patient" / "Needs confirming again". */
  updateConfirmedValues(data) {
    const values = confirmedValuesText(data.confirmed_values, this.view.role);
    const state = data.patient_confirmation;
    const shown = Boolean(values) && (state === "confirmed" || state === "corrected" || state === "needs-confirming");
    show(this.confirmedValues, shown);
    if (shown) setText(this.confirmedValues, `${state === "needs-confirming" ? "Patient had confirmed" : "Patient confirmed"}: ${values}`);
  }

  /** One line per recommendation linked to this medication, kept by recommendation id. */
  updateProposals() {
    const patient = this.view.patient;
    const recs = this.store.list("recommendation").filter((rec) => rec.data?.medication_id === this.id);
    const nodes = [];
    const seen = new Set();
    for (const rec of recs) {
      let item = this.proposalItems.get(rec.id);
      if (!item) {
        item = h("li", { class: "mp-proposal", "data-testid": "med-proposal", "data-entity-id": rec.id });
        this.proposalItems.set(rec.id, item);
      }
      const data = rec.data ?? {};
      const values = describeProposed(data.proposed, { role: this.view.role }) || shorten(data.text ?? "", 120);
      setAttr(item, "data-status", data.status ?? "");
      setText(item, patient ? patientProposalText(data.status, values) : staffProposalText(data, values));
      seen.add(rec.id);
      nodes.push(item);
    }
    for (const id of [...this.proposalItems.keys()]) if (!seen.has(id)) this.proposalItems.delete(id);
    syncChildren(this.proposals, nodes);
    show(this.proposals, nodes.length > 0);
  }

  updatePatient(entity) {
    const data = entity.data ?? {};
    const state = data.patient_confirmation ?? null;
    const text = {
      confirmed: "You confirmed this is how you take it:",
      corrected: "You told us you take it differently:",
      "needs-confirming": "Needs confirming again: this changed since you confirmed it.",
    }[state] ?? "Not confirmed yet. Is this how you take it?";
    setText(this.confirmText, text);
    setAttr(this.confirmText, "data-value", state ?? "");
    const values = confirmedValuesText(data.confirmed_values, this.view.role);
    const showValues = Boolean(values) && (state === "confirmed" || state === "needs-confirming");
    show(this.confirmedValues, showValues);
    if (showValues) setText(this.confirmedValues, state === "needs-confirming" ? `You had confirmed: ${values}` : values);
    // My confirmation arrived after the details changed: the server refused it.
    const conflict = this.store.conflictFor(entity.id, "patient_confirmation");
    show(this.confirmConflict, Boolean(conflict));
    if (conflict) setText(this.confirmConflict, "This medicine changed while you were confirming. Please check it and confirm again.");
    setText(this.confirmButton, state === "needs-confirming" ? "Yes, that's how I take it now" : "Yes, that's how I take it");
    show(this.patientHow, Boolean(data.patient_how_taken) && data.patient_confirmation === "corrected");
    setText(this.patientHow, data.patient_how_taken ?? "");
    const pending =
      this.store.pendingFor(entity.id, "patient_confirmation") || this.store.pendingFor(entity.id, "patient_how_taken");
    show(this.confirmPending, Boolean(pending));
    if (pending) setText(this.confirmPending, pending.waiting ? "Saved on this device; waiting to be sent." : "Sending…");
    const canConfirm = !this.store.readOnly && this.view.may.edit("medication", "patient_confirmation");
    show(this.confirmActions, canConfirm);
    if (!canConfirm && !this.differentForm.hidden) this.toggleDifferent(false);
    setAttr(this.confirmButton, "aria-description", this.name());
    setAttr(this.differentButton, "aria-description", this.name());
  }
}

// ---- history drawer --------------------------------------------------------------------

class HistoryDrawer {
  constructor(row) {
    this.row = row;
    this.store = row.store;
    this.view = row.view;
    this.open = false;
    this.loading = 0;
    const titleId = uid("mp-history-title");
    this.title = h("h4", { class: "mp-history__title", id: titleId });
    this.status = h("p", { class: "mp-history__status", "aria-live": "polite" });
    this.list = h("ol", { class: "mp-history__list", "data-testid": "history-list" });
    this.closeButton = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "history-close",
      text: "Close history",
      onclick: () => this.toggle(false),
    });
    this.el = h(
      "section",
      { class: "mp-history", id: uid("mp-history"), "data-testid": "history-drawer", "aria-labelledby": titleId, hidden: true },
      h("div", { class: "mp-history__head" }, this.title, this.closeButton),
      this.status,
      this.list,
    );
    this.button = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "history-button",
      "aria-expanded": "false",
      "aria-controls": this.el.id,
      text: "History",
      onclick: () => this.toggle(!this.open),
    });
  }

  update(entity) {
    setText(this.title, `History of ${entity.data?.name ?? "this medication"}`);
    setAttr(this.button, "aria-label", `History of ${entity.data?.name ?? "this medication"}`);
  }

  toggle(open) {
    this.open = open;
    show(this.el, open);
    setAttr(this.button, "aria-expanded", String(open));
    if (open) {
      this.load();
      this.closeButton.focus();
    } else {
      this.button.focus();
    }
  }

  /** A change of this entity arrived while the drawer is open: show it. */
  refresh() {
    if (this.open) this.load();
  }

  async load() {
    const ticket = ++this.loading;
    if (!this.list.firstChild) setText(this.status, "Loading the history…");
    let events;
    try {
      events = await this.store.history(this.row.id);
    } catch (error) {
      if (ticket === this.loading) setText(this.status, error.message || "The history could not be loaded.");
      return;
    }
    if (ticket !== this.loading) return;
    setText(this.status, events.length ? "" : "No changes recorded yet.");
    const bySeq = new Map(events.map((event) => [event.seq, event]));
    this.list.replaceChildren(...events.map((event) => this.entry(event, bySeq)));
  }

  entry(event, bySeq) {
    const time = formatTime(event.at);
    const who = `${event.actor?.name ?? "Someone"}${event.actor?.role ? ` (${event.actor.role})` : ""}`;
    const type = event.entity_type ?? "medication";
    const li = h(
      "li",
      {
        class: "mp-history__entry",
        "data-testid": "history-entry",
        "data-outcome": event.outcome,
        "data-op": event.op,
        "data-seq": event.seq,
      },
      h("p", { class: "mp-history__meta" }, h("time", { datetime: event.at, title: time.full, text: time.short }), " · ", who),
    );
    const change = h("p", { class: "mp-history__change" });
    const creation = event.op === "add" || (event.op === "derived" && !event.field);
    if (creation) {
      change.append(h("span", { class: "mp-history__field", text: "added" }));
      if (event.new?.name) change.append(" ", h("span", { class: "mp-history__new", text: event.new.name }));
    } else if (event.op === "move") {
      change.append(h("span", { class: "mp-history__field", text: "moved in the list" }));
    } else {
      const fmt = (value) => formatValue(type, event.field, value, { empty: "(empty)" });
      change.append(
        h("span", { class: "mp-history__field", text: fieldWord(type, event.field) }),
        ": ",
        h("span", { class: "mp-history__old", text: fmt(event.old) }),
        h("span", { class: "mp-history__arrow", "aria-label": "changed to", text: " → " }),
        h("span", { class: "mp-history__new", text: fmt(event.new) }),
      );
    }
    li.append(change);
    if (event.op === "derived") {
      // A change the server made because of another one: say which.
      const cause = bySeq.get(event.detail?.cause_seq) ?? this.store.eventAt(event.detail?.cause_seq);
      const text =
        event.detail?.reason === "confirmation-reset"
          ? `reset ${derivedReason(event, cause)}`
          : event.detail?.reason === "recommendation-accepted"
            ? "applied from accepted recommendation"
            : "changed by the server";
      li.append(h("p", { class: "mp-history__derived", "data-testid": "history-derived", text }));
    }
    const overrode = event.detail?.overrode;
    if (overrode) {
      const value = formatValue(type, event.field, overrode.value, { empty: "(empty)" });
      const whose = overrode.actor?.name ? `${overrode.actor.name}${overrode.actor.role ? ` (${overrode.actor.role})` : ""}` : "someone";
      li.append(
        h("p", {
          class: "mp-history__overrode",
          "data-testid": "history-overrode",
          text: `“Use mine” after a conflict: replaced ${whose}’s value “${value}”`,
        }),
      );
    }
    if (event.source) {
      li.append(
        h("p", { class: "mp-history__source", text: `Source: ${formatValue("medication", "source", event.source)}` }),
      );
    }
    if (event.outcome === "conflict") {
      li.append(h("p", { class: "mp-history__conflict", "data-testid": "history-conflict", text: "conflict (not applied)" }));
    }
    return li;
  }
}

// ---- problems, recommendations, action plan --------------------------------------------

/**
 * Who sees an item: a tag ("Care team only" / "Shared with patient") and, for those who may
 * change it, a button that switches it. Patients are never sent care-team-only items, so
 * they see neither.
 */
class AudienceControl {
  constructor(view, type, entityId, describe) {
    this.view = view;
    this.store = view.store;
    this.type = type;
    this.entityId = entityId;
    this.describe = describe;
    this.known = Boolean(fieldSpec(view.schema, type, "audience"));
    this.tag = h("span", { class: "mp-tag mp-audience", "data-testid": "audience", hidden: true });
    this.button = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small mp-btn--quiet",
      "data-testid": "audience-toggle",
      hidden: true,
      onclick: () => {
        const now = this.value();
        const next = now === "patient" ? "care-team" : "patient";
        this.store.setField(type, entityId, "audience", next);
      },
    });
  }

  value() {
    const entity = this.store.entities.get(this.entityId);
    return entity?.data?.audience ?? defaultFor(this.view.schema, this.type, "audience");
  }

  update(entity) {
    const visible = this.known && !this.view.patient;
    const value = entity.data?.audience ?? defaultFor(this.view.schema, this.type, "audience");
    show(this.tag, visible && Boolean(value));
    setText(this.tag, audienceText(value));
    setAttr(this.tag, "data-value", value ?? "");
    const pending = this.store.pendingFor(entity.id, "audience");
    const editable = visible && !this.store.readOnly && this.view.may.edit(this.type, "audience") && !pending;
    show(this.button, editable);
    const text = value === "patient" ? "Make care team only" : "Share with patient";
    setText(this.button, text);
    setAttr(this.button, "aria-label", `${text}: ${this.describe(entity)}`);
  }
}

class ProblemRow {
  constructor(view, entity) {
    this.view = view;
    this.store = view.store;
    this.id = entity.id;
    this.category = h("span", { class: "mp-item__title", "data-testid": "problem-category" });
    this.severity = h("span", { class: "mp-tag", "data-testid": "problem-severity" });
    this.status = h("span", { class: "mp-badge", "data-testid": "problem-status" });
    this.description = h("p", { class: "mp-item__text", "data-testid": "problem-description" });
    this.meds = h("p", { class: "mp-item__meta", "data-testid": "problem-medications" });
    this.pending = h("p", { class: "mp-pending", hidden: true });
    this.changedBy = h("p", { class: "mp-changed" });
    this.audience = new AudienceControl(view, "problem", entity.id, (e) =>
      `problem ${formatValue("problem", "category", e.data?.category)}`);
    this.toggle = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "problem-toggle-status",
      hidden: true,
      onclick: () => {
        const next = this.entity.data?.status === "resolved" ? "open" : "resolved";
        this.store.setField("problem", this.id, "status", next);
      },
    });
    this.el = h(
      "li",
      { class: "mp-item", "data-testid": "problem-row", "data-entity-id": entity.id },
      h("p", { class: "mp-item__head" }, this.category, " ", this.severity, " ", this.status, " ", this.audience.tag),
      this.description,
      this.meds,
      this.pending,
      this.changedBy,
      h("div", { class: "mp-actions" }, this.toggle, this.audience.button),
    );
    this.update(entity);
  }

  update(entity) {
    this.entity = entity;
    const data = entity.data ?? {};
    setAttr(this.el, "data-status", data.status ?? "");
    setText(this.category, formatValue("problem", "category", data.category));
    setText(this.severity, `${formatValue("problem", "severity", data.severity)} severity`);
    setAttr(this.severity, "data-value", data.severity ?? "");
    setText(this.status, formatValue("problem", "status", data.status));
    setAttr(this.status, "data-value", data.status ?? "");
    setText(this.description, data.description ?? "");
    show(this.description, Boolean(data.description));
    const names = (data.medication_ids ?? []).map((id) => this.store.entities.get(id)?.data?.name ?? "a medication");
    setText(this.meds, names.length ? `Medications: ${names.join(", ")}` : "");
    show(this.meds, names.length > 0);
    setText(this.changedBy, changedByText(entity));
    const pending = this.store.pendingFor(entity.id, "status");
    show(this.pending, Boolean(pending));
    if (pending) setText(this.pending, `${formatValue("problem", "status", pending.value)} (${pending.waiting ? "waiting to be sent" : "sending…"})`);
    const editable = !this.store.readOnly && this.view.may.edit("problem", "status") && !pending;
    show(this.toggle, editable);
    setText(this.toggle, data.status === "resolved" ? "Reopen" : "Mark resolved");
    this.audience.update(entity);
  }
}

const DECISIONS = [
  ["accepted", "Accept", "rec-accept"],
  ["declined", "Decline", "rec-decline"],
  ["no-response", "No response", "rec-no-response"],
];

class RecRow {
  constructor(view, entity) {
    this.view = view;
    this.store = view.store;
    this.id = entity.id;
    this.text = h("p", { class: "mp-item__text", "data-testid": "rec-text" });
    this.meta = h("p", { class: "mp-item__meta", "data-testid": "rec-to" });
    this.status = h("span", { class: "mp-badge", "data-testid": "rec-status", tabindex: "-1" });
    this.decided = h("span", { class: "mp-item__meta", "data-testid": "rec-decided" });
    this.pending = h("p", { class: "mp-pending", "data-testid": "pending-status", hidden: true });
    this.buttons = DECISIONS.map(([status, text, testid]) =>
      h("button", {
        type: "button",
        class: `mp-btn mp-btn--small${status === "accepted" ? " mp-btn--primary" : ""}`,
        "data-testid": testid,
        text,
        hidden: true,
        onclick: () => {
          decide(this.store, this.entity, status);
          this.status.focus();
        },
      }),
    );
    this.conflict = new ConflictSlot(view, () => this.status.focus());
    this.override = new OverrideSlot(view, "recommendation", "status", () => this.status.focus());
    this.changedBy = h("p", { class: "mp-changed" });
    this.proposal = h("p", { class: "mp-item__meta mp-rec__proposal", "data-testid": "rec-proposal", hidden: true });
    this.audience = new AudienceControl(view, "recommendation", entity.id, (e) => `recommendation ${shorten(e.data?.text ?? "")}`);
    this.actions = h("div", { class: "mp-actions", role: "group", "aria-label": "Decision" }, ...this.buttons);
    this.el = h(
      "li",
      { class: "mp-item", "data-testid": "rec-row", "data-entity-id": entity.id },
      this.text,
      this.proposal,
      this.meta,
      h("p", { class: "mp-item__head" }, this.status, " ", this.decided, " ", this.audience.tag),
      this.pending,
      this.actions,
      this.conflict.el,
      this.override.el,
      this.changedBy,
      h("div", { class: "mp-actions" }, this.audience.button),
    );
    this.update(entity);
  }

  update(entity) {
    this.entity = entity;
    const data = entity.data ?? {};
    setAttr(this.el, "data-status", data.status ?? "");
    setText(this.text, data.text ?? "");
    const problem = data.problem_id ? this.store.entities.get(data.problem_id) : null;
    const about = problem ? ` · About: ${formatValue("problem", "category", problem.data?.category)}` : "";
    setText(this.meta, `${formatValue("recommendation", "to", data.to)}${about}`);
    const proposal = recProposalText(this.store, data, this.view.role);
    show(this.proposal, Boolean(proposal));
    setText(this.proposal, proposal);
    const therapyChange = Boolean(data.change || data.medication_id || Object.keys(data.proposed ?? {}).length);
    setText(
      this.status,
      this.view.patient && therapyChange
        ? PATIENT_DECISION_WORDS[data.status] ?? formatValue("recommendation", "status", data.status)
        : formatValue("recommendation", "status", data.status),
    );
    setAttr(this.status, "data-value", data.status ?? "");
    const decided = data.decided_by
      ? `by ${data.decided_by}${data.decided_by_role ? ` (${data.decided_by_role})` : ""}${
          data.decided_at ? `, ${formatTime(data.decided_at).short}` : ""
        }`
      : "";
    setText(this.decided, decided);
    const pending = this.store.pendingFor(entity.id, "status");
    show(this.pending, Boolean(pending));
    if (pending) {
      setText(this.pending, `${formatValue("recommendation", "status", pending.value)} (${pending.waiting ? "waiting to be sent" : "sending…"})`);
    }
    const allowed =
      !this.store.readOnly && this.view.may.decide() && !pending
        ? nextStatuses(this.view.schema, "recommendation", data.status)
        : [];
    DECISIONS.forEach(([status], i) => show(this.buttons[i], allowed.includes(status)));
    show(this.actions, allowed.length > 0);
    for (const button of this.buttons) setAttr(button, "aria-description", data.text ?? "");
    this.conflict.update(this.store.conflictFor(entity.id, "status"));
    this.override.update(entity.id);
    this.audience.update(entity);
    setText(this.changedBy, changedByText(entity));
  }
}

// A therapy change as the patient reads its decision.
const PATIENT_DECISION_WORDS = {
  proposed: "Proposed — waiting for your doctor",
  "no-response": "Proposed — waiting for your doctor",
  accepted: "Your doctor agreed",
  declined: "Not changed",
};

/** "Metformin · Dose change · strength 1000 mg": what a recommendation would change. */
function recProposalText(store, data, role) {
  const parts = [];
  if (data.medication_id) parts.push(store.entities.get(data.medication_id)?.data?.name ?? "a medication");
  if (data.change) parts.push(formatValue("recommendation", "change", data.change));
  const values = describeProposed(data.proposed, { role });
  if (values) parts.push(values);
  return parts.join(" · ");
}

class PlanRow {
  constructor(view, entity) {
    this.view = view;
    this.id = entity.id;
    const labels = view.patient
      ? ["What we talked about", "What I need to do", "What I did"]
      : ["Talked about", "Patient to do", "Patient did"];
    this.talked = h("span", { "data-testid": "plan-talked-about" });
    this.todo = h("span", { "data-testid": "plan-to-do" });
    this.did = h("span", { "data-testid": "plan-what-i-did" });
    this.todoLine = h("p", { class: "mp-item__text" }, h("span", { class: "mp-field__label", text: `${labels[1]}: ` }), this.todo);
    this.didLine = h("p", { class: "mp-item__text" }, h("span", { class: "mp-field__label", text: `${labels[2]}: ` }), this.did);
    this.changedBy = h("p", { class: "mp-changed" });
    this.audience = new AudienceControl(view, "plan_item", entity.id, (e) => `action plan item ${shorten(e.data?.talked_about ?? "")}`);
    this.el = h(
      "li",
      { class: "mp-item", "data-testid": "plan-row", "data-entity-id": entity.id },
      h("p", { class: "mp-item__text" }, h("span", { class: "mp-field__label", text: `${labels[0]}: ` }), this.talked),
      this.todoLine,
      this.didLine,
      h("p", { class: "mp-item__head" }, this.audience.tag),
      this.changedBy,
      h("div", { class: "mp-actions" }, this.audience.button),
    );
    this.update(entity);
  }

  update(entity) {
    const data = entity.data ?? {};
    setText(this.talked, data.talked_about ?? "");
    setText(this.todo, data.to_do ?? "");
    show(this.todoLine, Boolean(data.to_do));
    setText(this.did, data.what_i_did ?? "");
    show(this.didLine, Boolean(data.what_i_did));
    this.audience.update(entity);
    setText(this.changedBy, changedByText(entity));
  }
}

/** A queued addition not acknowledged yet: shown, marked, not editable. */
function pendingRow(testid, text) {
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

// ---- "waiting for you" ---------------------------------------------------------------------

/**
 * The top of the panel: what is still open for this reader (panel-schema.js `openItems`,
 * the server's rule). A clinician decides recommendations right here; a patient is led to
 * each medication to confirm; a pharmacist sees both counts.
 */
class WaitingSection {
  constructor(view) {
    this.view = view;
    this.store = view.store;
    this.role = view.role;
    // Items are listed for whoever acts on them; the pharmacist, who acts on neither, gets
    // the counts (a long list above the medications would bury them again).
    this.decides = this.role === "clinician";
    this.confirms = this.role === "patient";
    const title = this.role === "pharmacist" ? "Still open" : "Waiting for you";
    this.count = h("span", { class: "mp-count", "data-testid": "waiting-count" });
    this.heading = h("h2", { class: "mp__title mp__title--section", id: uid("mp-waiting"), tabindex: "-1", text: title }, " ", this.count);
    // Read out when the counts change (not on every render).
    this.summary = h("p", { class: "mp-waiting__summary", "data-testid": "waiting-summary", role: "status", "aria-live": "polite" });
    this.decideList = h("ul", { class: "mp-list", "data-testid": "waiting-decide-list", "aria-label": "Recommendations to decide" });
    this.confirmList = h("ul", { class: "mp-list", "data-testid": "waiting-confirm-list", "aria-label": "Medications to confirm" });
    this.rows = new Map();
    this.el = h(
      "section",
      { class: "mp-section mp-waiting", "aria-labelledby": this.heading.id, "data-testid": "waiting-section" },
      this.heading,
      this.summary,
      this.decideList,
      this.confirmList,
    );
  }

  render() {
    const { toDecide, toConfirm } = this.store.openItems();
    const total = toDecide.length + toConfirm.length;
    setText(this.count, `(${total})`);
    setAttr(this.el, "data-count", String(total));
    setAttr(this.el, "data-to-decide", String(toDecide.length));
    setAttr(this.el, "data-to-confirm", String(toConfirm.length));
    setAttr(this.el, "data-open", total ? "true" : null);
    setText(this.summary, this.summaryText(toDecide.length, toConfirm.length));

    const seen = new Set();
    const decideNodes = this.decides ? toDecide.map((rec) => this.row(rec, seen).el) : [];
    const confirmNodes = this.confirms ? toConfirm.map((med) => this.row(med, seen).el) : [];
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    syncChildren(this.decideList, decideNodes);
    syncChildren(this.confirmList, confirmNodes);
    show(this.decideList, decideNodes.length > 0);
    show(this.confirmList, confirmNodes.length > 0);
  }

  summaryText(decide, confirm) {
    if (this.role === "clinician") {
      return decide ? `${plural(decide, "recommendation needs", "recommendations need")} your decision.` : "Nothing is waiting for your decision.";
    }
    if (this.role === "patient") {
      return confirm ? `Please check ${plural(confirm, "medicine", "medicines")}: is this how you take ${confirm === 1 ? "it" : "them"}?` : "Nothing is waiting for you.";
    }
    if (!decide && !confirm) return "Nothing is open: every recommendation is decided and every medication confirmed.";
    return `${plural(decide, "recommendation", "recommendations")} waiting for a decision · ${plural(confirm, "medication", "medications")} not confirmed by the patient.`;
  }

  row(entity, seen) {
    seen.add(entity.id);
    let row = this.rows.get(entity.id);
    if (!row) this.rows.set(entity.id, (row = entity.type === "recommendation" ? this.decideRow(entity) : this.confirmRow(entity)));
    row.update(entity);
    return row;
  }

  /** A recommendation to decide: what it proposes, and (for the clinician) Accept / Decline. */
  decideRow(entity) {
    const text = h("p", { class: "mp-item__text", "data-testid": "waiting-rec-text" });
    const proposal = h("p", { class: "mp-item__meta", "data-testid": "waiting-rec-proposal" });
    const pending = h("p", { class: "mp-pending", hidden: true });
    const canDecide = this.view.may.decide();
    let current = entity;
    const button = (status, label, testid, primary) =>
      h("button", {
        type: "button",
        class: `mp-btn mp-btn--small${primary ? " mp-btn--primary" : ""}`,
        "data-testid": testid,
        text: label,
        onclick: () => {
          decide(this.store, current, status);
          this.view.announce(`Sending your decision: ${label.toLowerCase()}.`);
          this.heading.focus();
        },
      });
    const buttons = canDecide
      ? [button("accepted", "Accept", "waiting-accept", true), button("declined", "Decline", "waiting-decline", false)]
      : [];
    const actions = h("div", { class: "mp-actions", role: "group", "aria-label": "Decision" }, ...buttons);
    const el = h(
      "li",
      { class: "mp-item mp-waiting__item", "data-testid": "waiting-item", "data-kind": "decide", "data-entity-id": entity.id },
      text,
      proposal,
      pending,
      canDecide ? actions : null,
    );
    return {
      el,
      update: (rec) => {
        current = rec;
        const data = rec.data ?? {};
        setText(text, data.text ?? "");
        const what = recProposalText(this.store, data, this.role);
        setText(proposal, what);
        show(proposal, Boolean(what));
        const sending = this.store.pendingFor(rec.id, "status");
        show(pending, Boolean(sending));
        if (sending) setText(pending, `${formatValue("recommendation", "status", sending.value)} (${sending.waiting ? "waiting to be sent" : "sending…"})`);
        const allowed = canDecide && !this.store.readOnly && !sending ? nextStatuses(this.view.schema, "recommendation", data.status) : [];
        for (const b of buttons) {
          const status = b.dataset.testid === "waiting-accept" ? "accepted" : "declined";
          show(b, allowed.includes(status));
          setAttr(b, "aria-description", data.text ?? "");
        }
        show(actions, allowed.length > 0);
      },
    };
  }

  /** A medication the patient has not confirmed (or must confirm again). */
  confirmRow(entity) {
    const name = h("span", { class: "mp-item__title", "data-testid": "waiting-med-name" });
    const state = h("span", { class: "mp-badge", "data-testid": "waiting-med-state" });
    const go = this.view.patient
      ? h("button", {
          type: "button",
          class: "mp-btn mp-btn--small",
          "data-testid": "waiting-check",
          text: "Check",
          onclick: () => this.view.rows.medication.get(entity.id)?.focusConfirm(),
        })
      : null;
    const el = h(
      "li",
      { class: "mp-item mp-waiting__item", "data-testid": "waiting-item", "data-kind": "confirm", "data-entity-id": entity.id },
      h("p", { class: "mp-item__head" }, name, " ", state),
      go ? h("div", { class: "mp-actions" }, go) : null,
    );
    return {
      el,
      update: (med) => {
        const data = med.data ?? {};
        setText(name, data.name ?? "a medication");
        const again = data.patient_confirmation === "needs-confirming";
        setText(state, again ? "Needs confirming again" : "Not confirmed yet");
        setAttr(state, "data-value", again ? "needs-confirming" : "unconfirmed");
        if (go) setAttr(go, "aria-label", `Check ${data.name ?? "this medicine"}`);
      },
    };
  }
}

// ---- the panel ---------------------------------------------------------------------------

export class PanelView {
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.role = store.role;
    this.may = store.may;
    this.schema = store.schema;
    this.patient = this.role === "patient";
    this.rows = { medication: new Map(), problem: new Map(), recommendation: new Map(), plan_item: new Map() };
    this.pendingRows = { medication: new Map(), problem: new Map(), recommendation: new Map(), plan_item: new Map() };
    this.renderQueued = false;
    this.destroyed = false;
    this.rejectedKey = "";
    this.build();
    this.unsubscribe = store.subscribe((message) => this.onStore(message));
    this.render();
  }

  onStore(message) {
    if (message.kind === "announce") this.announce(message.text);
    else if (message.kind === "event") {
      const row = this.rows.medication.get(message.event.entity_id);
      row?.history?.refresh();
      this.scheduleRender();
    } else this.scheduleRender();
  }

  scheduleRender() {
    if (this.renderQueued || this.destroyed) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      if (!this.destroyed) this.render();
    });
  }

  announce(text) {
    if (!text || this.destroyed) return;
    setText(this.live, text);
  }

  // ---- skeleton ----

  build() {
    const may = this.may;
    this.heading = h("h2", {
      class: "mp__title",
      id: uid("mp-title"),
      tabindex: "-1",
      text: this.patient ? "My medicines" : "Medication list",
    });
    this.offline = h("p", { class: "mp-offline", "data-testid": "panel-offline", hidden: true });
    this.queueIndicator = h("p", { class: "mp-queue", "data-testid": "queue-indicator", role: "status", hidden: true });
    this.readOnlyBanner = h("p", { class: "mp-readonly", "data-testid": "panel-readonly", hidden: true });
    this.live = h("p", { class: "mp-live", "data-testid": "panel-live", role: "status", "aria-live": "polite" });
    this.buildRejected();

    this.waiting = new WaitingSection(this);
    this.medList = h("ul", { class: "mp-list mp-meds", "aria-labelledby": this.heading.id, "data-testid": "med-list" });
    this.medEmpty = h("p", { class: "mp-empty", text: "No medications on the list yet.", hidden: true });
    const addMed = this.buildAddMed();

    this.el = h(
      "div",
      { class: "mp", "data-testid": "panel", "data-role": this.role },
      h(
        "div",
        { class: "mp__status" },
        this.heading,
        this.readOnlyBanner,
        this.offline,
        this.queueIndicator,
        this.rejectedBox,
        this.live,
      ),
      this.waiting.el,
      h("section", { class: "mp-section", "aria-labelledby": this.heading.id }, this.medList, this.medEmpty, addMed),
    );

    this.sections = {
      problem: this.buildSection({
        type: "problem",
        title: this.patient ? "Medication problems" : "Drug therapy problems",
        testid: "problems",
        empty: "No problems recorded.",
        addText: "Add problem",
        form: may.create("problem") ? this.buildProblemForm() : null,
      }),
      recommendation: this.buildSection({
        type: "recommendation",
        title: "Recommendations",
        testid: "recommendations",
        empty: "No recommendations yet.",
        addText: "Add recommendation",
        form: may.create("recommendation") ? this.buildRecForm() : null,
      }),
      plan_item: this.buildSection({
        type: "plan_item",
        title: this.patient ? "My action plan" : "Medication Action Plan",
        testid: "plan",
        empty: "No action plan items yet.",
        addText: "Add plan item",
        form: may.create("plan_item") ? this.buildPlanForm() : null,
      }),
    };
    for (const section of Object.values(this.sections)) this.el.append(section.el);
    this.root.append(this.el);
  }

  buildRejected() {
    this.rejectedList = h("ul", { class: "mp-rejected__list" });
    this.rejectedAll = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "rejected-dismiss-all",
      text: "Dismiss all",
      onclick: () => {
        this.store.dismissRejected();
        this.heading.focus();
      },
    });
    const title = h("p", { class: "mp-rejected__title", id: uid("mp-rejected"), text: "Not saved" });
    this.rejectedBox = h(
      "section",
      { class: "mp-rejected", "data-testid": "rejected-notice", "aria-labelledby": title.id, hidden: true },
      title,
      this.rejectedList,
      h("div", { class: "mp-actions" }, this.rejectedAll),
    );
  }

  /** A toggle button that shows/hides `form`, wired for assistive technology. */
  formToggle(form, text, testid) {
    form.id ||= uid("mp-form");
    const button = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": testid,
      "aria-expanded": "false",
      "aria-controls": form.id,
      text,
    });
    const toggle = (open) => {
      show(form, open);
      setAttr(button, "aria-expanded", String(open));
      if (open) form.querySelector("input, select, textarea")?.focus();
      else button.focus();
    };
    button.addEventListener("click", () => toggle(form.hidden));
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        toggle(false);
      }
    });
    return { button, toggle };
  }

  formError(form, message, control) {
    const error = form.querySelector(".mp-error");
    setText(error, message);
    show(error, Boolean(message));
    if (control) {
      control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", error.id);
      control.focus();
    }
  }

  clearForm(form) {
    form.reset();
    show(form.querySelector(".mp-error"), false);
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  formButtons(submitText, submitTestid, cancelTestid, onCancel) {
    return h(
      "div",
      { class: "mp-actions" },
      h("button", { type: "submit", class: "mp-btn mp-btn--primary", "data-testid": submitTestid, text: submitText }),
      h("button", { type: "button", class: "mp-btn", "data-testid": cancelTestid, text: "Cancel", onclick: onCancel }),
    );
  }

  buildAddMed() {
    if (!this.may.create("medication")) return null;
    const schema = this.schema;
    const input = (testid, field) =>
      h("input", {
        type: "text",
        maxlength: maxLength(schema, "medication", field),
        autocomplete: "off",
        "data-testid": testid,
        ...requiredAttrs(schema, "medication", field),
      });
    const name = input("add-med-name", "name");
    const strength = input("add-med-strength", "strength");
    const form = input("add-med-form", "form");
    const how = h("textarea", {
      rows: 2,
      maxlength: maxLength(schema, "medication", "how_taken"),
      "data-testid": "add-med-how-taken",
      ...requiredAttrs(schema, "medication", "how_taken"),
    });
    const why = input("add-med-why", "why");
    const kind = selectOf(choiceOptions(schema, "medication", "kind"), defaultFor(schema, "medication", "kind"), {
      "data-testid": "add-med-kind",
    });
    const sourceOptions = choiceOptions(schema, "medication", "source");
    const source = sourceOptions ? selectOf(sourceOptions, defaultFor(schema, "medication", "source"), { "data-testid": "add-med-source" }) : null;
    const mark = (field) => requiredMark(schema, "medication", field);
    const el = h(
      "form",
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-med-form", "aria-label": "Add a medication" },
      labelled(`Name${mark("name")}`, name).wrap,
      labelled(`Strength${mark("strength")}`, strength, { hint: "The dose, e.g. 500 mg" }).wrap,
      labelled(`Form${mark("form")}`, form, { hint: "e.g. tablet" }).wrap,
      labelled(`How taken${mark("how_taken")}`, how).wrap,
      labelled(`Why${mark("why")}`, why).wrap,
      labelled(`Kind${mark("kind")}`, kind).wrap,
      source ? labelled(`Where this comes from${mark("source")}`, source, { hint: "Patient, fill history, chart or other" }).wrap : null,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true, "data-testid": "add-med-error" }),
    );
    const { button, toggle } = this.formToggle(el, "Add medication", "add-med-button");
    el.append(this.formButtons("Add to list", "add-med-submit", "add-med-cancel", () => toggle(false)));
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = { name: name.value.trim(), kind: kind.value };
      if (!value.name && required(schema, "medication", "name")) {
        return this.formError(el, "Please enter the medication's name.", name);
      }
      for (const [key, control] of [["strength", strength], ["form", form], ["how_taken", how], ["why", why]]) {
        const text = control.value.trim();
        if (text) value[key] = text;
      }
      if (source?.value) value.source = source.value;
      this.store.add("medication", value, { source: source?.value || undefined });
      this.announce(`Adding ${value.name}.`);
      this.clearForm(el);
      toggle(false);
    });
    this.addMedButton = button;
    this.addMedForm = el;
    return h("div", { class: "mp-add" }, button, el);
  }

  /** An audience <select> for a new item of `type` (null when the schema has no audience). */
  audienceSelect(type, testid) {
    const options = choiceOptions(this.schema, type, "audience");
    if (!options) return null;
    const select = selectOf(
      options.filter(([value]) => value !== null),
      defaultFor(this.schema, type, "audience"),
      { "data-testid": testid },
    );
    return { select, wrap: labelled("Who sees it", select).wrap };
  }

  buildProblemForm() {
    const schema = this.schema;
    const category = selectOf(
      [["", "Choose a category"], ...choiceOptions(schema, "problem", "category").filter(([value]) => value !== null)],
      "",
      { "data-testid": "add-problem-category", ...requiredAttrs(schema, "problem", "category") },
    );
    const severity = selectOf(choiceOptions(schema, "problem", "severity"), defaultFor(schema, "problem", "severity"), {
      "data-testid": "add-problem-severity",
      ...requiredAttrs(schema, "problem", "severity"),
    });
    const description = h("textarea", {
      rows: 2,
      maxlength: maxLength(schema, "problem", "description"),
      "data-testid": "add-problem-description",
      ...requiredAttrs(schema, "problem", "description"),
    });
    const mark = (field) => requiredMark(schema, "problem", field);
    this.problemMeds = h("div", { class: "mp-checks" });
    this.problemMedInputs = new Map();
    const audience = this.audienceSelect("problem", "add-problem-audience");
    const el = h(
      "form",
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-problem-form", "aria-label": "Add a drug therapy problem" },
      labelled(`Category${mark("category")}`, category).wrap,
      labelled(`Severity${mark("severity")}`, severity).wrap,
      labelled(`Description${mark("description")}`, description).wrap,
      h("fieldset", { class: "mp-fieldset" }, h("legend", { text: "Linked medications" }), this.problemMeds),
      audience?.wrap,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true }),
    );
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!category.value && required(schema, "problem", "category")) {
        return this.formError(el, "Please choose a category.", category);
      }
      const value = category.value ? { category: category.value } : {};
      value.severity = severity.value;
      const text = description.value.trim();
      if (text) value.description = text;
      value.medication_ids = [...this.problemMedInputs]
        .filter(([, entry]) => entry.box.checked)
        .map(([id]) => id);
      if (audience) value.audience = audience.select.value;
      this.store.add("problem", value);
      this.announce(`Adding problem: ${formatValue("problem", "category", value.category)}.`);
      this.clearForm(el);
      this.sections.problem.toggle(false);
    });
    return el;
  }

  buildRecForm() {
    const schema = this.schema;
    const text = h("textarea", {
      rows: 3,
      maxlength: maxLength(schema, "recommendation", "text"),
      ...requiredAttrs(schema, "recommendation", "text"),
      "data-testid": "add-rec-text",
    });
    const to = selectOf(choiceOptions(schema, "recommendation", "to"), defaultFor(schema, "recommendation", "to"), {
      "data-testid": "add-rec-to",
    });
    const mark = (field) => requiredMark(schema, "recommendation", field);
    this.recProblem = h("select", { "data-testid": "add-rec-problem" });
    const audience = this.audienceSelect("recommendation", "add-rec-audience");

    // A change of therapy: which medication, what kind of change, the proposed values.
    const changeOptions = choiceOptions(schema, "recommendation", "change");
    const therapy = Boolean(changeOptions && fieldSpec(schema, "recommendation", "proposed"));
    let change = null;
    const proposedInputs = new Map();
    let proposedBox = null;
    if (therapy) {
      this.recMedication = h("select", { "data-testid": "add-rec-medication" });
      change = selectOf(
        changeOptions.map(([value, label]) => [value, value === null ? "Not a change of therapy" : label]),
        null,
        { "data-testid": "add-rec-change" },
      );
      const allowed = proposedKeys(schema);
      const inputs = h("div", { class: "mp-proposed-fields" });
      for (const key of allowed) {
        if (key === "status") continue; // a stop proposes status "stopped" by itself
        const multiline = MED_FIELD_UI[key]?.multiline;
        const kind = valueKind(schema, "medication", key);
        const control = multiline
          ? h("textarea", { rows: 2, maxlength: maxLength(schema, "medication", key) })
          : h("input", {
              type: kind === "date" ? "date" : "text",
              maxlength: maxLength(schema, "medication", key),
              autocomplete: "off",
            });
        control.setAttribute("data-testid", `add-rec-proposed-${key}`);
        const label = PROPOSED_LABELS[key] ?? `New ${fieldWord("medication", key)}`;
        const { wrap } = labelled(label, control);
        proposedInputs.set(key, { control, wrap });
        inputs.append(wrap);
      }
      proposedBox = h(
        "fieldset",
        { class: "mp-fieldset", "data-testid": "add-rec-proposed", hidden: true },
        h("legend", { text: "Proposed values (the list changes only if the prescriber accepts)" }),
        inputs,
      );
      const sync = () => {
        const kind = change.value;
        show(proposedBox, Boolean(kind));
        // Which inputs make sense for this kind of change; the server checks the rest.
        for (const [key, { wrap, control }] of proposedInputs) {
          const visible =
            kind === "start"
              ? key !== "why_stopped" && key !== "stop_date"
              : kind === "stop"
                ? key === "why_stopped" || key === "stop_date"
                : key !== "name" && key !== "why_stopped" && key !== "stop_date";
          show(wrap, visible);
          if (!visible) control.value = "";
        }
        this.recMedication.disabled = kind === "start";
        if (kind === "start") this.recMedication.value = "";
        this.renderRecMedicationHints(proposedInputs);
      };
      change.addEventListener("change", sync);
      this.recMedication.addEventListener("change", () => this.renderRecMedicationHints(proposedInputs));
      this.recSync = sync;
      this.recProposedInputs = proposedInputs;
    }

    const el = h(
      "form",
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-rec-form", "aria-label": "Add a recommendation" },
      labelled(`Recommendation${mark("text")}`, text).wrap,
      labelled(`To${mark("to")}`, to).wrap,
      labelled(`About problem${mark("problem_id")}`, this.recProblem).wrap,
      therapy ? labelled("Medication", this.recMedication).wrap : null,
      therapy ? labelled("Change of therapy", change).wrap : null,
      proposedBox,
      audience?.wrap,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true }),
    );
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = { text: text.value.trim(), to: to.value };
      if (!value.text && required(schema, "recommendation", "text")) {
        return this.formError(el, "Please write the recommendation.", text);
      }
      if (this.recProblem.value) value.problem_id = this.recProblem.value;
      if (audience) value.audience = audience.select.value;
      if (therapy) {
        const kind = change.value || null;
        const proposed = {};
        for (const [key, { control, wrap }] of proposedInputs) {
          const entered = control.value.trim();
          if (entered && !wrap.hidden) proposed[key] = entered;
        }
        if (kind === "stop") proposed.status = "stopped";
        const medicationId = this.recMedication.value || null;
        if (kind === "start" && !proposed.name) {
          return this.formError(el, "Please enter the name of the medication to start.", proposedInputs.get("name")?.control);
        }
        if (kind && kind !== "start" && !medicationId) {
          return this.formError(el, "Please choose the medication this change is about.", this.recMedication);
        }
        if (kind && kind !== "start" && kind !== "stop" && kind !== "other" && !Object.keys(proposed).length) {
          return this.formError(el, "Please enter the proposed new values.", [...proposedInputs.values()].find((i) => !i.wrap.hidden)?.control);
        }
        if (medicationId) value.medication_id = medicationId;
        if (kind) value.change = kind;
        if (Object.keys(proposed).length) value.proposed = proposed;
      }
      this.store.add("recommendation", value);
      this.announce("Adding the recommendation.");
      this.clearForm(el);
      this.recSync?.();
      this.sections.recommendation.toggle(false);
    });
    return el;
  }

  /** The current values of the chosen medication as placeholders of the proposed inputs. */
  renderRecMedicationHints(inputs) {
    const med = this.store.entities.get(this.recMedication?.value ?? "");
    for (const [key, { control }] of inputs) {
      const now = med?.data?.[key];
      setAttr(control, "placeholder", now ? `Now: ${now}` : null);
    }
  }

  buildPlanForm() {
    const schema = this.schema;
    const talked = h("textarea", {
      rows: 2,
      maxlength: maxLength(schema, "plan_item", "talked_about"),
      ...requiredAttrs(schema, "plan_item", "talked_about"),
      "data-testid": "add-plan-talked-about",
    });
    const todo = h("textarea", {
      rows: 2,
      maxlength: maxLength(schema, "plan_item", "to_do"),
      ...requiredAttrs(schema, "plan_item", "to_do"),
      "data-testid": "add-plan-to-do",
    });
    const mark = (field) => requiredMark(schema, "plan_item", field);
    const audience = this.audienceSelect("plan_item", "add-plan-audience");
    const el = h(
      "form",
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-plan-form", "aria-label": "Add an action plan item" },
      labelled(`What we talked about${mark("talked_about")}`, talked).wrap,
      labelled(`What I need to do${mark("to_do")}`, todo).wrap,
      audience?.wrap,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true }),
    );
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = { talked_about: talked.value.trim() };
      if (!value.talked_about && required(schema, "plan_item", "talked_about")) {
        return this.formError(el, "Please write what you talked about.", talked);
      }
      const text = todo.value.trim();
      if (text) value.to_do = text;
      if (audience) value.audience = audience.select.value;
      this.store.add("plan_item", value);
      this.announce("Adding the action plan item.");
      this.clearForm(el);
      this.sections.plan_item.toggle(false);
    });
    return el;
  }

  buildSection({ type, title, testid, empty, addText, form }) {
    const heading = h("h2", { class: "mp__title mp__title--section", id: uid("mp-section"), text: title });
    const count = h("span", { class: "mp-count" });
    heading.append(" ", count);
    const list = h("ul", { class: "mp-list", "aria-labelledby": heading.id, "data-testid": `${testid}-list` });
    const emptyEl = h("p", { class: "mp-empty", text: empty, hidden: true });
    const el = h("section", { class: "mp-section", "aria-labelledby": heading.id, "data-testid": `${testid}-section` }, heading, list, emptyEl);
    let toggle = () => {};
    let addButton = null;
    if (form && this.may.create(type)) {
      const prefix = { problem: "add-problem", recommendation: "add-rec", plan_item: "add-plan" }[type];
      const wired = this.formToggle(form, addText, `${prefix}-button`);
      form.append(this.formButtons(addText, `${prefix}-submit`, `${prefix}-cancel`, () => wired.toggle(false)));
      addButton = wired.button;
      toggle = wired.toggle;
      el.append(h("div", { class: "mp-add" }, addButton, form));
    }
    return { el, list, emptyEl, count, form, addButton, toggle };
  }

  // ---- rendering ----

  render() {
    const store = this.store;
    const online = store.online;
    const readOnly = store.readOnly;

    show(this.readOnlyBanner, readOnly);
    setText(this.readOnlyBanner, store.readOnlyReason);
    // "Adding Amlodipine." and the like are about edits: stale once nothing can be edited.
    if (readOnly && !this.wasReadOnly) setText(this.live, "");
    this.wasReadOnly = readOnly;
    setAttr(this.el, "data-readonly", readOnly ? "true" : null);
    setAttr(this.el, "data-online", online ? "true" : "false");

    const queued = store.queueLength;
    show(this.queueIndicator, (!online || store.notSavedYet) && !readOnly && queued > 0);
    setText(
      this.queueIndicator,
      online && store.notSavedYet
        ? `${plural(queued, "edit", "edits")} not saved yet: the server cannot save right now. They are kept and sent again automatically.`
        : `${plural(queued, "edit", "edits")} waiting to be sent`,
    );
    setAttr(this.queueIndicator, "data-count", String(queued));
    show(this.offline, !online && !readOnly);
    setText(
      this.offline,
      store.waiting
        ? "Waiting to be let back in. Your edits are kept and sent when you are in the call again."
        : queued
          ? "Offline. Your edits are kept on this device and sent when the connection is back."
          : "Offline. Changes you make are kept and sent when the connection is back.",
    );

    this.renderRejected();
    this.renderList("medication", this.medList, (entity) => new MedRow(this, entity), "med-pending-row", "New medication");
    show(this.medEmpty, store.list("medication").length === 0 && store.pendingAdds("medication").length === 0);

    if (this.addMedButton) {
      show(this.addMedButton, !readOnly);
      if (readOnly) show(this.addMedForm, false);
    }
    const sectionRows = {
      problem: (entity) => new ProblemRow(this, entity),
      recommendation: (entity) => new RecRow(this, entity),
      plan_item: (entity) => new PlanRow(this, entity),
    };
    for (const [type, section] of Object.entries(this.sections)) {
      const n = this.renderList(type, section.list, sectionRows[type], `${type}-pending-row`, "New item");
      show(section.emptyEl, n === 0);
      setText(section.count, n ? `(${n})` : "");
      if (section.addButton) {
        show(section.addButton, !readOnly);
        if (readOnly && section.form) show(section.form, false);
      }
    }
    if (this.problemMeds) this.renderProblemMedChoices();
    if (this.recProblem) this.renderRecProblemChoices();
    if (this.recMedication) this.renderRecMedicationChoices();
    this.waiting.render();
  }

  /** Keyed, in-place list rendering; returns the number of rows shown. */
  renderList(type, container, create, pendingTestid, pendingText) {
    const rows = this.rows[type];
    const pendingRows = this.pendingRows[type];
    const seen = new Set();
    const nodes = [];
    for (const entity of this.store.list(type)) {
      let row = rows.get(entity.id);
      if (row) row.update(entity); // cheap; pending, conflict and read-only state change too
      else rows.set(entity.id, (row = create(entity)));
      seen.add(entity.id);
      nodes.push(row.el);
    }
    for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
    const waiting = !this.store.online;
    const pendingSeen = new Set();
    for (const add of this.store.pendingAdds(type)) {
      let row = pendingRows.get(add.entityId);
      if (!row) pendingRows.set(add.entityId, (row = pendingRow(pendingTestid, pendingText)));
      const value = add.value;
      const title =
        value.name ??
        (value.category ? VALUE_LABELS.category[value.category] : null) ??
        value.text ??
        value.talked_about ??
        pendingText;
      row.update(title, waiting);
      pendingSeen.add(add.entityId);
      nodes.push(row.el);
    }
    for (const id of [...pendingRows.keys()]) if (!pendingSeen.has(id)) pendingRows.delete(id);
    syncChildren(container, nodes);
    return nodes.length;
  }

  renderRejected() {
    const items = this.store.rejected;
    const key = items.map((item) => item.id).join(" ");
    show(this.rejectedBox, items.length > 0);
    if (key === this.rejectedKey) return;
    this.rejectedKey = key;
    const focusedIndex = [...this.rejectedList.querySelectorAll("button")].indexOf(document.activeElement);
    this.rejectedList.replaceChildren(
      ...items.map((item) =>
        h(
          "li",
          { class: "mp-rejected__item", "data-testid": "rejected-item", "data-code": item.code },
          h("span", { class: "mp-rejected__what", text: item.label }),
          h("span", { class: "mp-rejected__why", text: item.message }),
          h("button", {
            type: "button",
            class: "mp-btn mp-btn--small",
            "data-testid": "rejected-dismiss",
            "aria-label": `Dismiss: ${item.label}`,
            text: "Dismiss",
            onclick: () => this.store.dismissRejected(item.id),
          }),
        ),
      ),
    );
    show(this.rejectedAll, items.length > 1);
    if (focusedIndex >= 0) {
      const buttons = this.rejectedList.querySelectorAll("button");
      (buttons[Math.min(focusedIndex, buttons.length - 1)] ?? this.heading).focus();
    }
  }

  renderProblemMedChoices() {
    const meds = this.store.list("medication");
    const nodes = [];
    const seen = new Set();
    for (const med of meds) {
      let entry = this.problemMedInputs.get(med.id);
      if (!entry) {
        const box = h("input", { type: "checkbox", value: med.id, "data-testid": "add-problem-med", id: uid("mp-check") });
        const label = h("label", { for: box.id });
        entry = { box, label, wrap: h("div", { class: "mp-check" }, box, label) };
        this.problemMedInputs.set(med.id, entry);
      }
      setText(entry.label, med.data?.name ?? med.id);
      seen.add(med.id);
      nodes.push(entry.wrap);
    }
    for (const id of [...this.problemMedInputs.keys()]) if (!seen.has(id)) this.problemMedInputs.delete(id);
    if (!nodes.length) nodes.push(this.noMedsNote ??= h("p", { class: "mp-hint", text: "No medications yet." }));
    syncChildren(this.problemMeds, nodes);
  }

  renderRecMedicationChoices() {
    const select = this.recMedication;
    const options = [["", "No medication"]];
    for (const med of this.store.list("medication")) {
      const data = med.data ?? {};
      options.push([med.id, [data.name, data.strength].filter(Boolean).join(" ") || med.id]);
    }
    const key = JSON.stringify(options);
    if (key === this.recMedicationKey) return;
    this.recMedicationKey = key;
    const current = select.value;
    select.replaceChildren(...options.map(([value, label]) => h("option", { value, text: label })));
    select.value = options.some(([value]) => value === current) ? current : "";
  }

  renderRecProblemChoices() {
    const select = this.recProblem;
    const options = [["", "No linked problem"]];
    for (const problem of this.store.list("problem")) {
      const description = problem.data?.description ? `: ${problem.data.description.slice(0, 40)}` : "";
      options.push([problem.id, `${VALUE_LABELS.category[problem.data?.category] ?? "Problem"}${description}`]);
    }
    const key = JSON.stringify(options);
    if (key === this.recProblemKey) return;
    this.recProblemKey = key;
    const current = select.value;
    select.replaceChildren(...options.map(([value, label]) => h("option", { value, text: label })));
    select.value = options.some(([value]) => value === current) ? current : "";
  }

  destroy() {
    this.destroyed = true;
    this.unsubscribe?.();
    this.el.remove();
  }
}

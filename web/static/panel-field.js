// @ts-check
// One medication field on its card: its value, an inline editor, and its conflict prompt
// and override notice.

import { t } from "./i18n.js";
import { h, labelled, selectOf, setAttr, setText, show, uid } from "./panel-dom.js";
import {
  actionFor,
  choiceOptions,
  defaultFor,
  formatValue,
  hasTransitions,
  isCompareAndSet,
  maxLength,
  nextValues,
  required,
  valueKind,
} from "./panel-schema.js";
import { ConflictSlot, OverrideSlot } from "./panel-conflict.js";
import {
  DATE_PATTERN,
  DIGITS_PATTERN,
  EDIT_MEDICATION,
  MED_FIELD_UI,
  medFieldLabel,
  medFieldNamed,
} from "./panel-view-common.js";

// ---- one medication field --------------------------------------------------------------

export class FieldCell {
  /**
   * @param {import("./panel-med-row.js").MedRow} row
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
    this.ui = MED_FIELD_UI[field] ?? {};
    this.schema = this.view.schema;
    this.kind = valueKind(this.schema, "medication", field);
    this.max = maxLength(this.schema, "medication", field);
    this.variant = variant;
    this.hideEmpty = hideEmpty;
    this.editText = editText ?? (() => t("panel.field.edit"));
    this.labelText = medFieldLabel(field, this.view.patient);
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
    return medFieldNamed(this.field, this.view.patient, this.row.name());
  }

  display(value) {
    const empty = this.ui.empty ? t(this.ui.empty) : "—";
    return formatValue("medication", this.field, value, { role: this.view.role, empty });
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
      const words = pending.waiting ? "panel.field.pending.waiting" : "panel.field.pending.sending";
      setText(this.pendingEl, t(words, { value: this.display(pending.value) }));
      setAttr(this.pendingEl, "data-state", pending.waiting ? "waiting" : "sending");
    }

    this.conflict.update(this.store.conflictFor(entity.id, this.field));
    this.override.update(entity.id);

    if (this.editing) {
      const seen = entity.versions?.[this.field];
      const changed = seen !== this.editing.seenVersion;
      show(this.editing.note, changed);
      if (changed) {
        const who = entity.updated_by?.name || t("panel.common.someone");
        const words = isCompareAndSet(this.schema, "medication", this.field) ? "panel.field.changed_ask" : "panel.field.changed_replace";
        setText(this.editing.note, t(words, { who, value: this.display(value) }));
      }
    }
  }

  makeControl(start, entity) {
    const { field, max, schema } = this;
    if (hasTransitions(schema, "medication", field)) {
      // A status: its value now, then only the values the transitions allow from it.
      const current = entity.data?.[field] ?? defaultFor(schema, "medication", field);
      const options = [
        [current, t("panel.field.now", { value: formatValue("medication", field, current) })],
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
    const sourceControl = sourceSelect ? labelled(t("panel.view.add_med.source"), sourceSelect).wrap : null;
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
        h("button", { type: "submit", class: "mp-btn mp-btn--small mp-btn--primary", "data-testid": `save-${field}`, text: t("panel.med.save") }),
        h("button", {
          type: "button",
          class: "mp-btn mp-btn--small",
          "data-testid": `cancel-${field}`,
          text: t("panel.view.cancel"),
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
    const max = this.max;
    if (required(this.schema, "medication", this.field) && value === null) return this.fail(t("panel.field.required", { label }));
    if (max !== null && typeof value === "string" && value.length > max) {
      return this.fail(t("panel.field.too_long", { label, max }));
    }
    if (this.kind === "rxnorm" && value !== null && !DIGITS_PATTERN.test(value)) {
      return this.fail(max !== null ? t("panel.field.digits_max", { label, max }) : t("panel.field.digits", { label }));
    }
    if (this.kind === "date" && value !== null && !DATE_PATTERN.test(value)) {
      return this.fail(t("panel.field.date", { label }));
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

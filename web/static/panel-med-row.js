// @ts-check
// A medication card: its fields (panel-field.js), the patient's confirmation, the
// history drawer, and the audience of its notes.

import { t } from "./i18n.js";
import { h, labelled, setAttr, setText, show, syncChildren, uid } from "./panel-dom.js";
import { describeProposed, maxLength, shorten } from "./panel-schema.js";
import { FieldCell } from "./panel-field.js";
import { HistoryDrawer } from "./panel-history.js";
import { changedByText, confirmedValuesText, patientProposalText, staffProposalText } from "./panel-view-common.js";

// The patient's confirmation as the patient reads it (panel.med.state.*), by its value.
const CONFIRMATION_TEXT = {
  confirmed: "panel.med.state.confirmed",
  corrected: "panel.med.state.corrected",
  "needs-confirming": "panel.med.state.needs_confirming",
};

// ---- a medication card -----------------------------------------------------------------

export class MedRow {
  /** @param {import("./panel-view.js").PanelView} view @param {import("./panel-types.js").Entity} entity */
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
    return this.entity?.data?.name || t("panel.med.this_medication");
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
      text: t("panel.med.more"),
      onclick: () => {
        const open = this.moreRegion.hidden;
        show(this.moreRegion, open);
        setAttr(this.moreButton, "aria-expanded", String(open));
        setText(this.moreButton, t(open ? "panel.med.fewer" : "panel.med.more"));
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
      text: t("panel.med.confirm"),
      onclick: () => {
        // Compare-and-set: the store sends the confirmation's version as shown now, so a
        // confirmation of values that changed meanwhile is refused, not recorded.
        this.store.setField("medication", this.id, "patient_confirmation", "confirmed");
        this.view.announce(t("panel.med.sending_confirmation", { name: this.name() }));
      },
    });
    this.differentForm = this.buildDifferentForm();
    this.differentButton = h("button", {
      type: "button",
      class: "mp-btn",
      "data-testid": "take-differently",
      "aria-expanded": "false",
      "aria-controls": this.differentForm.id,
      text: t("panel.med.take_differently"),
      onclick: () => this.toggleDifferent(this.differentForm.hidden),
    });
    this.confirmActions = h("div", { class: "mp-actions" }, this.confirmButton, this.differentButton);
    const confirm = h(
      "div",
      { class: "mp-confirm", role: "group", "aria-label": t("panel.med.confirm_group"), "data-testid": "med-confirm" },
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
      this.cell("adherence", { editText: (e) => t(e.data?.adherence ? "panel.med.adherence_change" : "panel.med.adherence_tell") }),
      this.cell("patient_note", { editText: (e) => t(e.data?.patient_note ? "panel.med.note_change" : "panel.med.note_add") }),
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
    const { wrap } = labelled(t("panel.med.how_label"), input, {
      hint: t("panel.med.how_hint"),
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
        h("button", { type: "submit", class: "mp-btn mp-btn--primary", "data-testid": "patient-how-taken-save", text: t("panel.med.save") }),
        h("button", {
          type: "button",
          class: "mp-btn",
          "data-testid": "patient-how-taken-cancel",
          text: t("panel.view.cancel"),
          onclick: () => this.toggleDifferent(false),
        }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) {
        setText(error, t("panel.med.how_needed"));
        show(error, true);
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
        input.focus();
        return;
      }
      this.store.setField("medication", this.id, "patient_how_taken", text);
      this.store.setField("medication", this.id, "patient_confirmation", "corrected");
      this.view.announce(t("panel.med.sending_how", { name: this.name() }));
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
    if (shown) {
      setText(this.confirmedValues, t(state === "needs-confirming" ? "panel.med.patient_had_confirmed" : "panel.med.patient_confirmed", { values }));
    }
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
    setText(this.confirmText, t(Object.hasOwn(CONFIRMATION_TEXT, state ?? "") ? CONFIRMATION_TEXT[state] : "panel.med.state.unconfirmed"));
    setAttr(this.confirmText, "data-value", state ?? "");
    const values = confirmedValuesText(data.confirmed_values, this.view.role);
    const showValues = Boolean(values) && (state === "confirmed" || state === "needs-confirming");
    show(this.confirmedValues, showValues);
    if (showValues) setText(this.confirmedValues, state === "needs-confirming" ? t("panel.med.had_confirmed", { values }) : values);
    // My confirmation arrived after the details changed: the server refused it.
    const conflict = this.store.conflictFor(entity.id, "patient_confirmation");
    show(this.confirmConflict, Boolean(conflict));
    if (conflict) setText(this.confirmConflict, t("panel.med.changed_while_confirming"));
    setText(this.confirmButton, t(state === "needs-confirming" ? "panel.med.confirm_now" : "panel.med.confirm"));
    show(this.patientHow, Boolean(data.patient_how_taken) && data.patient_confirmation === "corrected");
    setText(this.patientHow, data.patient_how_taken ?? "");
    const pending =
      this.store.pendingFor(entity.id, "patient_confirmation") || this.store.pendingFor(entity.id, "patient_how_taken");
    show(this.confirmPending, Boolean(pending));
    if (pending) setText(this.confirmPending, t(pending.waiting ? "panel.med.pending.waiting" : "panel.med.pending.sending"));
    const canConfirm = !this.store.readOnly && this.view.may.edit("medication", "patient_confirmation");
    show(this.confirmActions, canConfirm);
    if (!canConfirm && !this.differentForm.hidden) this.toggleDifferent(false);
    setAttr(this.confirmButton, "aria-description", this.name());
    setAttr(this.differentButton, "aria-description", this.name());
  }
}

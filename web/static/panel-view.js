// @ts-check
// The medication panel's DOM: the "waiting for you" section, medication cards with inline
// editing, conflict prompts, override notices, history drawers, the patient's
// plain-language view, and the problem / recommendation / action plan sections. Everything
// it shows comes from a PanelStore (panel-store.js); everything a person does becomes a
// store call. Rows are kept by entity id and updated in place, so an open editor, its typed
// text and the keyboard focus survive incoming changes.
//
// This module is the panel's frame (sections, add forms, notices); each kind of row is a
// module of its own: panel-med-row.js (with panel-field.js and panel-history.js),
// panel-problem-row.js, panel-rec-row.js, panel-plan-row.js, panel-waiting.js, and what
// they share in panel-conflict.js, panel-audience.js and panel-view-common.js.

import { t, tCount } from "./i18n.js";
import { h, labelled, selectOf, setAttr, setText, show, syncChildren, uid } from "./panel-dom.js";
import {
  choiceOptions,
  defaultFor,
  fieldSpec,
  fieldWord,
  formatValue,
  maxLength,
  required,
  valueLabel,
  valueKind,
} from "./panel-schema.js";
import { MedRow } from "./panel-med-row.js";
import { PlanRow } from "./panel-plan-row.js";
import { ProblemRow } from "./panel-problem-row.js";
import { RecRow } from "./panel-rec-row.js";
import { MED_FIELD_UI, pendingRow, proposedLabel, proposedKeys, requiredAttrs, requiredMark } from "./panel-view-common.js";
import { WaitingSection } from "./panel-waiting.js";


/**
 * The line about edits kept on this device: waiting to be sent, or (the server answered
 * "not saved yet") to be sent again.
 * @param {number} count @param {boolean} notSavedYet @param {string} [language]
 */
export function queueText(count, notSavedYet, language) {
  return tCount(notSavedYet ? "panel.view.queue.unsaved" : "panel.view.queue.waiting", count, {}, language);
}

/**
 * Why the panel is offline, and what happens to the edits meanwhile.
 * @param {{waiting: boolean, queued: number}} state @param {string} [language]
 */
export function offlineText({ waiting, queued }, language) {
  if (waiting) return t("panel.view.offline.waiting_room", {}, language);
  return t(queued ? "panel.view.offline.queued" : "panel.view.offline.empty", {}, language);
}

// ---- the panel ---------------------------------------------------------------------------

export class PanelView {
  /** @param {HTMLElement} root @param {import("./panel-store.js").PanelStore} store */
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
    /** @type {HTMLElement | null} shown when no medication is on the list */
    this.noMedsNote = null;
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
      text: this.patient ? t("panel.view.title_patient") : t("panel.view.title"),
    });
    this.offline = h("p", { class: "mp-offline", "data-testid": "panel-offline", hidden: true });
    this.queueIndicator = h("p", { class: "mp-queue", "data-testid": "queue-indicator", role: "status", hidden: true });
    this.readOnlyBanner = h("p", { class: "mp-readonly", "data-testid": "panel-readonly", hidden: true });
    this.live = h("p", { class: "mp-live", "data-testid": "panel-live", role: "status", "aria-live": "polite" });
    this.buildRejected();

    this.waiting = new WaitingSection(this);
    this.medList = h("ul", { class: "mp-list mp-meds", "aria-labelledby": this.heading.id, "data-testid": "med-list" });
    this.medEmpty = h("p", { class: "mp-empty", text: t("panel.view.no_meds_on_list"), hidden: true });
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
        title: this.patient ? t("panel.view.problems_patient") : t("panel.view.problems"),
        testid: "problems",
        empty: t("panel.view.no_problems"),
        addText: t("panel.view.add_problem"),
        form: may.create("problem") ? this.buildProblemForm() : null,
      }),
      recommendation: this.buildSection({
        type: "recommendation",
        title: t("panel.view.recommendations"),
        testid: "recommendations",
        empty: t("panel.view.no_recommendations"),
        addText: t("panel.view.add_recommendation"),
        form: may.create("recommendation") ? this.buildRecForm() : null,
      }),
      plan_item: this.buildSection({
        type: "plan_item",
        title: this.patient ? t("panel.view.plan_patient") : t("panel.view.plan"),
        testid: "plan",
        empty: t("panel.view.no_plan"),
        addText: t("panel.view.add_plan_item"),
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
      text: t("panel.view.dismiss_all"),
      onclick: () => {
        this.store.dismissRejected();
        this.heading.focus();
      },
    });
    const title = h("p", { class: "mp-rejected__title", id: uid("mp-rejected"), text: t("panel.view.not_saved") });
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
      h("button", { type: "button", class: "mp-btn", "data-testid": cancelTestid, text: t("panel.view.cancel"), onclick: onCancel }),
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
    /** The label of the input of `field` (message `panel.view.add_med.<key>`), marked when required. */
    const label = (key, field) => t(`panel.view.add_med.${key}`) + requiredMark(schema, "medication", field);
    const el = h(
      "form",
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-med-form", "aria-label": t("panel.view.add_med.form") },
      labelled(label("name", "name"), name).wrap,
      labelled(label("strength", "strength"), strength, { hint: t("panel.view.add_med.strength_hint") }).wrap,
      labelled(label("form_field", "form"), form, { hint: t("panel.view.add_med.form_hint") }).wrap,
      labelled(label("how_taken", "how_taken"), how).wrap,
      labelled(label("why", "why"), why).wrap,
      labelled(label("kind", "kind"), kind).wrap,
      source ? labelled(label("source", "source"), source, { hint: t("panel.view.add_med.source_hint") }).wrap : null,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true, "data-testid": "add-med-error" }),
    );
    const { button, toggle } = this.formToggle(el, t("panel.view.add_med.button"), "add-med-button");
    el.append(this.formButtons(t("panel.view.add_med.submit"), "add-med-submit", "add-med-cancel", () => toggle(false)));
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = { name: name.value.trim(), kind: kind.value };
      if (!value.name && required(schema, "medication", "name")) {
        return this.formError(el, t("panel.view.add_med.name_needed"), name);
      }
      /** @type {[string, HTMLInputElement | HTMLTextAreaElement][]} */
      const texts = [["strength", strength], ["form", form], ["how_taken", how], ["why", why]];
      for (const [key, control] of texts) {
        const text = control.value.trim();
        if (text) value[key] = text;
      }
      if (source?.value) value.source = source.value;
      this.store.add("medication", value, { source: source?.value || undefined });
      this.announce(t("panel.view.add_med.adding", { name: value.name }));
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
    return { select, wrap: labelled(t("panel.view.who_sees_it"), select).wrap };
  }

  buildProblemForm() {
    const schema = this.schema;
    const category = selectOf(
      [["", t("panel.view.add_problem.choose_category")], ...choiceOptions(schema, "problem", "category").filter(([value]) => value !== null)],
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
    const label = (field) => t(`panel.view.add_problem.${field}`) + requiredMark(schema, "problem", field);
    this.problemMeds = h("div", { class: "mp-checks" });
    this.problemMedInputs = new Map();
    const audience = this.audienceSelect("problem", "add-problem-audience");
    const el = h(
      "form",
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-problem-form", "aria-label": t("panel.view.add_problem.form") },
      labelled(label("category"), category).wrap,
      labelled(label("severity"), severity).wrap,
      labelled(label("description"), description).wrap,
      h("fieldset", { class: "mp-fieldset" }, h("legend", { text: t("panel.view.add_problem.linked_meds") }), this.problemMeds),
      audience?.wrap,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true }),
    );
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!category.value && required(schema, "problem", "category")) {
        return this.formError(el, t("panel.view.add_problem.category_needed"), category);
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
      this.announce(t("panel.view.add_problem.adding", { category: formatValue("problem", "category", value.category) }));
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
        changeOptions.map(([value, label]) => [value, value === null ? t("panel.view.add_rec.no_change") : label]),
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
        const label = proposedLabel(key) ?? t("panel.view.add_rec.new_value", { field: fieldWord("medication", key) });
        const { wrap } = labelled(label, control);
        proposedInputs.set(key, { control, wrap });
        inputs.append(wrap);
      }
      proposedBox = h(
        "fieldset",
        { class: "mp-fieldset", "data-testid": "add-rec-proposed", hidden: true },
        h("legend", { text: t("panel.view.add_rec.proposed") }),
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
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-rec-form", "aria-label": t("panel.view.add_rec.form") },
      labelled(t("panel.view.add_rec.text") + mark("text"), text).wrap,
      labelled(t("panel.view.add_rec.to") + mark("to"), to).wrap,
      labelled(t("panel.view.add_rec.problem") + mark("problem_id"), this.recProblem).wrap,
      therapy ? labelled(t("panel.view.add_rec.medication"), this.recMedication).wrap : null,
      therapy ? labelled(t("panel.view.add_rec.change"), change).wrap : null,
      proposedBox,
      audience?.wrap,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true }),
    );
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = { text: text.value.trim(), to: to.value };
      if (!value.text && required(schema, "recommendation", "text")) {
        return this.formError(el, t("panel.view.add_rec.text_needed"), text);
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
          return this.formError(el, t("panel.view.add_rec.name_needed"), proposedInputs.get("name")?.control);
        }
        if (kind && kind !== "start" && !medicationId) {
          return this.formError(el, t("panel.view.add_rec.medication_needed"), this.recMedication);
        }
        if (kind && kind !== "start" && kind !== "stop" && kind !== "other" && !Object.keys(proposed).length) {
          return this.formError(el, t("panel.view.add_rec.values_needed"), [...proposedInputs.values()].find((i) => !i.wrap.hidden)?.control);
        }
        if (medicationId) value.medication_id = medicationId;
        if (kind) value.change = kind;
        if (Object.keys(proposed).length) value.proposed = proposed;
      }
      this.store.add("recommendation", value);
      this.announce(t("panel.view.add_rec.adding"));
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
      setAttr(control, "placeholder", now ? t("panel.view.add_rec.now", { value: now }) : null);
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
      { class: "mp-form", hidden: true, novalidate: true, "data-testid": "add-plan-form", "aria-label": t("panel.view.add_plan.form") },
      labelled(t("panel.view.add_plan.talked_about") + mark("talked_about"), talked).wrap,
      labelled(t("panel.view.add_plan.to_do") + mark("to_do"), todo).wrap,
      audience?.wrap,
      h("p", { class: "mp-error", id: uid("mp-error"), hidden: true }),
    );
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = { talked_about: talked.value.trim() };
      if (!value.talked_about && required(schema, "plan_item", "talked_about")) {
        return this.formError(el, t("panel.view.add_plan.talked_needed"), talked);
      }
      const text = todo.value.trim();
      if (text) value.to_do = text;
      if (audience) value.audience = audience.select.value;
      this.store.add("plan_item", value);
      this.announce(t("panel.view.add_plan.adding"));
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
    /** @type {(open: boolean) => void} */
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
    setText(this.queueIndicator, queueText(queued, online && store.notSavedYet));
    setAttr(this.queueIndicator, "data-count", String(queued));
    show(this.offline, !online && !readOnly);
    setText(this.offline, offlineText({ waiting: store.waiting, queued }));

    this.renderRejected();
    this.renderList("medication", this.medList, (entity) => new MedRow(this, entity), "med-pending-row", t("panel.view.new_medication"));
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
      const n = this.renderList(type, section.list, sectionRows[type], `${type}-pending-row`, t("panel.view.new_item"));
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
        (value.category ? valueLabel("category", value.category) : null) ??
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
    const focused = /** @type {HTMLButtonElement} */ (document.activeElement);
    const focusedIndex = [...this.rejectedList.querySelectorAll("button")].indexOf(focused);
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
            "aria-label": t("panel.view.dismiss_item", { item: item.label }),
            text: t("panel.common.dismiss"),
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
    if (!nodes.length) nodes.push(this.noMedsNote ??= h("p", { class: "mp-hint", text: t("panel.view.no_meds") }));
    syncChildren(this.problemMeds, nodes);
  }

  renderRecMedicationChoices() {
    const select = this.recMedication;
    const options = [["", t("panel.view.add_rec.no_medication")]];
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
    const options = [["", t("panel.view.add_rec.no_problem")]];
    for (const problem of this.store.list("problem")) {
      const description = problem.data?.description ? `: ${problem.data.description.slice(0, 40)}` : "";
      options.push([problem.id, `${valueLabel("category", problem.data?.category) ?? t("panel.view.add_rec.problem_fallback")}${description}`]);
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

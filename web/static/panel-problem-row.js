// @ts-check
// One drug therapy problem in the problems section.

import { t } from "./i18n.js";
import { h, setAttr, setText, show } from "./panel-dom.js";
import { formatValue } from "./panel-schema.js";
import { AudienceControl } from "./panel-audience.js";
import { changedByText } from "./panel-view-common.js";

export class ProblemRow {
  /** @param {import("./panel-view.js").PanelView} view @param {import("./panel-types.js").Entity} entity */
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
      t("panel.problem.item", { category: formatValue("problem", "category", e.data?.category) }));
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
    setText(this.severity, t("panel.problem.severity", { severity: formatValue("problem", "severity", data.severity) }));
    setAttr(this.severity, "data-value", data.severity ?? "");
    setText(this.status, formatValue("problem", "status", data.status));
    setAttr(this.status, "data-value", data.status ?? "");
    setText(this.description, data.description ?? "");
    show(this.description, Boolean(data.description));
    const names = (data.medication_ids ?? []).map((id) => this.store.entities.get(id)?.data?.name ?? t("panel.waiting.a_medication"));
    setText(this.meds, names.length ? t("panel.problem.medications", { names: names.join(", ") }) : "");
    show(this.meds, names.length > 0);
    setText(this.changedBy, changedByText(entity));
    const pending = this.store.pendingFor(entity.id, "status");
    show(this.pending, Boolean(pending));
    if (pending) {
      const status = formatValue("problem", "status", pending.value);
      setText(this.pending, t(pending.waiting ? "panel.waiting.pending.waiting" : "panel.waiting.pending.sending", { status }));
    }
    const editable = !this.store.readOnly && this.view.may.edit("problem", "status") && !pending;
    show(this.toggle, editable);
    setText(this.toggle, t(data.status === "resolved" ? "panel.problem.reopen" : "panel.problem.resolve"));
    this.audience.update(entity);
  }
}

// @ts-check
// One item of the Medication Action Plan.

import { t } from "./i18n.js";
import { h, setText, show } from "./panel-dom.js";
import { shorten } from "./panel-schema.js";
import { AudienceControl } from "./panel-audience.js";
import { changedByText } from "./panel-view-common.js";

// What we talked about, what to do, what was done: as the patient reads them, and the care team.
const PATIENT_LABELS = ["panel.view.add_plan.talked_about", "panel.view.add_plan.to_do", "panel.plan.what_i_did"];
const STAFF_LABELS = ["panel.plan.talked_about", "panel.plan.patient_to_do", "panel.plan.patient_did"];

export class PlanRow {
  /** @param {import("./panel-view.js").PanelView} view @param {import("./panel-types.js").Entity} entity */
  constructor(view, entity) {
    this.view = view;
    this.id = entity.id;
    const labels = (view.patient ? PATIENT_LABELS : STAFF_LABELS).map((key) => t("panel.plan.label", { label: t(key) }));
    this.talked = h("span", { "data-testid": "plan-talked-about" });
    this.todo = h("span", { "data-testid": "plan-to-do" });
    this.did = h("span", { "data-testid": "plan-what-i-did" });
    this.todoLine = h("p", { class: "mp-item__text" }, h("span", { class: "mp-field__label", text: labels[1] }), this.todo);
    this.didLine = h("p", { class: "mp-item__text" }, h("span", { class: "mp-field__label", text: labels[2] }), this.did);
    this.changedBy = h("p", { class: "mp-changed" });
    this.audience = new AudienceControl(view, "plan_item", entity.id, (e) => t("panel.plan.item", { text: shorten(e.data?.talked_about ?? "") }));
    this.el = h(
      "li",
      { class: "mp-item", "data-testid": "plan-row", "data-entity-id": entity.id },
      h("p", { class: "mp-item__text" }, h("span", { class: "mp-field__label", text: labels[0] }), this.talked),
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

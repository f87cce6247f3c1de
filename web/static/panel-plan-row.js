// @ts-check
// One item of the Medication Action Plan.

import { h, setText, show } from "./panel-dom.js";
import { shorten } from "./panel-schema.js";
import { AudienceControl } from "./panel-audience.js";
import { changedByText } from "./panel-view-common.js";

export class PlanRow {
  /** @param {import("./panel-view.js").PanelView} view @param {import("./panel-types.js").Entity} entity */
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

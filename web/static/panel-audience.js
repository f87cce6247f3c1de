// @ts-check
// Who sees an item (care team only / shared with the patient), and the button that switches it.

import { t } from "./i18n.js";
import { h, setAttr, setText, show } from "./panel-dom.js";
import { defaultFor, fieldSpec } from "./panel-schema.js";
import { audienceText } from "./panel-view-common.js";

// ---- problems, recommendations, action plan --------------------------------------------

/**
 * Who sees an item: a tag ("Care team only" / "Shared with patient") and, for those who may
 * change it, a button that switches it. Patients are never sent care-team-only items, so
 * they see neither.
 */
export class AudienceControl {
  /**
   * @param {import("./panel-view.js").PanelView} view @param {string} type @param {string} entityId
   * @param {(entity: import("./panel-types.js").Entity) => string} describe   names the item in the button's label
   */
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
    const text = value === "patient" ? t("panel.audience.make_care_team") : t("panel.audience.share");
    setText(this.button, text);
    setAttr(this.button, "aria-label", `${text}: ${this.describe(entity)}`);
  }
}

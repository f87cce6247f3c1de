// @ts-check
// One recommendation: what it would change, its decision buttons and its audience.

import { formatTime, h, setAttr, setText, show } from "./panel-dom.js";
import { describeProposed, formatValue, nextStatuses, shorten } from "./panel-schema.js";
import { AudienceControl } from "./panel-audience.js";
import { ConflictSlot, OverrideSlot } from "./panel-conflict.js";
import { changedByText, decide } from "./panel-view-common.js";

const DECISIONS = [
  ["accepted", "Accept", "rec-accept"],
  ["declined", "Decline", "rec-decline"],
  ["no-response", "No response", "rec-no-response"],
];

export class RecRow {
  /** @param {import("./panel-view.js").PanelView} view @param {import("./panel-types.js").Entity} entity */
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
export function recProposalText(store, data, role) {
  const parts = [];
  if (data.medication_id) parts.push(store.entities.get(data.medication_id)?.data?.name ?? "a medication");
  if (data.change) parts.push(formatValue("recommendation", "change", data.change));
  const values = describeProposed(data.proposed, { role });
  if (values) parts.push(values);
  return parts.join(" · ");
}

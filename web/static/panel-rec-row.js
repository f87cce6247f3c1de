// @ts-check
// One recommendation: what it would change, its decision buttons and its audience.

import { t } from "./i18n.js";
import { formatTime, h, setAttr, setText, show } from "./panel-dom.js";
import { describeProposed, formatValue, nextStatuses, shorten } from "./panel-schema.js";
import { AudienceControl } from "./panel-audience.js";
import { ConflictSlot, OverrideSlot, personText } from "./panel-conflict.js";
import { changedByText, decide } from "./panel-view-common.js";

// status, the button's words (a catalogue key), its test id
const DECISIONS = [
  ["accepted", "panel.waiting.accept", "rec-accept"],
  ["declined", "panel.waiting.decline", "rec-decline"],
  ["no-response", "panel.rec.no_response", "rec-no-response"],
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
    this.buttons = DECISIONS.map(([status, words, testid]) =>
      h("button", {
        type: "button",
        class: `mp-btn mp-btn--small${status === "accepted" ? " mp-btn--primary" : ""}`,
        "data-testid": testid,
        text: t(words),
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
    this.audience = new AudienceControl(view, "recommendation", entity.id, (e) => t("panel.rec.item", { text: shorten(e.data?.text ?? "") }));
    this.actions = h("div", { class: "mp-actions", role: "group", "aria-label": t("panel.waiting.decision") }, ...this.buttons);
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
    const meta = [formatValue("recommendation", "to", data.to)];
    if (problem) meta.push(t("panel.rec.about", { category: formatValue("problem", "category", problem.data?.category) }));
    setText(this.meta, meta.join(" · "));
    const proposal = recProposalText(this.store, data, this.view.role);
    show(this.proposal, Boolean(proposal));
    setText(this.proposal, proposal);
    const therapyChange = Boolean(data.change || data.medication_id || Object.keys(data.proposed ?? {}).length);
    setText(
      this.status,
      this.view.patient && therapyChange
        ? patientDecisionText(data.status)
        : formatValue("recommendation", "status", data.status),
    );
    setAttr(this.status, "data-value", data.status ?? "");
    const who = data.decided_by ? personText({ name: data.decided_by, role: data.decided_by_role }) : "";
    const decided = !who
      ? ""
      : data.decided_at
        ? t("panel.rec.decided_by_at", { who, time: formatTime(data.decided_at).short })
        : t("panel.rec.decided_by", { who });
    setText(this.decided, decided);
    const pending = this.store.pendingFor(entity.id, "status");
    show(this.pending, Boolean(pending));
    if (pending) {
      const status = formatValue("recommendation", "status", pending.value);
      setText(this.pending, t(pending.waiting ? "panel.waiting.pending.waiting" : "panel.waiting.pending.sending", { status }));
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

// A therapy change as the patient reads its decision (no response yet reads as still proposed).
const PATIENT_DECISION_WORDS = {
  proposed: "panel.rec.patient.proposed",
  "no-response": "panel.rec.patient.proposed",
  accepted: "panel.rec.patient.accepted",
  declined: "panel.rec.patient.declined",
};

/** @param {string | undefined} status */
function patientDecisionText(status) {
  return status && Object.hasOwn(PATIENT_DECISION_WORDS, status)
    ? t(PATIENT_DECISION_WORDS[status])
    : formatValue("recommendation", "status", status);
}

/** "Metformin · Dose change · strength 1000 mg": what a recommendation would change. */
export function recProposalText(store, data, role) {
  const parts = [];
  if (data.medication_id) parts.push(store.entities.get(data.medication_id)?.data?.name ?? t("panel.waiting.a_medication"));
  if (data.change) parts.push(formatValue("recommendation", "change", data.change));
  const values = describeProposed(data.proposed, { role });
  if (values) parts.push(values);
  return parts.join(" · ");
}

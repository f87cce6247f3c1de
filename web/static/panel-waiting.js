// @ts-check
// The "waiting for you" section at the top of the panel.

import { t, tCount } from "./i18n.js";
import { h, setAttr, setText, show, syncChildren, uid } from "./panel-dom.js";
import { formatValue, nextStatuses } from "./panel-schema.js";
import { recProposalText } from "./panel-rec-row.js";
import { decide } from "./panel-view-common.js";

// ---- "waiting for you" ---------------------------------------------------------------------


/**
 * The summary line of the section for `role`: how many recommendations wait for a
 * decision and how many medications for the patient's confirmation.
 * @param {string} role @param {number} toDecide @param {number} toConfirm @param {string} [language]
 */
export function waitingSummary(role, toDecide, toConfirm, language) {
  if (role === "clinician") {
    return toDecide ? tCount("panel.waiting.decide", toDecide, {}, language) : t("panel.waiting.decide.none", {}, language);
  }
  if (role === "patient") {
    return toConfirm ? tCount("panel.waiting.confirm", toConfirm, {}, language) : t("panel.waiting.confirm.none", {}, language);
  }
  if (!toDecide && !toConfirm) return t("panel.waiting.open.none", {}, language);
  return t(
    "panel.waiting.open.both",
    { decide: tCount("panel.waiting.open.decide", toDecide, {}, language), confirm: tCount("panel.waiting.open.confirm", toConfirm, {}, language) },
    language,
  );
}

/**
 * The top of the panel: what is still open for this reader (panel-schema.js `openItems`,
 * the server's rule). A clinician decides recommendations right here; a patient is led to
 * each medication to confirm; a pharmacist sees both counts.
 */
export class WaitingSection {
  /** @param {import("./panel-view.js").PanelView} view */
  constructor(view) {
    this.view = view;
    this.store = view.store;
    this.role = view.role;
    // Items are listed for whoever acts on them; the pharmacist, who acts on neither, gets
    // the counts (a long list above the medications would bury them again).
    this.decides = this.role === "clinician";
    this.confirms = this.role === "patient";
    const title = this.role === "pharmacist" ? t("panel.waiting.title_pharmacist") : t("panel.waiting.title");
    this.count = h("span", { class: "mp-count", "data-testid": "waiting-count" });
    this.heading = h("h2", { class: "mp__title mp__title--section", id: uid("mp-waiting"), tabindex: "-1", text: title }, " ", this.count);
    // Read out when the counts change (not on every render).
    this.summary = h("p", { class: "mp-waiting__summary", "data-testid": "waiting-summary", role: "status", "aria-live": "polite" });
    this.decideList = h("ul", { class: "mp-list", "data-testid": "waiting-decide-list", "aria-label": t("panel.waiting.to_decide") });
    this.confirmList = h("ul", { class: "mp-list", "data-testid": "waiting-confirm-list", "aria-label": t("panel.waiting.to_confirm") });
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
    setText(this.summary, waitingSummary(this.role, toDecide.length, toConfirm.length));

    const seen = new Set();
    const decideNodes = this.decides ? toDecide.map((rec) => this.row(rec, seen).el) : [];
    const confirmNodes = this.confirms ? toConfirm.map((med) => this.row(med, seen).el) : [];
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    syncChildren(this.decideList, decideNodes);
    syncChildren(this.confirmList, confirmNodes);
    show(this.decideList, decideNodes.length > 0);
    show(this.confirmList, confirmNodes.length > 0);
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
          this.view.announce(t(`panel.waiting.sending.${status}`));
          this.heading.focus();
        },
      });
    const buttons = canDecide
      ? [
          button("accepted", t("panel.waiting.accept"), "waiting-accept", true),
          button("declined", t("panel.waiting.decline"), "waiting-decline", false),
        ]
      : [];
    const actions = h("div", { class: "mp-actions", role: "group", "aria-label": t("panel.waiting.decision") }, ...buttons);
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
        if (sending) {
          const status = formatValue("recommendation", "status", sending.value);
          setText(pending, t(sending.waiting ? "panel.waiting.pending.waiting" : "panel.waiting.pending.sending", { status }));
        }
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
          text: t("panel.waiting.check"),
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
        setText(name, data.name ?? t("panel.waiting.a_medication"));
        const again = data.patient_confirmation === "needs-confirming";
        setText(state, again ? t("panel.waiting.confirm_again") : t("panel.waiting.unconfirmed"));
        setAttr(state, "data-value", again ? "needs-confirming" : "unconfirmed");
        if (go) setAttr(go, "aria-label", data.name ? t("panel.waiting.check_named", { name: data.name }) : t("panel.waiting.check_unnamed"));
      },
    };
  }
}

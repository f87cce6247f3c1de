// @ts-check
// The history drawer of one medication: its audit trail from the server (panel-history),
// oldest first.

import { formatTime, h, setAttr, setText, show, uid } from "./panel-dom.js";
import { derivedReason, fieldWord, formatValue } from "./panel-schema.js";

// ---- history drawer --------------------------------------------------------------------

export class HistoryDrawer {
  /** @param {import("./panel-med-row.js").MedRow} row */
  constructor(row) {
    this.row = row;
    this.store = row.store;
    this.view = row.view;
    this.open = false;
    this.loading = 0;
    const titleId = uid("mp-history-title");
    this.title = h("h4", { class: "mp-history__title", id: titleId });
    this.status = h("p", { class: "mp-history__status", "aria-live": "polite" });
    this.list = h("ol", { class: "mp-history__list", "data-testid": "history-list" });
    this.closeButton = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "history-close",
      text: "Close history",
      onclick: () => this.toggle(false),
    });
    this.el = h(
      "section",
      { class: "mp-history", id: uid("mp-history"), "data-testid": "history-drawer", "aria-labelledby": titleId, hidden: true },
      h("div", { class: "mp-history__head" }, this.title, this.closeButton),
      this.status,
      this.list,
    );
    this.button = h("button", {
      type: "button",
      class: "mp-btn mp-btn--small",
      "data-testid": "history-button",
      "aria-expanded": "false",
      "aria-controls": this.el.id,
      text: "History",
      onclick: () => this.toggle(!this.open),
    });
  }

  update(entity) {
    setText(this.title, `History of ${entity.data?.name ?? "this medication"}`);
    setAttr(this.button, "aria-label", `History of ${entity.data?.name ?? "this medication"}`);
  }

  toggle(open) {
    this.open = open;
    show(this.el, open);
    setAttr(this.button, "aria-expanded", String(open));
    if (open) {
      this.load();
      this.closeButton.focus();
    } else {
      this.button.focus();
    }
  }

  /** A change of this entity arrived while the drawer is open: show it. */
  refresh() {
    if (this.open) this.load();
  }

  async load() {
    const ticket = ++this.loading;
    if (!this.list.firstChild) setText(this.status, "Loading the history…");
    let events;
    try {
      events = await this.store.history(this.row.id);
    } catch (error) {
      if (ticket === this.loading) setText(this.status, error.message || "The history could not be loaded.");
      return;
    }
    if (ticket !== this.loading) return;
    setText(this.status, events.length ? "" : "No changes recorded yet.");
    const bySeq = new Map(events.map((event) => [event.seq, event]));
    this.list.replaceChildren(...events.map((event) => this.entry(event, bySeq)));
  }

  entry(event, bySeq) {
    const time = formatTime(event.at);
    const who = `${event.actor?.name ?? "Someone"}${event.actor?.role ? ` (${event.actor.role})` : ""}`;
    const type = event.entity_type ?? "medication";
    const li = h(
      "li",
      {
        class: "mp-history__entry",
        "data-testid": "history-entry",
        "data-outcome": event.outcome,
        "data-op": event.op,
        "data-seq": event.seq,
      },
      h("p", { class: "mp-history__meta" }, h("time", { datetime: event.at, title: time.full, text: time.short }), " · ", who),
    );
    const change = h("p", { class: "mp-history__change" });
    const creation = event.op === "add" || (event.op === "derived" && !event.field);
    if (creation) {
      change.append(h("span", { class: "mp-history__field", text: "added" }));
      if (event.new?.name) change.append(" ", h("span", { class: "mp-history__new", text: event.new.name }));
    } else if (event.op === "move") {
      change.append(h("span", { class: "mp-history__field", text: "moved in the list" }));
    } else {
      const fmt = (value) => formatValue(type, event.field, value, { empty: "(empty)" });
      change.append(
        h("span", { class: "mp-history__field", text: fieldWord(type, event.field) }),
        ": ",
        h("span", { class: "mp-history__old", text: fmt(event.old) }),
        h("span", { class: "mp-history__arrow", "aria-label": "changed to", text: " → " }),
        h("span", { class: "mp-history__new", text: fmt(event.new) }),
      );
    }
    li.append(change);
    if (event.op === "derived") {
      // A change the server made because of another one: say which.
      const cause = bySeq.get(event.detail?.cause_seq) ?? this.store.eventAt(event.detail?.cause_seq);
      const text =
        event.detail?.reason === "confirmation-reset"
          ? `reset ${derivedReason(event, cause)}`
          : event.detail?.reason === "recommendation-accepted"
            ? "applied from accepted recommendation"
            : "changed by the server";
      li.append(h("p", { class: "mp-history__derived", "data-testid": "history-derived", text }));
    }
    const overrode = event.detail?.overrode;
    if (overrode) {
      const value = formatValue(type, event.field, overrode.value, { empty: "(empty)" });
      const whose = overrode.actor?.name ? `${overrode.actor.name}${overrode.actor.role ? ` (${overrode.actor.role})` : ""}` : "someone";
      li.append(
        h("p", {
          class: "mp-history__overrode",
          "data-testid": "history-overrode",
          text: `“Use mine” after a conflict: replaced ${whose}’s value “${value}”`,
        }),
      );
    }
    if (event.source) {
      li.append(
        h("p", { class: "mp-history__source", text: `Source: ${formatValue("medication", "source", event.source)}` }),
      );
    }
    if (event.outcome === "conflict") {
      li.append(h("p", { class: "mp-history__conflict", "data-testid": "history-conflict", text: "conflict (not applied)" }));
    }
    return li;
  }
}

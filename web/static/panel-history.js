// @ts-check
// The history drawer of one medication: its audit trail from the server (panel-history),
// oldest first.

import { serverMessage, t } from "./i18n.js";
import { personText } from "./panel-conflict.js";
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
      text: t("panel.history.close"),
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
      text: t("panel.history.button"),
      onclick: () => this.toggle(!this.open),
    });
  }

  update(entity) {
    const name = entity.data?.name;
    const title = name ? t("panel.history.of", { name }) : t("panel.history.of_unnamed");
    setText(this.title, title);
    setAttr(this.button, "aria-label", title);
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
    if (!this.list.firstChild) setText(this.status, t("panel.history.loading"));
    let events;
    try {
      events = await this.store.history(this.row.id);
    } catch (error) {
      if (ticket === this.loading) setText(this.status, this.failure(error));
      return;
    }
    if (ticket !== this.loading) return;
    setText(this.status, events.length ? "" : t("panel.history.none"));
    const bySeq = new Map(events.map((event) => [event.seq, event]));
    this.list.replaceChildren(...events.map((event) => this.entry(event, bySeq)));
  }

  /** Why the history is not shown: offline, the server's refusal, or that it failed. */
  failure(error) {
    if (error?.code === "offline") return t("panel.history.offline");
    return serverMessage(error?.code ? error : null, t("panel.history.failed"));
  }

  entry(event, bySeq) {
    const time = formatTime(event.at);
    const who = personText(event.actor);
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
      change.append(h("span", { class: "mp-history__field", text: t("panel.history.added") }));
      if (event.new?.name) change.append(" ", h("span", { class: "mp-history__new", text: event.new.name }));
    } else if (event.op === "move") {
      change.append(h("span", { class: "mp-history__field", text: t("panel.history.moved") }));
    } else {
      const fmt = (value) => formatValue(type, event.field, value, { empty: t("panel.common.empty") });
      change.append(
        h("span", { class: "mp-history__field", text: fieldWord(type, event.field) }),
        ": ",
        h("span", { class: "mp-history__old", text: fmt(event.old) }),
        h("span", { class: "mp-history__arrow", "aria-label": t("panel.history.changed_to"), text: " → " }),
        h("span", { class: "mp-history__new", text: fmt(event.new) }),
      );
    }
    li.append(change);
    if (event.op === "derived") {
      // A change the server made because of another one: say which.
      const cause = bySeq.get(event.detail?.cause_seq) ?? this.store.eventAt(event.detail?.cause_seq);
      const text =
        event.detail?.reason === "confirmation-reset"
          ? t("panel.history.reset", { reason: derivedReason(event, cause) })
          : event.detail?.reason === "recommendation-accepted"
            ? t("panel.history.from_recommendation")
            : t("panel.history.by_server");
      li.append(h("p", { class: "mp-history__derived", "data-testid": "history-derived", text }));
    }
    const overrode = event.detail?.overrode;
    if (overrode) {
      const value = formatValue(type, event.field, overrode.value, { empty: t("panel.common.empty") });
      const whose = personText(overrode.actor?.name ? overrode.actor : null, { nobody: t("panel.common.someone_lower") });
      li.append(
        h("p", {
          class: "mp-history__overrode",
          "data-testid": "history-overrode",
          text: t("panel.history.overrode", { who: whose, value }),
        }),
      );
    }
    if (event.source) {
      li.append(
        h("p", { class: "mp-history__source", text: t("panel.history.source", { source: formatValue("medication", "source", event.source) }) }),
      );
    }
    if (event.outcome === "conflict") {
      li.append(h("p", { class: "mp-history__conflict", "data-testid": "history-conflict", text: t("panel.history.conflict") }));
    }
    return li;
  }
}

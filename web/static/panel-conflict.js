// @ts-check
// Conflict prompts ("changed by <name> while you were editing": keep theirs / use mine)
// and override notices ("<name> replaced your value"), shown next to a field.

import { has, t } from "./i18n.js";
import { formatTime, h, uid } from "./panel-dom.js";
import { fieldWord, formatValue, hasTransitions, nextValues } from "./panel-schema.js";

/**
 * "Ana (pharmacist)": a person as the panel names them, their role in the page's language.
 * @param {{name?: string, role?: string} | null | undefined} person
 * @param {{nobody?: string, language?: string}} [options]   `nobody`: what to say when there is no name ("Someone")
 */
export function personText(person, { nobody, language } = {}) {
  const name = person?.name || (nobody ?? t("panel.common.someone", {}, language));
  const role = person?.role;
  if (!role) return name;
  const word = has(`panel.common.role.${role}`) ? t(`panel.common.role.${role}`, {}, language) : role;
  return t("panel.common.with_role", { name, role: word }, language);
}

// ---- override notice -------------------------------------------------------------------

/**
 * "<name> replaced your <field> “<mine>” with “<theirs>”", next to the field, until
 * dismissed (the author of the replaced value sees it; both values stay in the history).
 */
export class OverrideSlot {
  /**
   * @param {import("./panel-view.js").PanelView} view @param {string} type @param {string} field
   * @param {() => void} focusAfter   moves the focus on when the notice goes while focused
   */
  constructor(view, type, field, focusAfter) {
    this.view = view;
    this.type = type;
    this.field = field;
    this.focusAfter = focusAfter;
    this.el = h("div", { class: "mp-override-slot" });
    this.key = "";
  }

  update(entityId) {
    const notices = this.view.store.overridesFor(entityId, this.field);
    const key = notices.map((n) => n.id).join(" ");
    if (key === this.key) return;
    this.key = key;
    const hadFocus = this.el.contains(document.activeElement);
    const role = this.view.role;
    const word = fieldWord(this.type, this.field, role);
    const fmt = (value) => formatValue(this.type, this.field, value, { role, empty: t("panel.common.empty") });
    this.el.replaceChildren(
      ...notices.map((notice) => {
        const who = notice.by?.name || t("panel.common.someone");
        const text = h("p", {
          class: "mp-override__text",
          id: uid("mp-override"),
          text: t("panel.conflict.replaced", { who: personText(notice.by), field: word, mine: fmt(notice.mine), theirs: fmt(notice.theirs) }),
        });
        const meta = t("panel.conflict.replaced_meta");
        const when = notice.at ? formatTime(notice.at) : null;
        return h(
          "div",
          { class: "mp-override", role: "group", "aria-labelledby": text.id, "data-testid": "override-notice", "data-field": this.field },
          text,
          h("p", {
            class: "mp-override__meta",
            text: when ? `${when.short} · ${meta}` : meta,
          }),
          h(
            "div",
            { class: "mp-actions" },
            h("button", {
              type: "button",
              class: "mp-btn mp-btn--small",
              "data-testid": "override-dismiss",
              "aria-label": t("panel.conflict.dismiss_replaced", { who, field: word }),
              text: t("panel.common.dismiss"),
              onclick: () => this.view.store.dismissOverride(notice.id),
            }),
          ),
        );
      }),
    );
    if (hadFocus && !this.el.contains(document.activeElement)) this.focusAfter();
  }
}

// ---- conflict prompt -------------------------------------------------------------------

/**
 * "Changed by <name> while you were editing": both values, Keep theirs / Use mine.
 * `onDone(focusTarget?)` runs after either button.
 */
function conflictPrompt(view, conflict, onDone) {
  const { type, field } = conflict;
  const role = view.role;
  const empty = t("panel.common.empty");
  const theirs = formatValue(type, field, conflict.theirs, { role, empty });
  const mine = formatValue(type, field, conflict.mine, { role, empty });
  const title = h("p", {
    class: "mp-conflict__title",
    id: uid("mp-conflict"),
    text: conflict.by?.name
      ? t("panel.conflict.changed_by", { name: conflict.by.name })
      : t("panel.conflict.changed_by_other"),
  });
  const values = h(
    "dl",
    { class: "mp-conflict__values" },
    h("div", {}, h("dt", { text: t("panel.conflict.theirs") }), h("dd", { "data-testid": "conflict-theirs", text: theirs })),
    h("div", {}, h("dt", { text: t("panel.conflict.mine") }), h("dd", { "data-testid": "conflict-mine", text: mine })),
  );
  const statusField = hasTransitions(view.schema, type, field);
  const mineAllowed =
    !view.store.readOnly &&
    view.may.edit(type, field) &&
    (statusField ? nextValues(view.schema, type, field, conflict.theirs).includes(conflict.mine) : theirs !== mine);
  const keep = h("button", {
    type: "button",
    class: "mp-btn mp-btn--small",
    "data-testid": "keep-theirs",
    text: t("panel.conflict.keep_theirs"),
    onclick: () => {
      view.store.keepTheirs(conflict.entity_id, field);
      onDone();
    },
  });
  const useMine = h("button", {
    type: "button",
    class: "mp-btn mp-btn--small mp-btn--primary",
    "data-testid": "use-mine",
    text: t("panel.conflict.use_mine"),
    hidden: !mineAllowed,
    onclick: () => {
      view.store.useMine(conflict.entity_id, field);
      onDone();
    },
  });
  const note = mineAllowed
    ? null
    : h("p", { class: "mp-hint", text: statusField ? t("panel.conflict.not_possible") : "" });
  return h(
    "div",
    {
      class: "mp-conflict",
      role: "group",
      "aria-labelledby": title.id,
      "data-testid": "conflict-prompt",
      "data-field": field,
    },
    title,
    values,
    note?.textContent ? note : null,
    h("div", { class: "mp-actions" }, keep, useMine),
  );
}

/** Keeps one conflict prompt in `slot` in step with the store (rebuilt only when it changes). */
export class ConflictSlot {
  /** @param {import("./panel-view.js").PanelView} view @param {() => void} onDone */
  constructor(view, onDone) {
    this.view = view;
    this.onDone = onDone;
    this.el = h("div", { class: "mp-conflict-slot" });
    this.key = null;
  }

  update(conflict) {
    const key = conflict ? `${conflict.id}|${this.view.store.readOnly}` : null;
    if (key === this.key) return;
    this.key = key;
    const hadFocus = this.el.contains(document.activeElement);
    this.el.replaceChildren();
    if (conflict) this.el.append(conflictPrompt(this.view, conflict, () => this.onDone()));
    if (hadFocus && !conflict) this.onDone();
  }
}

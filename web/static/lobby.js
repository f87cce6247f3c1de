// What the pharmacist manages: the waiting room list (Admit / Deny / Admit all), and the
// confirmation dialogs for removing someone and ending the consult for everyone.

import { has, t } from "./i18n.js";

/** @param {string} role */
const roleLabel = (role) => (has(`role.${role}`) ? t(`role.${role}`) : role ?? "");

/** The waiting room list; names are written with textContent only. */
export class WaitingRoomView {
  #root;
  #list;
  #title;
  #admitAll;
  #actions;
  people = [];

  /**
   * @param {HTMLElement} root  the section (hidden while nobody waits)
   * @param {{admit(id: string), deny(id: string), admitAll()}} actions
   */
  constructor(root, actions) {
    this.#root = root;
    this.#actions = actions;
    this.#list = root.querySelector("[data-lobby-list]");
    this.#title = root.querySelector("[data-lobby-title]");
    this.#admitAll = root.querySelector("[data-lobby-admit-all]");
    this.#admitAll.addEventListener("click", () => this.#run(this.#admitAll, () => actions.admitAll()));
  }

  /** @param {{id: string, role: string, display_name: string}[]} people */
  render(people) {
    const active = document.activeElement;
    const focusedId = active?.closest?.("[data-waiting-id]")?.dataset.waitingId;
    const focusedControl = active?.dataset?.testid;
    this.people = people;
    this.#root.hidden = people.length === 0;
    this.#title.textContent = t("lobby.title", { count: people.length });
    this.#admitAll.hidden = people.length < 2;
    this.#list.replaceChildren(...people.map((person) => this.#row(person)));
    if (!focusedId) return;
    // Rows are rebuilt: keep keyboard users on the same button, or in the list.
    const row = [...this.#list.children].find((item) => item.dataset.waitingId === focusedId);
    const same = row && [...row.querySelectorAll("button")].find((b) => b.dataset.testid === focusedControl);
    (same ?? this.#list.querySelector("button") ?? document.getElementById("mic-button"))?.focus();
  }

  #row(person) {
    const name = person.display_name || t("chat.someone");
    const item = document.createElement("li");
    item.className = "lobby__person";
    item.dataset.waitingId = person.id;
    item.dataset.testid = "waiting-person";
    const who = document.createElement("span");
    who.className = "lobby__who";
    const strong = document.createElement("strong");
    strong.textContent = name;
    const role = document.createElement("span");
    role.className = "lobby__role";
    role.textContent = roleLabel(person.role);
    who.append(strong, " ", role);
    const admit = button(t("lobby.admit"), "button--primary", "admit-button", t("lobby.admit_label", { name }));
    const deny = button(t("lobby.deny"), "", "deny-button", t("lobby.deny_label", { name }));
    admit.addEventListener("click", () => this.#run(admit, () => this.#actions.admit(person.id)));
    deny.addEventListener("click", () => this.#run(deny, () => this.#actions.deny(person.id)));
    const buttons = document.createElement("span");
    buttons.className = "lobby__buttons";
    buttons.append(admit, deny);
    item.append(who, buttons);
    return item;
  }

  async #run(control, action) {
    control.disabled = true;
    try {
      await action();
    } finally {
      control.disabled = false;
    }
  }
}

function button(text, modifier, testid, label) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = `button button--small ${modifier}`.trim();
  node.textContent = text;
  node.dataset.testid = testid;
  node.setAttribute("aria-label", label);
  return node;
}

/**
 * Open a <dialog> whose buttons carry data-dialog-confirm / data-dialog-cancel, and resolve
 * true when confirmed (Escape and Cancel resolve false). Focus returns where it was.
 * @param {HTMLDialogElement} dialog
 */
export function ask(dialog) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const confirm = dialog.querySelector("[data-dialog-confirm]");
    const cancel = dialog.querySelector("[data-dialog-cancel]");
    const onConfirm = () => dialog.close("confirm");
    const onCancel = () => dialog.close("cancel");
    confirm.addEventListener("click", onConfirm);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("close", () => {
      confirm.removeEventListener("click", onConfirm);
      cancel.removeEventListener("click", onCancel);
      if (opener?.isConnected) opener.focus();
      resolve(dialog.returnValue === "confirm");
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

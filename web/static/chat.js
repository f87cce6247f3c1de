// @ts-check
// The call's text chat (docs/protocol.md, "Chat"): the log of messages in server order,
// and its view. Every value from the server is written with textContent: a message is
// plain text, never markup, and keeps its line breaks.

/**
 * @typedef {{id: number, author: {id: string, role: string, display_name: string},
 *            at: string, text: string}} ChatMessage
 * @typedef {{ok?: boolean, message?: ChatMessage, error?: {code?: string, message?: string}}} ChatAck
 */

import { has, t } from "./i18n.js";

export const MAX_LENGTH = 1000;

/** @param {string} role */
const roleLabel = (role) => (has(`role.${role}`) ? t(`role.${role}`) : "");

/**
 * Whether `value` has the shape of a message (anything else from the socket is ignored).
 * @param {any} value
 * @returns {value is ChatMessage}
 */
export function isMessage(value) {
  return Boolean(value) && Number.isInteger(value.id) && typeof value.text === "string" &&
    typeof value.at === "string" && typeof value.author?.id === "string";
}

/** The messages seen, once each, in the order the server accepted them (`id`). */
export class ChatLog {
  /** @type {ChatMessage[]} */
  messages = [];

  /**
   * Adds what it did not have; returns whether anything changed.
   * @param {unknown[]} incoming
   */
  add(incoming) {
    const known = new Set(this.messages.map((message) => message.id));
    const fresh = incoming.filter(isMessage).filter((message) => !known.has(message.id));
    if (fresh.length === 0) return false;
    this.messages = [...this.messages, ...fresh].sort((a, b) => a.id - b.id);
    return true;
  }
}

/**
 * What to send for what the person typed, or a reason not to.
 * @param {string} text
 * @returns {{text: string} | {problem: string}}
 */
export function outgoing(text) {
  const trimmed = text.trim();
  if (!trimmed) return { problem: t("chat.empty") };
  if (trimmed.length > MAX_LENGTH) return { problem: t("chat.too_long", { max: MAX_LENGTH }) };
  return { text: trimmed };
}

export class ChatView {
  #root;
  #list;
  #form;
  #input;
  #error;
  #send;
  #onIncoming;
  #log = new ChatLog();
  #sending = false;
  #rendered = 0; // the id of the last message drawn

  /**
   * @param {HTMLElement} root
   * @param {(text: string) => Promise<ChatAck>} send
   * @param {(message: ChatMessage) => void} [onIncoming]  someone else's new message
   */
  constructor(root, send, onIncoming = () => {}) {
    this.#root = root;
    this.#send = send;
    this.#onIncoming = onIncoming;
    this.#list = /** @type {HTMLElement} */ (root.querySelector("[data-chat-list]"));
    this.#form = /** @type {HTMLFormElement} */ (root.querySelector("[data-chat-form]"));
    this.#input = /** @type {HTMLTextAreaElement} */ (root.querySelector("textarea"));
    this.#error = /** @type {HTMLElement} */ (root.querySelector("[data-chat-error]"));
    this.#form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#submit();
    });
    // Enter sends; Shift+Enter starts a new line.
    this.#input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#submit();
      }
    });
  }

  /** In the call: shown and writable. */
  open() {
    this.#root.hidden = false;
    this.#setWritable(true);
  }

  /** The call is over: what was said stays readable, nothing more can be sent. */
  close() {
    this.#setWritable(false);
  }

  /** @param {boolean} writable */
  #setWritable(writable) {
    this.#input.disabled = !writable;
    /** @type {HTMLButtonElement} */ (this.#form.querySelector("button")).disabled = !writable;
  }

  /**
   * @param {unknown[]} messages  from `chat-history`, `chat-message` or our own ack
   * @param {{incoming?: boolean}} [how]  incoming: someone else's, just written
   */
  add(messages, { incoming = false } = {}) {
    const before = this.#log.messages.length;
    if (!this.#log.add(messages)) return;
    this.#render();
    if (incoming && this.#log.messages.length > before) this.#onIncoming(this.#log.messages.at(-1));
  }

  async #submit() {
    if (this.#sending) return; // Enter pressed twice: one message
    const what = outgoing(this.#input.value);
    if ("problem" in what) return this.#problem(what.problem);
    this.#sending = true;
    this.#setWritable(false);
    let ack;
    try {
      ack = await this.#send(what.text);
    } catch {
      ack = { ok: false, error: { message: t("chat.no_answer") } };
    } finally {
      this.#sending = false;
      this.#setWritable(true);
    }
    if (!ack?.ok || !ack.message) {
      this.#problem(t("chat.not_sent", { reason: ack?.error?.message ?? t("chat.refused") }));
      this.#input.focus();
      return;
    }
    this.#problem("");
    this.#input.value = "";
    this.#input.focus();
    this.add([ack.message]);
  }

  /** @param {string} text */
  #problem(text) {
    this.#error.textContent = text;
    this.#error.hidden = !text;
  }

  // Only what is new is added to the list (a live region: a screen reader reads what is
  // added, not the whole conversation again); a message older than one drawn redraws it.
  #render() {
    const atBottom = this.#list.scrollHeight - this.#list.scrollTop - this.#list.clientHeight < 24;
    const messages = this.#log.messages;
    const redraw = messages.filter((message) => message.id <= this.#rendered).length !==
      this.#list.children.length;
    const fresh = redraw ? messages : messages.filter((message) => message.id > this.#rendered);
    const items = fresh.map((message) => {
      const item = document.createElement("li");
      item.className = "chat__message";
      item.dataset.testid = "chat-message";
      const who = document.createElement("p");
      who.className = "chat__who";
      const name = document.createElement("strong");
      name.textContent = message.author.display_name || t("chat.someone");
      const role = document.createElement("span");
      role.className = "chat__role";
      role.textContent = roleLabel(message.author.role);
      const time = document.createElement("time");
      time.dateTime = message.at;
      time.textContent = new Date(message.at).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
      who.append(name, " ", role, " ", time);
      const text = document.createElement("p");
      text.className = "chat__text";
      text.textContent = message.text;
      item.append(who, text);
      return item;
    });
    if (redraw) this.#list.replaceChildren(...items);
    else this.#list.append(...items);
    this.#rendered = messages.at(-1)?.id ?? 0;
    if (atBottom) this.#list.scrollTop = this.#list.scrollHeight;
  }
}

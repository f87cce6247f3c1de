// @ts-check
/**
 * MTM Consult embed SDK: put a consult's call in your page and drive it (docs/embed.md).
 *
 *   import { createFrame } from "https://consult.example.org/sdk/mtm-consult.js";
 *   const call = createFrame(document.getElementById("call"), { url: joinLink });
 *   call.on("participant-waiting", ({ waiting }) => render(waiting));
 *   await call.admit(waiting[0].id);
 *
 * Messages go to the frame's origin only and are accepted from that frame only; the
 * embed page in turn accepts commands only from the clinic's allowed origins.
 * Types: mtm-consult.d.ts, served beside this file.
 */

const PROTOCOL = "mtm-consult";
const VERSION = 1;
const ALLOW = "camera; microphone; display-capture; autoplay; fullscreen";
const HELLO_EVERY_MS = 250;
const LINK_PATH = /^\/(?:c|embed)\/([^/]+)$/;

/** @typedef {import("./mtm-consult").FrameOptions} FrameOptions */
/** @typedef {import("./mtm-consult").EventMap} EventMap */
/** @typedef {import("./mtm-consult").ReadyInfo} ReadyInfo */
/** @typedef {import("./mtm-consult").Language} Language */

/** A command refused by the call, or a problem reaching it; `code` is documented. */
export class MtmConsultError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {string} [command]
   */
  constructor(code, message, command) {
    super(message);
    this.name = "MtmConsultError";
    this.code = code;
    this.command = command;
  }
}

/**
 * Create the call's iframe in `parentElement` and return its controller.
 * @param {Element} parentElement
 * @param {FrameOptions} options
 * @returns {ConsultFrame}
 */
export function createFrame(parentElement, options) {
  if (!(parentElement instanceof Element)) throw new TypeError("createFrame: parentElement must be an element");
  if (!options || typeof options !== "object") throw new TypeError("createFrame: options with a url are required");
  return new ConsultFrame(parentElement, embedUrl(options), options);
}

/**
 * The embed address for a participant's link (`/c/<token>` as the REST API gives it, or
 * `/embed/<token>`), with the theme as query parameters. The server checks the values.
 * @param {FrameOptions} options
 */
export function embedUrl({ url, theme = {}, language }) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError("createFrame: url must be an absolute link (https://…/c/<token>)");
  }
  const match = LINK_PATH.exec(parsed.pathname);
  if (!/^https?:$/.test(parsed.protocol) || !match) {
    throw new TypeError("createFrame: url must be a participant's link, https://…/c/<token> or /embed/<token>");
  }
  const address = new URL(`/embed/${match[1]}`, parsed.origin);
  if (theme.accent !== undefined) {
    if (typeof theme.accent !== "string") throw new TypeError("createFrame: theme.accent must be a string such as #0b5cad");
    address.searchParams.set("accent", theme.accent);
  }
  for (const name of /** @type {const} */ (["logo", "panel"])) {
    if (theme[name] === undefined) continue;
    if (typeof theme[name] !== "boolean") throw new TypeError(`createFrame: theme.${name} must be true or false`);
    address.searchParams.set(name, theme[name] ? "1" : "0");
  }
  if (language !== undefined) address.searchParams.set("lang", String(language));
  return address;
}

export class ConsultFrame {
  /** @type {HTMLIFrameElement} the call's iframe; style it as you like */
  iframe;
  /** @type {string} the call's origin: the only one messages go to and come from */
  origin;
  /** @type {ReadyInfo | null} who this frame is, once it answered */
  info = null;
  /** @type {Map<string, Set<(data: any) => void>>} */
  #listeners = new Map();
  /** @type {Map<string, {resolve: (value: any) => void, reject: (error: Error) => void, command: string, timer: number}>} */
  #pending = new Map();
  #nextId = 1;
  #commandTimeoutMs;
  /** @type {Promise<ReadyInfo>} */
  #ready;
  /** @type {(info: ReadyInfo) => void} */
  #resolveReady = () => {};
  /** @type {(error: Error) => void} */
  #rejectReady = () => {};
  #hello = 0;
  #destroyed = false;
  #onMessage = (/** @type {MessageEvent} */ event) => this.#receive(event);

  /**
   * @param {Element} parentElement
   * @param {URL} address
   * @param {FrameOptions} options
   */
  constructor(parentElement, address, { title = "Video consult", readyTimeoutMs = 15_000, commandTimeoutMs = 15_000 }) {
    this.origin = address.origin;
    this.#commandTimeoutMs = commandTimeoutMs;
    this.#ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.#ready.catch(() => {}); // reported as an `error` event; commands reject on their own
    const iframe = document.createElement("iframe");
    iframe.src = address.href;
    iframe.allow = ALLOW;
    iframe.title = title;
    iframe.referrerPolicy = "no-referrer";
    iframe.className = "mtm-consult-frame";
    iframe.style.border = "0";
    iframe.style.width = "100%";
    iframe.style.height = "100%";
    // Each load (a reload inside the frame too) starts a new page that must be greeted.
    iframe.addEventListener("load", () => this.#sayHello());
    this.iframe = iframe;
    window.addEventListener("message", this.#onMessage);
    parentElement.append(iframe);
    setTimeout(() => {
      if (this.info || this.#destroyed) return;
      clearInterval(this.#hello);
      const error = new MtmConsultError("embed_unavailable",
        "The call did not answer: the link may be invalid, or this page's origin is not allowed to embed it.");
      this.#rejectReady(error);
      this.#emit("error", { code: error.code, message: error.message });
    }, readyTimeoutMs);
  }

  /** Resolves once the call page answered (with who is in it). */
  ready() {
    return this.#ready;
  }

  /**
   * Listen to an event; returns a function that stops listening.
   * @template {keyof EventMap} K
   * @param {K} event
   * @param {(data: EventMap[K]) => void} handler
   */
  on(event, handler) {
    let handlers = this.#listeners.get(event);
    if (!handlers) this.#listeners.set(event, (handlers = new Set()));
    handlers.add(handler);
    return () => this.off(event, handler);
  }

  /**
   * @template {keyof EventMap} K
   * @param {K} event
   * @param {(data: EventMap[K]) => void} handler
   */
  off(event, handler) {
    this.#listeners.get(event)?.delete(handler);
  }

  /** @param {string} displayName  join as this name (a required consent must be ticked in the call) */
  join(displayName) {
    return this.#command("join", { display_name: displayName });
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    return this.#command("set-muted", { muted });
  }

  /** @param {boolean} on */
  setCamera(on) {
    return this.#command("set-camera", { on });
  }

  leave() {
    return this.#command("leave", {});
  }

  /** @param {string} participantId  from a `participant-waiting` event */
  admit(participantId) {
    return this.#command("admit", { participant_id: participantId });
  }

  /** @param {string} participantId */
  deny(participantId) {
    return this.#command("deny", { participant_id: participantId });
  }

  showPanel() {
    return this.#command("set-panel", { visible: true });
  }

  hidePanel() {
    return this.#command("set-panel", { visible: false });
  }

  /** @param {Language} language */
  setLanguage(language) {
    return this.#command("set-language", { language });
  }

  /** Remove the iframe (the participant leaves the call) and stop listening. */
  destroy() {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clearInterval(this.#hello);
    window.removeEventListener("message", this.#onMessage);
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new MtmConsultError("destroyed", "The frame was removed.", pending.command));
      this.#pending.delete(id);
    }
    this.iframe.remove();
    this.#listeners.clear();
  }

  #sayHello() {
    clearInterval(this.#hello);
    const greet = () => this.#post({ mtm: PROTOCOL, v: VERSION, type: "hello" });
    greet();
    this.#hello = window.setInterval(greet, HELLO_EVERY_MS);
  }

  /** @param {object} message */
  #post(message) {
    this.iframe.contentWindow?.postMessage(message, this.origin);
  }

  /**
   * @param {string} command
   * @param {Record<string, unknown>} args
   * @returns {Promise<any>}
   */
  async #command(command, args) {
    if (this.#destroyed) throw new MtmConsultError("destroyed", "The frame was removed.", command);
    await this.#ready;
    const id = `c${this.#nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.#pending.delete(id);
        reject(new MtmConsultError("timeout", "The call did not answer in time.", command));
      }, this.#commandTimeoutMs);
      this.#pending.set(id, { resolve, reject, command, timer });
      this.#post({ mtm: PROTOCOL, v: VERSION, type: "command", id, command, args });
    });
  }

  /** @param {MessageEvent} event */
  #receive(event) {
    // Only our frame, from its origin: anything else is not for us.
    if (event.source !== this.iframe.contentWindow || event.origin !== this.origin) return;
    const message = event.data;
    if (typeof message !== "object" || message === null || message.mtm !== PROTOCOL || message.v !== VERSION) return;
    if (message.type === "ready") {
      clearInterval(this.#hello);
      this.info = message.data;
      this.#resolveReady(message.data);
      this.#emit("ready", message.data);
    } else if (message.type === "result") {
      this.#settle(message.id)?.resolve(message.value);
    } else if (message.type === "event" && typeof message.event === "string") {
      const data = message.data ?? {};
      if (message.event === "error" && typeof data.id === "string") {
        this.#settle(data.id)?.reject(new MtmConsultError(data.code, data.message, data.command));
      }
      this.#emit(message.event, data);
    }
  }

  /** @param {unknown} id */
  #settle(id) {
    if (typeof id !== "string") return undefined;
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    clearTimeout(pending.timer);
    this.#pending.delete(id);
    return pending;
  }

  /** @param {string} event  @param {any} data */
  #emit(event, data) {
    for (const handler of [...(this.#listeners.get(event) ?? [])]) {
      try {
        handler(data);
      } catch (error) {
        console.error(`mtm-consult: a "${event}" handler failed`, error);
      }
    }
  }
}

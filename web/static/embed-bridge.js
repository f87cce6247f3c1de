// @ts-check
// The embed page's side of the host-page protocol (docs/embed.md, "Messages").
//
// Only the page that frames us (window.parent) may talk to us, and only from one of the
// clinic's allowed origins (the same list the server sends as CSP frame-ancestors): any
// other message is ignored without an answer. A message from an allowed parent that is
// malformed, too large, an unknown command, or a command with wrong arguments is refused
// with an `error` event and changes nothing. Commands that need a permission (admit, deny)
// are sent to the server, which checks them against this participant's role; the host page
// is never trusted with a decision. Events go to the host's origin only, never to "*".

import { applyControlLabels } from "./control-labels.js";
import { LANGUAGES } from "./i18n.js";

export const PROTOCOL = "mtm-consult";
export const VERSION = 1;
/** Largest accepted message, as JSON text (a command is well under 200 bytes). */
export const MAX_MESSAGE_BYTES = 4096;
// Events wait here until the host page says hello (it has not yet, right after loading).
const MAX_QUEUED_EVENTS = 100;
// Command ids and participant ids alike.
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;


/**
 * @typedef {{code: string, message: string}} Problem
 * @typedef {(args: Record<string, unknown>) => Promise<unknown>} CommandHandler
 * @typedef {Record<string, unknown>} Args
 */

/** A command refused: `code` and a message a developer can act on. */
export class CommandRefused extends Error {
  /** @param {string} code  @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * Each command's arguments: their names and a check returning what is wrong, or null.
 * @type {Record<string, Record<string, (value: unknown) => string | null>>}
 */
const COMMANDS = {
  "join": {
    display_name: (value) => typeof value === "string" && value.trim().length >= 1 && value.trim().length <= 80
      ? null : "display_name must be text of 1 to 80 characters",
  },
  "set-muted": { muted: (value) => (typeof value === "boolean" ? null : "muted must be true or false") },
  "set-camera": { on: (value) => (typeof value === "boolean" ? null : "on must be true or false") },
  "leave": {},
  "admit": { participant_id: participantId },
  "deny": { participant_id: participantId },
  "set-panel": { visible: (value) => (typeof value === "boolean" ? null : "visible must be true or false") },
  "set-language": {
    language: (value) => (typeof value === "string" && LANGUAGES.includes(value)
      ? null : `language must be one of: ${LANGUAGES.join(", ")}`),
  },
};

/** @param {unknown} value */
function participantId(value) {
  return typeof value === "string" && ID_PATTERN.test(value)
    ? null : "participant_id must be a participant id (1 to 64 of A-Z a-z 0-9 _ -)";
}

/** @param {unknown} value */
function isPlainObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * What arrived, as JSON text, or null when it cannot be JSON (a function, a cycle, a BigInt).
 * @param {unknown} data
 */
function jsonText(data) {
  try {
    return JSON.stringify(data) ?? null;
  } catch {
    return null;
  }
}

export class EmbedBridge {
  #allowedOrigins;
  #handlers;
  #describe;
  /** @type {string | null} the origin of the host page that said hello */
  #hostOrigin = null;
  /** @type {object[]} */
  #queue = [];

  /**
   * @param {object} options
   * @param {string[]} options.allowedOrigins  the clinic's allowed origins
   * @param {Record<string, CommandHandler>} options.handlers  what each command does here
   * @param {() => Record<string, unknown>} options.describe  the `ready` answer's data
   */
  constructor({ allowedOrigins, handlers, describe }) {
    this.#allowedOrigins = new Set(allowedOrigins);
    this.#handlers = handlers;
    this.#describe = describe;
    // Not framed (opened on its own): there is no host page to talk to.
    if (window.parent !== window) window.addEventListener("message", (event) => this.#receive(event));
  }

  /**
   * Send an event to the host page (queued until it says hello).
   * @param {string} event  @param {Record<string, unknown>} data
   */
  emit(event, data) {
    const message = { mtm: PROTOCOL, v: VERSION, type: "event", event, data };
    if (this.#hostOrigin) this.#post(this.#hostOrigin, message);
    else if (this.#queue.length < MAX_QUEUED_EVENTS) this.#queue.push(message);
  }

  /** @param {string} origin  @param {object} message */
  #post(origin, message) {
    window.parent.postMessage(message, origin);
  }

  /**
   * @param {string} origin  @param {Problem & {command?: string, id?: string}} problem
   */
  #refuse(origin, problem) {
    this.#post(origin, { mtm: PROTOCOL, v: VERSION, type: "event", event: "error", data: problem });
  }

  /** @param {MessageEvent} event */
  async #receive(event) {
    // Only our parent, from an allowed origin: anything else is ignored, unanswered.
    if (event.source !== window.parent || !this.#allowedOrigins.has(event.origin)) return;
    const origin = event.origin;
    const text = jsonText(event.data);
    if (text === null) {
      this.#refuse(origin, { code: "invalid_message", message: "The message is not JSON data." });
      return;
    }
    if (text.length > MAX_MESSAGE_BYTES) {
      this.#refuse(origin, {
        code: "message_too_large",
        message: `The message is larger than ${MAX_MESSAGE_BYTES} bytes as JSON.`,
      });
      return;
    }
    const message = /** @type {Record<string, unknown>} */ (event.data);
    if (!isPlainObject(message) || message.mtm !== PROTOCOL) {
      this.#refuse(origin, {
        code: "invalid_message",
        message: `Send an object with mtm: "${PROTOCOL}", v, type (docs/embed.md).`,
      });
      return;
    }
    if (message.v !== VERSION) {
      this.#refuse(origin, { code: "unsupported_version", message: `This embed speaks version ${VERSION}.` });
      return;
    }
    if (message.type === "hello") {
      this.#connect(origin);
      return;
    }
    if (message.type !== "command") {
      this.#refuse(origin, { code: "invalid_message", message: "type must be \"hello\" or \"command\"." });
      return;
    }
    const id = message.id;
    if (typeof id !== "string" || !ID_PATTERN.test(id)) {
      this.#refuse(origin, { code: "invalid_message", message: "id must be 1 to 64 of A-Z a-z 0-9 _ -." });
      return;
    }
    this.#connect(origin, { silent: true });
    const command = message.command;
    const refuse = (/** @type {string} */ code, /** @type {string} */ why) =>
      this.#refuse(origin, { code, message: why, id, ...(typeof command === "string" ? { command: command.slice(0, 64) } : {}) });
    if (typeof command !== "string" || !Object.hasOwn(COMMANDS, command)) {
      refuse("unknown_command", `Unknown command; known: ${Object.keys(COMMANDS).join(", ")}.`);
      return;
    }
    const args = message.args ?? {};
    const problem = checkArgs(COMMANDS[command], args);
    if (problem) {
      refuse("invalid_args", problem);
      return;
    }
    const handler = this.#handlers[command];
    if (!handler) {
      refuse("unavailable", "This page cannot do that now.");
      return;
    }
    try {
      const value = await handler(/** @type {Args} */ (args));
      this.#post(origin, { mtm: PROTOCOL, v: VERSION, type: "result", id, value: value ?? null });
    } catch (error) {
      if (error instanceof CommandRefused) refuse(error.code, error.message);
      else {
        console.warn(`embed command ${command} failed`, error);
        refuse("internal_error", "The call could not do that; nothing was changed.");
      }
    }
  }

  /** @param {string} origin  @param {{silent?: boolean}} [options] */
  #connect(origin, { silent = false } = {}) {
    const known = this.#hostOrigin === origin;
    this.#hostOrigin = origin;
    if (!silent || !known) this.#post(origin, { mtm: PROTOCOL, v: VERSION, type: "ready", data: this.#describe() });
    for (const message of this.#queue.splice(0)) this.#post(origin, message);
  }
}

/**
 * What is wrong with a command's arguments, or null.
 * @param {Record<string, (value: unknown) => string | null>} spec  @param {unknown} args
 */
function checkArgs(spec, args) {
  if (!isPlainObject(args)) return "args must be an object";
  const given = /** @type {Record<string, unknown>} */ (args);
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(spec, name)) return `unknown argument ${name.slice(0, 40)}`;
  }
  for (const [name, check] of Object.entries(spec)) {
    const problem = check(given[name]);
    if (problem) return problem;
  }
  return null;
}

// ---- the call page's bridge ------------------------------------------------------------

const DECISIONS = ["accepted", "declined", "no-response"];

/**
 * @typedef {object} CallControls  what call.js lets the host page do, through this bridge
 * @property {(name: string) => Promise<string>} join  resolves with the state reached
 * @property {() => void} leave
 * @property {(id: string) => Promise<{ok: boolean, error?: Problem}>} admit
 * @property {(id: string) => Promise<{ok: boolean, error?: Problem}>} deny
 * @property {(kind: "audio" | "video", on: boolean) => boolean} setEnabled  false: no such device
 * @property {() => string} state
 * @property {() => string} selfId
 * @property {string} role
 * @property {HTMLElement} app   the page's #app element
 * @property {HTMLElement} status  the status line
 */

/**
 * @param {{allowed_origins: string[], medication_names_in_events: boolean,
 *          theme: {accent: string | null, logo: boolean, panel: boolean, language: string}}} embed
 *        the boot data's `embed` part (server/pages.py)
 * @param {CallControls} call
 */
export function startCallBridge(embed, call) {
  applyTheme(embed.theme);
  const withNames = embed.medication_names_in_events === true;
  const bridge = new EmbedBridge({
    allowedOrigins: embed.allowed_origins,
    describe: () => ({ participant_id: call.selfId(), role: call.role, state: call.state(), version: VERSION }),
    handlers: {
      async "join"(args) {
        const state = await call.join(String(args.display_name));
        if (state !== "in-call" && state !== "waiting") {
          throw new CommandRefused("join_refused", call.status.textContent || "The participant could not join.");
        }
        return { state };
      },
      async "set-muted"(args) {
        if (!call.setEnabled("audio", !args.muted)) throw new CommandRefused("no_device", "There is no microphone to mute.");
        return { muted: args.muted };
      },
      async "set-camera"(args) {
        if (!call.setEnabled("video", Boolean(args.on))) throw new CommandRefused("no_device", "There is no camera.");
        return { on: args.on };
      },
      async "leave"() {
        call.leave();
        return { state: call.state() };
      },
      // The server decides: a role that may not manage the waiting room is refused there.
      async "admit"(args) {
        return serverAnswer(await call.admit(String(args.participant_id)));
      },
      async "deny"(args) {
        return serverAnswer(await call.deny(String(args.participant_id)));
      },
      async "set-panel"(args) {
        call.app.dataset.panel = args.visible ? "shown" : "hidden";
        return { visible: args.visible };
      },
      async "set-language"(args) {
        setLanguage(String(args.language));
        return { language: args.language };
      },
    },
  });
  setLanguage(embed.theme.language);

  return {
    /** Forward what the host page may know of the socket's events (see docs/embed.md). */
    watch(/** @type {{on(event: string, handler: (payload: any) => void): void}} */ socket) {
      socket.on("participant-joined", ({ participant } = {}) => {
        if (participant) bridge.emit("participant-joined", { participant: person(participant) });
      });
      socket.on("participant-left", ({ participant_id: id, reason } = {}) =>
        bridge.emit("participant-left", { participant_id: id, reason: reason ?? null }));
      socket.on("waiting-room", ({ waiting } = {}) =>
        bridge.emit("participant-waiting", { waiting: (waiting ?? []).map(person) }));
      socket.on("panel-event", (payload) => {
        const medication = medicationChange(payload, withNames);
        if (medication) bridge.emit("medication-changed", medication);
        const decision = recommendationDecision(payload);
        if (decision) bridge.emit("recommendation-decided", decision);
      });
      socket.on("consult-ended", () => bridge.emit("consult-ended", {}));
    },
    /** @param {string} state  every state the page goes through */
    state(state) {
      bridge.emit("state", { state });
    },
    /** @param {{self: {id: string, role: string}, roster?: object[], waiting_room?: object[]}} ack */
    joined(ack) {
      bridge.emit("joined", {
        participant_id: ack.self.id,
        role: ack.self.role,
        participants: (ack.roster ?? []).map(person),
      });
      if (ack.waiting_room?.length) bridge.emit("participant-waiting", { waiting: ack.waiting_room.map(person) });
    },
  };
}

/** @param {{ok: boolean, error?: Problem}} ack */
function serverAnswer(ack) {
  if (ack?.ok) return { ok: true };
  throw new CommandRefused(ack?.error?.code ?? "no_answer", ack?.error?.message ?? "The server did not answer.");
}

/** Who someone is, as the host page may know it: no more than the participant sees. */
function person(/** @type {any} */ someone) {
  return { id: someone?.id ?? null, role: someone?.role ?? null, display_name: someone?.display_name ?? "" };
}

/**
 * A `medication-changed` event for a panel-event, or null. Field names only, never values;
 * the medication's name only when the clinic allows it. A patient's socket never receives
 * what is kept to the care team (the server filters it), so neither does their host page.
 * @param {any} payload  @param {boolean} withNames
 */
export function medicationChange(payload, withNames) {
  const event = payload?.event;
  if (!event || event.outcome !== "applied" || event.entity_type !== "medication") return null;
  /** @type {Record<string, unknown>} */
  const change = {
    seq: event.seq,
    medication_id: event.entity_id,
    op: event.op,
    field: event.field ?? null,
    by_role: event.actor?.role ?? null,
  };
  const name = payload.entity?.data?.name;
  if (withNames && typeof name === "string") change.name = name;
  return change;
}

/** A `recommendation-decided` event for a panel-event, or null (no text, no values). @param {any} payload */
export function recommendationDecision(payload) {
  const event = payload?.event;
  if (!event || event.outcome !== "applied" || event.entity_type !== "recommendation"
    || event.field !== "status" || !DECISIONS.includes(event.new)) return null;
  return {
    seq: event.seq,
    recommendation_id: event.entity_id,
    decision: event.new,
    medication_id: payload.entity?.data?.medication_id ?? null,
    by_role: event.actor?.role ?? null,
  };
}

/** @param {{accent: string | null, logo: boolean, panel: boolean}} theme */
function applyTheme(theme) {
  const root = document.documentElement;
  if (theme.accent) {
    // CSSOM, not a style attribute: the page's CSP allows no inline style.
    root.style.setProperty("--primary", theme.accent);
    root.style.setProperty("--primary-hover", `color-mix(in srgb, ${theme.accent} 82%, black)`);
  }
}

/** @param {string} language */
function setLanguage(language) {
  document.documentElement.lang = language;
  applyControlLabels(document);
}

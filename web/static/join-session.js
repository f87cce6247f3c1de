// @ts-check
// The join protocol of one call page over its one Socket.IO socket (docs/protocol.md,
// `join`), with nothing of the DOM in it: `join` when the person presses Join and again
// after every reconnect, its acknowledgement (the call, the waiting room or a refusal),
// admission, the server's events that end the page's session, and the call's events held
// until the acknowledgement they belong to. It moves the page's CallState (call-state.js)
// and tells call.js, which shows it; tests drive it with a fake socket (web/test/).

import { serverMessage, t } from "./i18n.js";

/** @typedef {import("./call-state.js").CallState} CallState */
/** @typedef {import("./call-state.js").CallStateName} CallStateName */
/** @typedef {{code?: string, message?: string}} JoinError */
/** @typedef {{ok?: boolean, waiting?: boolean, error?: JoinError, [key: string]: any}} JoinAck */
/**
 * What this page's microphone and camera do (docs/protocol.md, `media`).
 * @typedef {{microphone: "on"|"off", camera: "on"|"off"|"audio-only"}} MediaState
 */

/**
 * Why the page's session ended, as the person should read it.
 * @typedef {{title: string, message: string, action?: string|null, keepPanel?: boolean}} Ending
 */

/**
 * The part of a socket.io-client socket the session uses.
 * @typedef {{
 *   connected: boolean,
 *   active: boolean,
 *   on: (event: string, handler: (...args: any[]) => void) => unknown,
 *   off: (event: string, handler?: (...args: any[]) => void) => unknown,
 *   emit: (event: string, ...args: any[]) => unknown,
 *   connect: () => unknown,
 *   disconnect: () => unknown,
 *   timeout: (ms: number) => {emitWithAck: (event: string, payload: object) => Promise<any>},
 * }} JoinSocket
 */

/**
 * What call.js does when the session tells it something; every one optional.
 * @typedef {{
 *   idleConnect?: () => void,
 *   trouble?: (text: string|null) => void,
 *   answered?: () => void,
 *   accepted?: (ack: JoinAck) => void,
 *   waiting?: (ack: JoinAck, how: {again: boolean}) => void,
 *   inCall?: (ack: JoinAck, how: {reconnected: boolean}) => void,
 *   refused?: (error: JoinError) => void,
 *   ended?: (state: CallStateName, ending: Ending) => void,
 *   participantJoined?: (event: any) => void,
 *   participantLeft?: (event: any) => void,
 *   participantMedia?: (event: any) => void,
 *   visitStarted?: (event: any) => void,
 *   chatMessage?: (message: any) => void,
 *   signal?: (message: any) => void,
 * }} JoinEvents
 */

const timeoutError = () => ({ code: "timeout", message: t("ending.timeout") });

/**
 * The server's events that end the page's session, and how each reads, in the page's
 * language (the server's own English message is not shown: the page has its own words).
 * @type {Record<string, {state: CallStateName, ending: (payload: any) => Ending}>}
 */
const ENDINGS = {
  denied: {
    state: "denied",
    ending: () => ({
      title: t("ending.denied.title"),
      message: t("ending.denied.message"),
      action: t("ending.denied.action"),
    }),
  },
  removed: {
    state: "removed",
    ending: () => ({ title: t("ending.removed.title"), message: t("ending.removed.message") }),
  },
  replaced: {
    state: "replaced",
    ending: () => ({
      title: t("ending.replaced.title"),
      message: t("ending.replaced.message"),
      action: t("ending.replaced.action"),
    }),
  },
  "consult-ended": {
    state: "ended",
    ending: ({ reason } = {}) => ({
      title: t("ended.title"),
      message: reason ? t("ending.ended.reason", { reason }) : t("ending.ended.thanks"),
      keepPanel: true,
    }),
  },
};

export class JoinSession {
  /** @type {JoinSocket} */
  #socket;
  /** @type {CallState} */
  #state;
  /** @type {JoinEvents} */
  #events;
  #session;
  #timeoutMs;
  /** @type {() => MediaState} */
  #media;
  // The person pressed Join: (re)send `join` on every connect.
  #wanted = false;
  // In the call, with the acknowledgement of this connection's `join`.
  #joined = false;
  // Bumps whenever an acknowledgement still awaited no longer counts.
  #attempt = 0;
  #troubleShown = false;
  #name = "";
  /** The language of the consent text the person ticked (null: not ticked). @type {string|null} */
  #consent = null;
  /** Call events that arrived before this connection's acknowledgement. @type {(() => void)[]} */
  #early = [];
  /** @type {[string, (...args: any[]) => void][]} */
  #handlers = [];
  /** Accepted `join`s: 1, then one more after each reconnect. */
  joins = 0;

  /**
   * @param {object} options
   * @param {JoinSocket} options.socket  not connected yet, or connected and not joined
   * @param {CallState} options.callState
   * @param {string} options.session  this page load's id (the `join` payload's `session`)
   * @param {JoinEvents} options.events
   * @param {number} [options.joinTimeoutMs]
   * @param {() => MediaState} [options.media]  read for every `join` (after a reconnect too)
   */
  constructor({ socket, callState, session, events, joinTimeoutMs = 10_000, media }) {
    this.#socket = socket;
    this.#media = media ?? (() => ({ microphone: "on", camera: "on" }));
    this.#state = callState;
    this.#session = session;
    this.#events = events;
    this.#timeoutMs = joinTimeoutMs;
    /** @type {(handler: (payload: any) => void) => (payload: any) => void} */
    const afterJoin = (handler) => (payload) =>
      this.#joined ? handler(payload) : this.#early.push(() => handler(payload));
    this.#listen("connect", () => this.#onConnect());
    this.#listen("connect_error", (error) => this.#onConnectError(error));
    this.#listen("disconnect", (reason) => this.#onDisconnect(reason));
    this.#listen("participant-joined", afterJoin((event) => this.#events.participantJoined?.(event)));
    this.#listen("participant-left", afterJoin((event) => this.#events.participantLeft?.(event)));
    this.#listen("participant-media", afterJoin((event) => this.#events.participantMedia?.(event)));
    this.#listen("visit-started", afterJoin((event) => this.#events.visitStarted?.(event)));
    this.#listen("chat-message", afterJoin((message) => this.#events.chatMessage?.(message)));
    this.#listen("signal", afterJoin((message) => this.#events.signal?.(message)));
    this.#listen("admitted", (ack) => {
      if (this.#state.state === "waiting" && ack?.ok !== false) this.#enterCall(ack);
    });
    for (const [event, { state, ending }] of Object.entries(ENDINGS)) {
      this.#listen(event, (payload) => this.#events.ended?.(state, ending(payload ?? {})));
    }
  }

  /** In the call on this connection (a signal may be sent). */
  get joined() {
    return this.#joined;
  }

  /**
   * Tell the others that this page's microphone or camera changed. Out of the call it
   * waits: the next `join` carries the state as it is then.
   */
  sendMedia() {
    if (this.#joined && this.#socket.connected) this.#socket.emit("media", this.#media());
  }

  /** The person asked to be in the consult and the page has not ended. */
  get wanted() {
    return this.#wanted;
  }

  /**
   * Join as `name` once `ready` (the camera and microphone) settles; `consent`: the person
   * ticked the consent now, shown in that language (sent with this `join` only, until one is
   * accepted; the server records the text of that language); null: not ticked.
   * @param {{name: string, consent: string|null, ready?: Promise<unknown>}} request
   */
  async join({ name, consent, ready = Promise.resolve() }) {
    this.#name = name;
    this.#consent = consent;
    this.#state.go("joining");
    await ready;
    if (this.#state.state !== "joining") return; // refused meanwhile (the link stopped working)
    this.#wanted = true;
    if (this.#socket.connected) this.#sendJoin();
    else if (!this.#socket.active) this.#socket.connect(); // `connect` sends the join
  }

  /**
   * The page's session is over (`state`, one of FINAL or "error"): no `join` is sent again,
   * the socket closes without being reported as lost.
   * @param {CallStateName} state
   */
  end(state) {
    this.#wanted = false;
    this.#joined = false;
    this.#attempt += 1;
    for (const [event, handler] of this.#handlers) this.#socket.off(event, handler);
    this.#socket.disconnect();
    if (this.#state.final) return; // a late event after the end: the page stays where it is
    this.#state.go(state);
  }

  /**
   * @param {string} event
   * @param {(...args: any[]) => void} handler
   */
  #listen(event, handler) {
    this.#handlers.push([event, handler]);
    this.#socket.on(event, handler);
  }

  #trouble(/** @type {string|null} */ text) {
    this.#troubleShown = text !== null;
    this.#events.trouble?.(text);
  }

  #onConnect() {
    if (this.#troubleShown) this.#trouble(null);
    if (this.#wanted) this.#sendJoin();
    else this.#events.idleConnect?.();
  }

  /** @param {Error & {data?: {code?: string, message?: string}}} error */
  #onConnectError(error) {
    if (this.#socket.active) {
      // A network problem: Socket.IO keeps retrying on its own.
      this.#trouble(t("trouble.unreachable"));
      return;
    }
    // The server refused this link (expired, ended, ...): retrying cannot help.
    const message = serverMessage(error?.data, t("ending.refused.message"));
    this.#events.ended?.("error", { title: t("ending.refused.title"), message });
  }

  /** @param {string} reason */
  #onDisconnect(reason) {
    if (reason === "io server disconnect") {
      if (this.#wanted) {
        this.#events.ended?.("ended", {
          title: t("ending.closed.title"), message: t("ending.closed.message"), action: t("notice.rejoin"),
        });
      } else {
        // Not joined yet (the consult may have ended meanwhile): connecting again tells.
        this.#socket.connect();
      }
    } else if (this.#wanted) {
      this.#trouble(t("trouble.lost"));
      if (this.#state.inCall || this.#state.waiting) this.#state.go("reconnecting");
    }
  }

  // On Join and again after every automatic reconnect.
  async #sendJoin() {
    const mine = ++this.#attempt;
    this.#joined = false;
    this.#early = []; // whatever was queued belonged to the previous connection
    /** @type {{display_name: string, session: string, media: MediaState, consent?: {accepted: true, language: string}}} */
    const payload = { display_name: this.#name, session: this.#session, media: this.#media() };
    if (this.#consent) payload.consent = { accepted: true, language: this.#consent };
    /** @type {JoinAck} */
    let ack;
    try {
      ack = await this.#socket.timeout(this.#timeoutMs).emitWithAck("join", payload);
    } catch {
      // Lost the connection meanwhile: the next `connect` sends `join` again.
      if (!this.#socket.connected) return;
      ack = { ok: false, error: timeoutError() };
    }
    this.#events.answered?.();
    if (mine !== this.#attempt || !this.#wanted) return; // left, ended or re-sent meanwhile
    if (!ack?.ok) {
      this.#refused(ack?.error ?? {});
      return;
    }
    this.#consent = null; // recorded once is enough
    this.joins += 1;
    this.#events.accepted?.(ack);
    if (ack.waiting) {
      const again = this.#state.waiting;
      this.#events.waiting?.(ack, { again });
      this.#state.go("waiting");
    } else {
      this.#enterCall(ack);
    }
  }

  /** @param {JoinError} error */
  #refused(error) {
    if (error.code === "consult_ended") {
      this.#events.ended?.("ended", {
        title: t("ended.title"), message: serverMessage(error, t("ending.ended.message")),
      });
      return;
    }
    this.#attempt += 1;
    this.#wanted = false;
    this.#events.refused?.(error);
    this.#state.go("error");
  }

  /** @param {JoinAck} ack */
  #enterCall(ack) {
    const reconnected = this.#state.inCall;
    this.#events.inCall?.(ack, { reconnected });
    this.#joined = true;
    for (const replay of this.#early.splice(0)) replay();
    this.#state.go("in-call");
  }
}

// @ts-check
// Who this page is connected to, and who makes the first offer (docs/protocol.md,
// "Negotiation rules"): everyone in our `join` acknowledgement's roster was there before
// us, so we offer to them; someone announced by `participant-joined` came after us and
// offers to us. A participant seen again with the same page session (their page
// reconnected, a server took over the consult) keeps the connection that carries their
// media; a new session (a reload, another window) or a dead connection is met anew.
// Someone whose connection to the server dropped is shown as reconnecting, not as gone,
// for a grace period (docs/protocol.md, `settings.reconnect_grace_seconds`); only then, if
// they did not come back, does the call say they left.
// Nothing of the DOM here: the tiles are behind `view`, the connections behind `mesh`.

import { t } from "./i18n.js";

/**
 * @typedef {{microphone?: string, camera?: string}} Media
 * @typedef {{id: string, role?: string, display_name?: string, session?: string|null, media?: Media}} Participant
 * @typedef {{
 *   upsert: (participant: Participant) => void,
 *   remove: (participantId: string) => void,
 *   setAway: (participantId: string, away: boolean) => void,
 *   setMedia: (participantId: string, media: Media) => void,
 *   announce: (text: string) => void,
 *   nameOf: (participantId: string) => string|undefined,
 * }} RosterView
 * @typedef {{set: (run: () => void, ms: number) => unknown, clear: (timer: unknown) => void}} Timers
 * @typedef {import("./peers.js").Mesh} Mesh
 */

export class Roster {
  /** @type {Mesh} */
  #mesh;
  /** @type {RosterView} */
  #view;
  // Remote ids we connected to on their first signal, before their `participant-joined`.
  #unannounced = new Set();
  // The session of each remote participant we have a connection with.
  /** @type {Map<string, string>} */
  #sessions = new Map();
  // Remote ids reported `disconnected`, each with the timer that ends its grace period.
  // Their connection is kept while it carries media (their page may be reconnecting
  // through another server instance).
  /** @type {Map<string, unknown>} */
  #away = new Map();
  #graceMs;
  /** @type {Timers} */
  #timers;

  /**
   * @param {Mesh} mesh
   * @param {RosterView} view
   * @param {{graceMs?: number, timers?: Timers}} [options]
   */
  constructor(mesh, view, { graceMs = 30_000, timers } = {}) {
    this.#mesh = mesh;
    this.#view = view;
    this.#graceMs = graceMs;
    this.#timers = timers ?? { set: (run, ms) => setTimeout(run, ms), clear: (timer) => clearTimeout(/** @type {any} */ (timer)) };
  }

  get mesh() {
    return this.#mesh;
  }

  /**
   * The roster of an accepted `join`: we are the newcomer to each of them.
   * @param {Participant[]} roster
   */
  enter(roster) {
    for (const participant of roster) this.#connectOrKeep(participant, { offer: true });
  }

  /** @param {{participant: Participant}} event  `participant-joined` */
  joined({ participant }) {
    const wasAway = this.#back(participant.id);
    if (this.#unannounced.delete(participant.id)) {
      this.#view.upsert(participant); // its connection is already being negotiated: keep it
      if (participant.session) this.#sessions.set(participant.id, participant.session);
    } else if (!this.#connectOrKeep(participant, { offer: false }) && !wasAway) {
      return; // the same page, back (it reconnected): nothing changed for this person
    }
    const name = this.#view.nameOf(participant.id) ?? t("chat.someone");
    this.#view.announce(t(wasAway ? "roster.back" : "roster.joined", { name }));
  }

  /** @param {{participant_id: string, reason?: string}} event  `participant-left` */
  left({ participant_id: participantId, reason }) {
    const name = this.#view.nameOf(participantId);
    if (reason === "disconnected" && name !== undefined && this.#graceMs > 0) {
      if (this.#away.has(participantId)) return;
      this.#away.set(participantId, this.#timers.set(() => this.#gone(participantId), this.#graceMs));
      this.#view.setAway(participantId, true);
      this.connectionChanged(participantId);
      this.#view.announce(t("roster.dropped", { name }));
      return;
    }
    this.#gone(participantId);
  }

  /**
   * `participant-media`: shown on their tile; ignored for someone this page does not know.
   * @param {{participant_id?: unknown, media?: Media}} event
   */
  media({ participant_id: participantId, media } = {}) {
    if (typeof participantId !== "string" || this.#view.nameOf(participantId) === undefined) return;
    if (media && typeof media === "object") this.#view.setMedia(participantId, media);
  }

  /** @param {import("./peers.js").Signal & {from: string}} message  `signal` */
  signal(message) {
    // A signal can overtake `participant-joined` (several server instances): it is their
    // offer, so we answer; the name comes with the `participant-joined` that follows.
    if (!this.#mesh.has(message.from)) {
      this.#unannounced.add(message.from);
      this.#add({ id: message.from }, { offer: false });
    }
    return this.#mesh.handleSignal(message);
  }

  /**
   * A connection's state changed: that of someone reconnecting died, so it is closed.
   * @param {string} remoteId
   */
  connectionChanged(remoteId) {
    // Theirs is gone too: close it, keep the tile until they come back or the grace ends.
    if (this.#away.has(remoteId) && this.#mesh.has(remoteId) && !this.#alive(remoteId)) {
      this.#mesh.disconnect(remoteId);
      this.#sessions.delete(remoteId);
    }
  }

  /** Forget everyone and close every connection. */
  close() {
    this.#unannounced.clear();
    this.#sessions.clear();
    for (const timer of this.#away.values()) this.#timers.clear(timer);
    this.#away.clear();
    this.#mesh.close();
  }

  /** @param {string} participantId  gone for good: their tile goes, the call says so */
  #gone(participantId) {
    this.#back(participantId);
    const name = this.#view.nameOf(participantId);
    this.#unannounced.delete(participantId);
    this.#remove(participantId);
    if (name) this.#view.announce(t("roster.left", { name }));
  }

  /** Ends a grace period; returns whether there was one. @param {string} participantId */
  #back(participantId) {
    if (!this.#away.has(participantId)) return false;
    this.#timers.clear(this.#away.get(participantId));
    this.#away.delete(participantId);
    this.#view.setAway(participantId, false);
    return true;
  }

  /**
   * @param {Participant} participant
   * @param {{offer: boolean}} how
   */
  #add(participant, how) {
    this.#view.upsert(participant);
    this.#mesh.connect(participant.id, how);
    if (participant.session) this.#sessions.set(participant.id, participant.session);
  }

  /** @param {string} participantId */
  #remove(participantId) {
    this.#mesh.disconnect(participantId);
    this.#view.remove(participantId);
    this.#sessions.delete(participantId);
  }

  // A connection that carries (or is still setting up) media, as opposed to a failed one.
  /** @param {string} participantId */
  #alive(participantId) {
    const state = this.#mesh.connections.get(participantId)?.connectionState;
    return state === "connected" || state === "connecting" || state === "new";
  }

  /**
   * Whether `participant` is the same page we are connected to (same session, alive).
   * @param {Participant} participant
   */
  #samePage(participant) {
    return (
      this.#mesh.has(participant.id) &&
      Boolean(participant.session) &&
      this.#sessions.get(participant.id) === participant.session &&
      this.#alive(participant.id)
    );
  }

  /**
   * Returns whether a new connection was made.
   * @param {Participant} participant
   * @param {{offer: boolean}} how
   */
  #connectOrKeep(participant, how) {
    this.#back(participant.id);
    if (this.#samePage(participant)) {
      this.#view.upsert(participant);
      return false;
    }
    // Someone we knew, as a new page (a reload, another window) or with a dead connection:
    // their side of the old connection is gone.
    if (this.#mesh.has(participant.id)) this.#remove(participant.id);
    this.#add(participant, how);
    return true;
  }
}

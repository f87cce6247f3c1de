// @ts-check
// Who this page is connected to, and who makes the first offer (docs/protocol.md,
// "Negotiation rules"): everyone in our `join` acknowledgement's roster was there before
// us, so we offer to them; someone announced by `participant-joined` came after us and
// offers to us. A participant seen again with the same page session (their page
// reconnected, a server took over the consult) keeps the connection that carries their
// media; a new session (a reload, another window) or a dead connection is met anew.
// Nothing of the DOM here: the tiles are behind `view`, the connections behind `mesh`.

/**
 * @typedef {{id: string, role?: string, display_name?: string, session?: string|null}} Participant
 * @typedef {{
 *   upsert: (participant: Participant) => void,
 *   remove: (participantId: string) => void,
 *   announce: (text: string) => void,
 *   nameOf: (participantId: string) => string|undefined,
 * }} RosterView
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
  // Remote ids reported `disconnected` whose media still flows: kept until their connection
  // fails or they come back (their page may be reconnecting through another instance).
  #lingering = new Set();

  /**
   * @param {Mesh} mesh
   * @param {RosterView} view
   */
  constructor(mesh, view) {
    this.#mesh = mesh;
    this.#view = view;
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
    if (this.#unannounced.delete(participant.id)) {
      this.#view.upsert(participant); // its connection is already being negotiated: keep it
      if (participant.session) this.#sessions.set(participant.id, participant.session);
    } else if (!this.#connectOrKeep(participant, { offer: false })) {
      return; // the same page, back (it reconnected): nothing changed for this person
    }
    this.#view.announce(`${this.#view.nameOf(participant.id) ?? "Someone"} joined.`);
  }

  /** @param {{participant_id: string, reason?: string}} event  `participant-left` */
  left({ participant_id: participantId, reason }) {
    if (reason === "disconnected" && this.#alive(participantId)) {
      // Lost to the server, not to us: their page may be reconnecting (a server instance
      // failed). Keep the media until the connection fails or they come back.
      this.#lingering.add(participantId);
      return;
    }
    const name = this.#view.nameOf(participantId);
    this.#unannounced.delete(participantId);
    this.#remove(participantId);
    if (name) this.#view.announce(`${name} left.`);
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
   * A connection's state changed: a lingering participant whose connection died is gone.
   * @param {string} remoteId
   */
  connectionChanged(remoteId) {
    if (this.#lingering.has(remoteId) && !this.#alive(remoteId)) this.left({ participant_id: remoteId });
  }

  /** Forget everyone and close every connection. */
  close() {
    this.#unannounced.clear();
    this.#sessions.clear();
    this.#lingering.clear();
    this.#mesh.close();
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
    this.#lingering.delete(participantId);
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
    this.#lingering.delete(participant.id);
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

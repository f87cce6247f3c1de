// @ts-check
// The media mesh: one RTCPeerConnection per remote participant. See docs/protocol.md
// ("Negotiation rules"); the server only relays {to, description | candidate}.
//
// Who makes the first offer of a pair is decided by how each side met the other, so the
// first negotiation cannot collide: the newcomer offers to everyone its `join`
// acknowledgement lists (the roster), and a participant already present, told by
// `participant-joined`, only answers. (Chromium, seen in 156, leaves the polite side's
// remote tracks muted for good when it rolls back its first offer: w3c/webrtc-pc#3081;
// this is why the first offer must never be rolled back.) Two joins the server handled at
// the same moment may each list the other: both offer, and the polite side answers on a
// fresh connection instead of rolling its first offer back. After the first negotiation,
// "perfect negotiation" (MDN) with a deterministic polite side lets either side
// renegotiate at any time (screen share, ICE restart).

const SENDING = new Set(["sendrecv", "sendonly"]);
const RECEIVING = new Set(["sendrecv", "recvonly"]);

// Which remote video is the camera and which a shared screen: the camera always has the
// first video transceiver of a connection (both sides create it first: from the first offer,
// or from their own camera track), a screen share always gets a transceiver of its own
// after it (`addTransceiver`, never `addTrack`, so it cannot take over the camera's).
/** @param {RTCPeerConnection} pc */
function videoTransceivers(pc) {
  return pc.getTransceivers().filter((transceiver) => transceiver.receiver.track.kind === "video");
}

/**
 * What this page sends: the camera and microphone stream, each kind's current track (or
 * null), and the screen share if one runs.
 * @typedef {{
 *   stream: MediaStream,
 *   track: (kind: "audio"|"video") => MediaStreamTrack|null,
 *   screen: {track: MediaStreamTrack, stream: MediaStream}|null,
 * }} LocalSource
 */

/**
 * A relayed signaling message, without its addressing.
 * @typedef {{description?: RTCSessionDescriptionInit, candidate?: RTCIceCandidateInit|null}} Signal
 */

/** @typedef {(config: RTCConfiguration) => RTCPeerConnection} PeerConnectionFactory */

/** The browser's own peer connection (the tests give a fake one instead). */
/** @type {PeerConnectionFactory} */
export const browserPeerConnection = (config) => new RTCPeerConnection(config);

/** One connection to one remote participant. */
export class Peer {
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswerPending = false;
  // Whether an offer and its answer went through once on this connection: until then a
  // collision is not resolved by rollback (see the top of this file).
  #negotiated = false;
  /** @type {(message: Signal) => void} */
  #send;
  /** @type {LocalSource} */
  #local;
  #mediaAdded = false;
  /** The transceivers carrying our microphone and camera, once media is added. */
  /** @type {{audio?: RTCRtpTransceiver, video?: RTCRtpTransceiver}} */
  #main = {};
  /** Our screen share's transceiver, once we shared with this peer. @type {RTCRtpTransceiver|null} */
  #screen = null;
  /** @type {(track: MediaStreamTrack|null) => void} */
  #onScreen;
  /** @type {MediaStreamTrack|null} */
  #remoteScreen = null;
  /** @type {(track: MediaStreamTrack) => void} */
  #onTrack;
  /** @type {(state: RTCPeerConnectionState) => void} */
  #onConnectionState;
  /** @type {PeerConnectionFactory} */
  #createConnection;
  /** @type {RTCConfiguration} */
  #rtcConfig;
  /** @type {RTCPeerConnection} */
  pc;

  /**
   * @param {object} options
   * @param {string} options.remoteId
   * @param {boolean} options.polite  on a collision after the first negotiation, this side
   *   rolls back its own offer (the other ignores the incoming one)
   * @param {boolean} options.offerer  this side makes the first offer (we are the newcomer);
   *   otherwise it adds its media when the first offer arrives
   * @param {RTCConfiguration} options.rtcConfig  exactly the `ice` of the join acknowledgement
   * @param {LocalSource} options.local  what we send
   * @param {(message: Signal) => void} options.send  relays {description} or {candidate}
   * @param {(track: MediaStreamTrack) => void} options.onTrack  their microphone or camera
   * @param {(track: MediaStreamTrack|null) => void} options.onScreen  their screen share, or null
   * @param {(state: RTCPeerConnectionState) => void} options.onConnectionState
   * @param {PeerConnectionFactory} [options.createConnection]
   */
  constructor({
    remoteId, polite, offerer, rtcConfig, local, send, onTrack, onScreen, onConnectionState,
    createConnection = browserPeerConnection,
  }) {
    this.remoteId = remoteId;
    this.polite = polite;
    this.#send = send;
    this.#onScreen = onScreen;
    this.#onTrack = onTrack;
    this.#onConnectionState = onConnectionState;
    this.#createConnection = createConnection;
    this.#rtcConfig = rtcConfig;
    this.#local = local;
    this.pc = this.#connection();
    if (offerer) this.#addLocalMedia();
  }

  /** A new RTCPeerConnection wired to this peer. */
  #connection() {
    const pc = this.#createConnection(this.#rtcConfig);
    pc.onnegotiationneeded = () => this.#offer();
    pc.onicecandidate = ({ candidate }) => this.#send({ candidate: candidate?.toJSON() ?? null });
    pc.ontrack = ({ track, transceiver }) => {
      if (track.kind === "video" && transceiver !== videoTransceivers(pc)[0]) this.#syncScreen();
      else this.#onTrack(track);
    };
    // A screen share starts and stops by renegotiation; the outcome is known once stable.
    pc.onsignalingstatechange = () => {
      if (pc.signalingState !== "stable") return;
      if (pc.remoteDescription) this.#negotiated = true;
      this.#syncScreen();
    };
    pc.onconnectionstatechange = () => {
      this.#restartIfFailed();
      this.#onConnectionState(pc.connectionState);
    };
    pc.oniceconnectionstatechange = () => this.#restartIfFailed();
    return pc;
  }

  // Adding media is what makes a side offer (negotiationneeded), so it happens once: at
  // once for the newcomer, on the first remote offer for the side already present.
  #addLocalMedia() {
    if (this.#mediaAdded) return;
    this.#mediaAdded = true;
    const { stream } = this.#local;
    for (const kind of /** @type {const} */ (["audio", "video"])) {
      const track = this.#local.track(kind);
      /** @param {RTCRtpTransceiver} transceiver */
      const ofKind = (transceiver) => transceiver.receiver.track.kind === kind;
      if (track) {
        // After a remote offer, addTrack reuses the transceiver that offer created.
        const sender = this.pc.addTrack(track, stream);
        this.#main[kind] = this.pc.getTransceivers().find((transceiver) => transceiver.sender === sender);
      } else {
        // Without a local track of a kind, still ask to receive it so the remote side can
        // send; the transceiver is there for a track we may add later (audio only ends).
        this.#main[kind] = this.pc.getTransceivers().find(ofKind) ??
          this.pc.addTransceiver(kind, { direction: "recvonly" });
      }
    }
    if (this.#local.screen) this.startScreen(this.#local.screen);
  }

  /**
   * Send another microphone or camera track (or none: null) without renegotiating; only a
   * connection that never sent this kind renegotiates, to start sending it.
   * @param {"audio"|"video"} kind
   * @param {MediaStreamTrack|null} track
   */
  async setTrack(kind, track) {
    const transceiver = this.#main[kind];
    if (!transceiver || this.pc.signalingState === "closed") return; // added with the media later
    await transceiver.sender.replaceTrack(track);
    if (track && !SENDING.has(transceiver.direction)) {
      transceiver.sender.setStreams(this.#local.stream);
      transceiver.direction = transceiver.direction === "inactive" ? "sendonly" : "sendrecv";
    }
  }

  /**
   * Send our screen as a second video track (renegotiates).
   * @param {{track: MediaStreamTrack, stream: MediaStream}} screen
   */
  startScreen({ track, stream }) {
    if (!this.#mediaAdded || this.pc.signalingState === "closed") return; // with the media later
    if (this.#screen) {
      // Shared before: reuse its transceiver rather than adding m-lines on every share.
      this.#screen.sender.replaceTrack(track).catch(() => {}); // closed meanwhile
      this.#screen.sender.setStreams(stream);
      this.#screen.direction = "sendonly";
    } else {
      this.#screen = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    }
  }

  /** Stop sending our screen (renegotiates; the remote side hides it). */
  stopScreen() {
    if (!this.#screen || this.pc.signalingState === "closed") return;
    this.#screen.sender.replaceTrack(null).catch(() => {}); // closed meanwhile
    this.#screen.direction = "inactive";
  }

  /** The remote side's screen share: the first later video transceiver that receives. */
  #syncScreen() {
    if (this.pc.signalingState === "closed") return;
    const receiving = videoTransceivers(this.pc).slice(1)
      .find((transceiver) => RECEIVING.has(transceiver.currentDirection ?? "")); // not "stopped"
    const track = receiving?.receiver.track ?? null;
    if (track === this.#remoteScreen) return;
    this.#remoteScreen = track;
    this.#onScreen(track);
  }

  /** How many video tracks the remote side sends us now (camera and screen), with frames. */
  liveRemoteVideoTracks() {
    return videoTransceivers(this.pc).filter(({ currentDirection, receiver }) =>
      RECEIVING.has(currentDirection ?? "") && receiver.track.readyState === "live" && !receiver.track.muted).length;
  }

  // A dead path (network change, relay restart) gets fresh candidates instead of a hang-up.
  // Chromium may report the aggregate connectionState "failed" while ICE still says
  // "disconnected", so either one triggers the restart.
  #restartIfFailed() {
    if (this.pc.iceConnectionState === "failed" || this.pc.connectionState === "failed") {
      this.pc.restartIce();
    }
  }

  async #offer() {
    const { pc } = this;
    try {
      this.#makingOffer = true;
      await pc.setLocalDescription();
      // Replaced meanwhile (a first-offer collision): that offer is void.
      if (pc === this.pc && pc.localDescription) this.#send({ description: pc.localDescription.toJSON() });
    } catch (error) {
      console.warn(`negotiation with ${this.remoteId} failed`, error);
    } finally {
      if (pc === this.pc) this.#makingOffer = false;
    }
  }

  /**
   * Apply a relayed {description} or {candidate} (candidate null = end of candidates).
   * @param {Signal} signal
   */
  async handleSignal({ description, candidate }) {
    try {
      if (description) {
        await this.#acceptDescription(description);
      } else if (candidate !== undefined) {
        await this.#addCandidate(candidate);
      }
    } catch (error) {
      console.warn(`signal from ${this.remoteId} could not be applied`, error);
    }
  }

  /** @param {RTCSessionDescriptionInit} description */
  async #acceptDescription(description) {
    const readyForOffer = !this.#makingOffer &&
      (this.pc.signalingState === "stable" || this.#settingRemoteAnswerPending);
    const offerCollision = description.type === "offer" && !readyForOffer;
    this.#ignoreOffer = !this.polite && offerCollision;
    if (this.#ignoreOffer) return;
    if (offerCollision && !this.#negotiated) this.#startOver();

    this.#settingRemoteAnswerPending = description.type === "answer";
    try {
      // On a later collision the polite side gets an implicit rollback of its own offer here.
      await this.pc.setRemoteDescription(description);
    } finally {
      this.#settingRemoteAnswerPending = false;
    }
    if (description.type === "offer") {
      this.#addLocalMedia();
      await this.pc.setLocalDescription();
      if (this.pc.localDescription) this.#send({ description: this.pc.localDescription.toJSON() });
    }
  }

  // Both sides made a first offer (each thought itself the newcomer): the polite side drops
  // its unanswered connection and answers on a new one, so no first offer is rolled back.
  #startOver() {
    const old = this.pc;
    detach(old);
    old.close();
    this.#makingOffer = false;
    this.#mediaAdded = false;
    this.#main = {};
    this.#screen = null;
    this.pc = this.#connection();
  }

  /** @param {RTCIceCandidateInit|null} candidate */
  async #addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate ?? undefined);
    } catch (error) {
      // Candidates of an offer we chose to ignore are expected to fail.
      if (!this.#ignoreOffer) throw error;
    }
  }

  close() {
    detach(this.pc);
    this.pc.close();
  }
}

/** @param {RTCPeerConnection} pc */
function detach(pc) {
  pc.onnegotiationneeded = null;
  pc.onicecandidate = null;
  pc.ontrack = null;
  pc.onsignalingstatechange = null;
  pc.onconnectionstatechange = null;
  pc.oniceconnectionstatechange = null;
}

/** All connections of one session (one successful `join`). */
export class Mesh {
  /** @type {Map<string, Peer>} */
  #peers = new Map();
  #options;

  /**
   * @param {object} options
   * @param {string} options.selfId
   * @param {RTCConfiguration} options.rtcConfig
   * @param {LocalSource} options.local  what we send
   * @param {(message: Signal & {to: string}) => void} options.sendSignal  emits the `signal` event
   * @param {(remoteId: string, track: MediaStreamTrack) => void} options.onTrack
   * @param {(remoteId: string, track: MediaStreamTrack|null) => void} options.onScreen
   * @param {(remoteId: string, state: RTCPeerConnectionState) => void} options.onConnectionState
   * @param {PeerConnectionFactory} [options.createConnection]
   */
  constructor(options) {
    this.#options = options;
  }

  /** @param {string} remoteId */
  has(remoteId) {
    return this.#peers.has(remoteId);
  }

  /**
   * The configuration of connections made from now on (fresh TURN credentials).
   * @param {RTCConfiguration} rtcConfig
   */
  setRtcConfig(rtcConfig) {
    this.#options = { ...this.#options, rtcConfig };
  }

  /** Map remoteId -> RTCPeerConnection (a snapshot). */
  get connections() {
    return new Map([...this.#peers].map(([id, peer]) => [id, peer.pc]));
  }

  /**
   * A connection to `remoteId`, unless there is one.
   * @param {string} remoteId
   * @param {{offer: boolean}} how  offer: we are the newcomer to them (they are in our
   *   join acknowledgement's roster), so we make the first offer; otherwise we answer theirs
   */
  connect(remoteId, { offer }) {
    if (this.#peers.has(remoteId)) return;
    const { selfId, rtcConfig, local, sendSignal, onTrack, onScreen, onConnectionState, createConnection } =
      this.#options;
    this.#peers.set(remoteId, new Peer({
      remoteId,
      // Both sides must agree without talking: the lower id (plain string order) is polite.
      polite: selfId < remoteId,
      offerer: offer,
      rtcConfig,
      local,
      send: (message) => sendSignal({ to: remoteId, ...message }),
      onTrack: (track) => onTrack(remoteId, track),
      onScreen: (track) => onScreen(remoteId, track),
      onConnectionState: (state) => onConnectionState(remoteId, state),
      createConnection,
    }));
  }

  /** @param {string} remoteId */
  disconnect(remoteId) {
    this.#peers.get(remoteId)?.close();
    this.#peers.delete(remoteId);
  }

  /**
   * A `signal` event from the server: {from, description} or {from, candidate}. A first
   * signal from someone unknown is their offer: we answer it.
   * @param {Signal & {from: string}} message
   */
  handleSignal({ from, ...message }) {
    this.connect(from, { offer: false });
    return /** @type {Peer} */ (this.#peers.get(from)).handleSignal(message);
  }

  /**
   * Replace our microphone or camera track on every connection.
   * @param {"audio"|"video"} kind
   * @param {MediaStreamTrack|null} track
   */
  setTrack(kind, track) {
    return Promise.all([...this.#peers.values()].map((peer) => peer.setTrack(kind, track)));
  }

  /** @param {{track: MediaStreamTrack, stream: MediaStream}} screen */
  startScreen(screen) {
    for (const peer of this.#peers.values()) peer.startScreen(screen);
  }

  stopScreen() {
    for (const peer of this.#peers.values()) peer.stopScreen();
  }

  /** @param {string} remoteId */
  liveRemoteVideoTracks(remoteId) {
    return this.#peers.get(remoteId)?.liveRemoteVideoTracks() ?? 0;
  }

  close() {
    for (const remoteId of [...this.#peers.keys()]) this.disconnect(remoteId);
  }
}

// The media mesh: one RTCPeerConnection per remote participant, negotiated with the
// "perfect negotiation" pattern from MDN so that either side may (re)negotiate at any time.
// The server only relays {to, description | candidate}; see docs/protocol.md.

// The very first negotiation of a pair avoids offer collisions: Chromium (seen in 156)
// leaves the polite side's remote tracks muted for good when it rolls back its first offer
// (w3c/webrtc-pc#3081). So the impolite side offers at once, and the polite side adds its
// media when that offer arrives, or after this grace period for peers that never offer
// (the aiortc synthetic participant only answers). Later collisions roll back harmlessly.
const FIRST_OFFER_GRACE_MS = 1500;

const SENDING = new Set(["sendrecv", "sendonly"]);
const RECEIVING = new Set(["sendrecv", "recvonly"]);

// Which remote video is the camera and which a shared screen: the camera always has the
// first video transceiver of a connection (both sides create it first: from the first offer,
// or from their own camera track), a screen share always gets a transceiver of its own
// after it (`addTransceiver`, never `addTrack`, so it cannot take over the camera's).
function videoTransceivers(pc) {
  return pc.getTransceivers().filter((transceiver) => transceiver.receiver.track.kind === "video");
}

/** One connection to one remote participant. */
class Peer {
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswerPending = false;
  #send;
  #local;
  #mediaAdded = false;
  #mediaTimer = null;
  // The transceivers carrying our microphone and camera ({audio, video}), once media is added.
  #main = {};
  // Our screen share's transceiver, once we shared with this peer.
  #screen = null;
  #onScreen;
  #remoteScreen = null;

  /**
   * @param {object} options
   * @param {string} options.remoteId
   * @param {boolean} options.polite  true: this side waits for the first offer, and on a
   *   collision rolls back its own
   * @param {RTCConfiguration} options.rtcConfig  exactly the `ice` of the join acknowledgement
   * @param {object} options.local  {stream, track(kind), screen: {track, stream}|null}: what we send
   * @param {(message: object) => void} options.send  relays {description} or {candidate}
   * @param {(track: MediaStreamTrack) => void} options.onTrack  their microphone or camera
   * @param {(track: MediaStreamTrack|null) => void} options.onScreen  their screen share, or null
   * @param {(state: RTCPeerConnectionState) => void} options.onConnectionState
   */
  constructor({ remoteId, polite, rtcConfig, local, send, onTrack, onScreen, onConnectionState }) {
    this.remoteId = remoteId;
    this.polite = polite;
    this.#send = send;
    this.#onScreen = onScreen;
    this.pc = new RTCPeerConnection(rtcConfig);
    this.pc.onnegotiationneeded = () => this.#offer();
    this.pc.onicecandidate = ({ candidate }) => this.#send({ candidate: candidate?.toJSON() ?? null });
    this.pc.ontrack = ({ track, transceiver }) => {
      if (track.kind === "video" && transceiver !== videoTransceivers(this.pc)[0]) this.#syncScreen();
      else onTrack(track);
    };
    // A screen share starts and stops by renegotiation; the outcome is known once stable.
    this.pc.onsignalingstatechange = () => {
      if (this.pc.signalingState === "stable") this.#syncScreen();
    };
    this.pc.onconnectionstatechange = () => {
      this.#restartIfFailed();
      onConnectionState(this.pc.connectionState);
    };
    this.pc.oniceconnectionstatechange = () => this.#restartIfFailed();
    this.#local = local;
    if (polite) this.#mediaTimer = setTimeout(() => this.#addLocalMedia(), FIRST_OFFER_GRACE_MS);
    else this.#addLocalMedia();
  }

  // Adding media is what makes a side offer (negotiationneeded), so it happens once, either
  // at once (impolite), on the first remote offer, or when the grace period ends (polite).
  #addLocalMedia() {
    if (this.#mediaAdded) return;
    this.#mediaAdded = true;
    clearTimeout(this.#mediaTimer);
    const { stream } = this.#local;
    for (const kind of ["audio", "video"]) {
      const track = this.#local.track(kind);
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

  /** Send our screen as a second video track (renegotiates). */
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
      .find((transceiver) => !transceiver.stopped && RECEIVING.has(transceiver.currentDirection));
    const track = receiving?.receiver.track ?? null;
    if (track === this.#remoteScreen) return;
    this.#remoteScreen = track;
    this.#onScreen(track);
  }

  /** How many video tracks the remote side sends us now (camera and screen), with frames. */
  liveRemoteVideoTracks() {
    return videoTransceivers(this.pc).filter(({ currentDirection, receiver }) =>
      RECEIVING.has(currentDirection) && receiver.track.readyState === "live" && !receiver.track.muted).length;
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
    try {
      this.#makingOffer = true;
      await this.pc.setLocalDescription();
      this.#send({ description: this.pc.localDescription.toJSON() });
    } catch (error) {
      console.warn(`negotiation with ${this.remoteId} failed`, error);
    } finally {
      this.#makingOffer = false;
    }
  }

  /** Apply a relayed {description} or {candidate} (candidate null = end of candidates). */
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

  async #acceptDescription(description) {
    const readyForOffer = !this.#makingOffer &&
      (this.pc.signalingState === "stable" || this.#settingRemoteAnswerPending);
    const offerCollision = description.type === "offer" && !readyForOffer;
    this.#ignoreOffer = !this.polite && offerCollision;
    if (this.#ignoreOffer) return;

    this.#settingRemoteAnswerPending = description.type === "answer";
    try {
      // On a collision the polite side gets an implicit rollback of its own offer here.
      await this.pc.setRemoteDescription(description);
    } finally {
      this.#settingRemoteAnswerPending = false;
    }
    if (description.type === "offer") {
      this.#addLocalMedia();
      await this.pc.setLocalDescription();
      this.#send({ description: this.pc.localDescription.toJSON() });
    }
  }

  async #addCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // Candidates of an offer we chose to ignore are expected to fail.
      if (!this.#ignoreOffer) throw error;
    }
  }

  close() {
    clearTimeout(this.#mediaTimer);
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onsignalingstatechange = null;
    this.pc.onconnectionstatechange = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.close();
  }
}

/** All connections of one session (one successful `join`). */
export class Mesh {
  #peers = new Map();
  #options;

  /**
   * @param {object} options
   * @param {string} options.selfId
   * @param {RTCConfiguration} options.rtcConfig
   * @param {object} options.local  {stream, track(kind), screen}: what we send (see Peer)
   * @param {(message: {to: string}) => void} options.sendSignal  emits the `signal` event
   * @param {(remoteId: string, track: MediaStreamTrack) => void} options.onTrack
   * @param {(remoteId: string, track: MediaStreamTrack|null) => void} options.onScreen
   * @param {(remoteId: string, state: RTCPeerConnectionState) => void} options.onConnectionState
   */
  constructor(options) {
    this.#options = options;
  }

  has(remoteId) {
    return this.#peers.has(remoteId);
  }

  /** The configuration of connections made from now on (fresh TURN credentials). */
  setRtcConfig(rtcConfig) {
    this.#options = { ...this.#options, rtcConfig };
  }

  /** Map remoteId -> RTCPeerConnection (a snapshot). */
  get connections() {
    return new Map([...this.#peers].map(([id, peer]) => [id, peer.pc]));
  }

  connect(remoteId) {
    if (this.#peers.has(remoteId)) return;
    const { selfId, rtcConfig, local, sendSignal, onTrack, onScreen, onConnectionState } = this.#options;
    this.#peers.set(remoteId, new Peer({
      remoteId,
      // Both sides must agree without talking: the lower id (plain string order) is polite.
      polite: selfId < remoteId,
      rtcConfig,
      local,
      send: (message) => sendSignal({ to: remoteId, ...message }),
      onTrack: (track) => onTrack(remoteId, track),
      onScreen: (track) => onScreen(remoteId, track),
      onConnectionState: (state) => onConnectionState(remoteId, state),
    }));
  }

  disconnect(remoteId) {
    this.#peers.get(remoteId)?.close();
    this.#peers.delete(remoteId);
  }

  /** A `signal` event from the server: {from, description} or {from, candidate}. */
  handleSignal({ from, ...message }) {
    this.connect(from);
    return this.#peers.get(from).handleSignal(message);
  }

  /** Replace our microphone or camera track on every connection. */
  setTrack(kind, track) {
    return Promise.all([...this.#peers.values()].map((peer) => peer.setTrack(kind, track)));
  }

  startScreen(screen) {
    for (const peer of this.#peers.values()) peer.startScreen(screen);
  }

  stopScreen() {
    for (const peer of this.#peers.values()) peer.stopScreen();
  }

  liveRemoteVideoTracks(remoteId) {
    return this.#peers.get(remoteId)?.liveRemoteVideoTracks() ?? 0;
  }

  close() {
    for (const remoteId of [...this.#peers.keys()]) this.disconnect(remoteId);
  }
}

// The media mesh: one RTCPeerConnection per remote participant, negotiated with the
// "perfect negotiation" pattern from MDN so that either side may (re)negotiate at any time.
// The server only relays {to, description | candidate}; see docs/protocol.md.

// The very first negotiation of a pair avoids offer collisions: Chromium (seen in 156)
// leaves the polite side's remote tracks muted for good when it rolls back its first offer
// (w3c/webrtc-pc#3081). So the impolite side offers at once, and the polite side adds its
// media when that offer arrives, or after this grace period for peers that never offer
// (the aiortc synthetic participant only answers). Later collisions roll back harmlessly.
const FIRST_OFFER_GRACE_MS = 1500;

/** One connection to one remote participant. */
class Peer {
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswerPending = false;
  #send;
  #localStream;
  #mediaAdded = false;
  #mediaTimer = null;

  /**
   * @param {object} options
   * @param {string} options.remoteId
   * @param {boolean} options.polite  true: this side waits for the first offer, and on a
   *   collision rolls back its own
   * @param {RTCConfiguration} options.rtcConfig  exactly the `ice` of the join acknowledgement
   * @param {MediaStream|null} options.localStream
   * @param {(message: object) => void} options.send  relays {description} or {candidate}
   * @param {(track: MediaStreamTrack) => void} options.onTrack
   * @param {(state: RTCPeerConnectionState) => void} options.onConnectionState
   */
  constructor({ remoteId, polite, rtcConfig, localStream, send, onTrack, onConnectionState }) {
    this.remoteId = remoteId;
    this.polite = polite;
    this.#send = send;
    this.pc = new RTCPeerConnection(rtcConfig);
    this.pc.onnegotiationneeded = () => this.#offer();
    this.pc.onicecandidate = ({ candidate }) => this.#send({ candidate: candidate?.toJSON() ?? null });
    this.pc.ontrack = ({ track }) => onTrack(track);
    this.pc.onconnectionstatechange = () => {
      this.#restartIfFailed();
      onConnectionState(this.pc.connectionState);
    };
    this.pc.oniceconnectionstatechange = () => this.#restartIfFailed();
    this.#localStream = localStream;
    if (polite) this.#mediaTimer = setTimeout(() => this.#addLocalMedia(), FIRST_OFFER_GRACE_MS);
    else this.#addLocalMedia();
  }

  // Adding media is what makes a side offer (negotiationneeded), so it happens once, either
  // at once (impolite), on the first remote offer, or when the grace period ends (polite).
  #addLocalMedia() {
    if (this.#mediaAdded) return;
    this.#mediaAdded = true;
    clearTimeout(this.#mediaTimer);
    const stream = this.#localStream;
    // After a remote offer, addTrack reuses the transceivers that offer created.
    for (const track of stream?.getTracks() ?? []) this.pc.addTrack(track, stream);
    // Without a local track of a kind, still ask to receive it so the remote side can send.
    for (const kind of ["audio", "video"]) {
      if (!this.pc.getTransceivers().some((transceiver) => transceiver.receiver.track.kind === kind)) {
        this.pc.addTransceiver(kind, { direction: "recvonly" });
      }
    }
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
   * @param {MediaStream|null} options.localStream
   * @param {(message: {to: string}) => void} options.sendSignal  emits the `signal` event
   * @param {(remoteId: string, track: MediaStreamTrack) => void} options.onTrack
   * @param {(remoteId: string, state: RTCPeerConnectionState) => void} options.onConnectionState
   */
  constructor(options) {
    this.#options = options;
  }

  has(remoteId) {
    return this.#peers.has(remoteId);
  }

  /** Map remoteId -> RTCPeerConnection (a snapshot). */
  get connections() {
    return new Map([...this.#peers].map(([id, peer]) => [id, peer.pc]));
  }

  connect(remoteId) {
    if (this.#peers.has(remoteId)) return;
    const { selfId, rtcConfig, localStream, sendSignal, onTrack, onConnectionState } = this.#options;
    this.#peers.set(remoteId, new Peer({
      remoteId,
      // Both sides must agree without talking: the lower id (plain string order) is polite.
      polite: selfId < remoteId,
      rtcConfig,
      localStream,
      send: (message) => sendSignal({ to: remoteId, ...message }),
      onTrack: (track) => onTrack(remoteId, track),
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

  close() {
    for (const remoteId of [...this.#peers.keys()]) this.disconnect(remoteId);
  }
}

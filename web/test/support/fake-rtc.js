// @ts-nocheck
// A small stand-in for RTCPeerConnection, enough to drive web/static/peers.js in Node:
// JSEP's signaling states (offer, answer, implicit rollback), transceivers with mids and
// directions, negotiationneeded, trickled candidates that only fit the connection they came
// from, and an operations chain like the browser's. Its "SDP" is JSON.
//
// It also models the Chromium fault the client is built around (w3c/webrtc-pc#3081): a
// connection that rolls back its *first* offer leaves its remote tracks muted for good.

let counter = 0;

const REVERSE = { sendrecv: "sendrecv", sendonly: "recvonly", recvonly: "sendonly", inactive: "inactive" };
const sends = (direction) => direction === "sendrecv" || direction === "sendonly";
const receives = (direction) => direction === "sendrecv" || direction === "recvonly";
/** The answer's direction, from the offer's and the answerer's own wish. */
function answerDirection(offered, wanted) {
  const send = sends(wanted) && receives(offered);
  const receive = receives(wanted) && sends(offered);
  return send && receive ? "sendrecv" : send ? "sendonly" : receive ? "recvonly" : "inactive";
}

export class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.id = `track-${++counter}`;
    this.readyState = "live";
    this.muted = false;
  }
}

class FakeTransceiver {
  #direction;
  #onChange;

  constructor(kind, direction, track = null, onChange = () => {}) {
    this.kind = kind;
    this.mid = null;
    this.#direction = direction;
    this.#onChange = onChange;
    this.currentDirection = null;
    this.stopped = false;
    this.fromAddTrack = false;
    this.negotiated = null; // the direction last negotiated (null: never)
    this.trackEventFired = false;
    this.sender = {
      track,
      replaceTrack: async (next) => { this.sender.track = next; },
      setStreams: () => {},
    };
    this.receiver = { track: new FakeTrack(kind) };
  }

  get direction() {
    return this.#direction;
  }

  // Changing what a transceiver wants needs a negotiation, as in the browser.
  set direction(value) {
    this.#direction = value;
    this.#onChange();
  }
}

export class FakePeerConnection {
  /** Every connection made, oldest first. */
  static made = [];

  constructor(config) {
    this.config = config;
    this.id = `pc-${++counter}`;
    this.signalingState = "stable";
    this.connectionState = "new";
    this.iceConnectionState = "new";
    this.localDescription = null;
    this.remoteDescription = null;
    this.rollbacks = 0;
    this.firstOfferRolledBack = false;
    this.completedNegotiations = 0;
    this.restarts = 0;
    this.onnegotiationneeded = null;
    this.onicecandidate = null;
    this.ontrack = null;
    this.onsignalingstatechange = null;
    this.onconnectionstatechange = null;
    this.oniceconnectionstatechange = null;
    this.transceivers = [];
    this.remoteCandidates = 0;
    this.ops = Promise.resolve();
    this.negotiationQueued = false;
    FakePeerConnection.made.push(this);
  }

  getTransceivers() {
    return [...this.transceivers];
  }

  addTrack(track) {
    // Like the browser: reuse a transceiver a remote offer created that sends nothing yet.
    let transceiver = this.transceivers.find((t) =>
      t.kind === track.kind && !t.sender.track && !t.fromAddTrack && !t.stopped && !sends(t.direction));
    if (transceiver) {
      transceiver.sender.track = track;
      transceiver.direction = transceiver.direction === "recvonly" ? "sendrecv" : "sendonly";
    } else {
      transceiver = new FakeTransceiver(track.kind, "sendrecv", track, () => this.#needNegotiation());
      this.transceivers.push(transceiver);
    }
    transceiver.fromAddTrack = true;
    this.#needNegotiation();
    return transceiver.sender;
  }

  addTransceiver(trackOrKind, { direction = "sendrecv" } = {}) {
    const track = typeof trackOrKind === "string" ? null : trackOrKind;
    const transceiver = new FakeTransceiver(track?.kind ?? trackOrKind, direction, track, () => this.#needNegotiation());
    this.transceivers.push(transceiver);
    this.#needNegotiation();
    return transceiver;
  }

  #unusedMid() {
    const used = new Set(this.transceivers.map((t) => t.mid));
    let mid = 0;
    while (used.has(String(mid))) mid += 1;
    return String(mid);
  }

  #needed() {
    return this.transceivers.some((t) => !t.stopped && (t.mid === null || t.negotiated !== t.direction));
  }

  #needNegotiation() {
    if (this.negotiationQueued || this.signalingState === "closed") return;
    this.negotiationQueued = true;
    setTimeout(() => {
      this.negotiationQueued = false;
      if (this.signalingState === "stable" && this.#needed()) this.onnegotiationneeded?.();
    }, 0);
  }

  #chain(operation) {
    const result = this.ops.then(operation);
    this.ops = result.catch(() => {});
    return result;
  }

  #setSignalingState(state) {
    this.signalingState = state;
    this.onsignalingstatechange?.();
    if (state === "stable" && this.#needed()) this.#needNegotiation();
  }

  #describe(type) {
    return {
      type,
      sdp: JSON.stringify({
        from: this.id,
        media: this.transceivers.filter((t) => t.mid !== null).map((t) => ({ mid: t.mid, kind: t.kind, direction: t.direction })),
      }),
    };
  }

  setLocalDescription(description) {
    return this.#chain(async () => {
      if (this.signalingState === "closed") throw new Error("InvalidStateError: closed");
      if (description?.type === "rollback") {
        this.#rollback();
        return;
      }
      if (this.signalingState === "stable" || this.signalingState === "have-local-offer") {
        for (const t of this.transceivers) if (t.mid === null && !t.stopped) t.mid = this.#unusedMid();
        this.localDescription = wrap(this.#describe("offer"));
        this.#setSignalingState("have-local-offer");
      } else if (this.signalingState === "have-remote-offer") {
        const offer = JSON.parse(this.remoteDescription.sdp);
        for (const line of offer.media) {
          const transceiver = this.transceivers.find((t) => t.mid === line.mid);
          transceiver.currentDirection = answerDirection(line.direction, transceiver.direction);
          transceiver.negotiated = transceiver.direction;
        }
        this.localDescription = wrap(this.#describe("answer"));
        this.#completed();
      }
      this.#gather();
    });
  }

  setRemoteDescription(description) {
    return this.#chain(async () => {
      if (this.signalingState === "closed") throw new Error("InvalidStateError: closed");
      const body = description.sdp ? JSON.parse(description.sdp) : null;
      if (description.type === "offer") {
        if (this.signalingState === "have-local-offer") this.#rollback();
        if (this.signalingState !== "stable") throw new Error(`InvalidStateError: offer in ${this.signalingState}`);
        for (const line of body.media) {
          let transceiver = this.transceivers.find((t) => t.mid === line.mid);
          transceiver ??= this.transceivers.find((t) => t.mid === null && t.kind === line.kind && t.fromAddTrack);
          if (!transceiver) {
            transceiver = new FakeTransceiver(line.kind, "recvonly", null, () => this.#needNegotiation());
            this.transceivers.push(transceiver);
          }
          transceiver.mid = line.mid;
        }
        this.remoteDescription = wrap(description);
        this.#setSignalingState("have-remote-offer");
      } else if (description.type === "answer") {
        if (this.signalingState !== "have-local-offer") throw new Error(`InvalidStateError: answer in ${this.signalingState}`);
        for (const line of body.media) {
          const transceiver = this.transceivers.find((t) => t.mid === line.mid);
          transceiver.currentDirection = REVERSE[line.direction];
          transceiver.negotiated = transceiver.direction;
        }
        this.remoteDescription = wrap(description);
        this.#completed();
      }
    });
  }

  #rollback() {
    this.rollbacks += 1;
    if (this.completedNegotiations === 0) {
      // w3c/webrtc-pc#3081 as Chromium shows it: muted for good.
      this.firstOfferRolledBack = true;
      for (const t of this.transceivers) t.receiver.track.muted = true;
    }
    for (const t of this.transceivers) if (t.negotiated === null) t.mid = null;
    this.localDescription = this.completedNegotiations ? this.localDescription : null;
    this.#setSignalingState("stable");
  }

  #completed() {
    this.completedNegotiations += 1;
    this.#setSignalingState("stable");
    for (const t of this.transceivers) {
      if (receives(t.currentDirection) && !t.trackEventFired) {
        t.trackEventFired = true;
        this.ontrack?.({ track: t.receiver.track, transceiver: t });
      }
    }
    this.#maybeConnected();
  }

  #gather() {
    const from = this.id;
    setTimeout(() => {
      if (this.signalingState === "closed") return;
      this.onicecandidate?.({ candidate: { toJSON: () => ({ candidate: `candidate:${from}`, sdpMid: "0" }) } });
      this.onicecandidate?.({ candidate: null });
    }, 0);
  }

  addIceCandidate(candidate) {
    return this.#chain(async () => {
      if (!this.remoteDescription) throw new Error("InvalidStateError: no remote description");
      if (!candidate) return;
      const from = candidate.candidate.replace("candidate:", "");
      if (from !== JSON.parse(this.remoteDescription.sdp).from) {
        throw new Error("OperationError: the candidate's username fragment matches no description");
      }
      this.remoteCandidates += 1;
      this.#maybeConnected();
    });
  }

  #maybeConnected() {
    if (this.connectionState !== "new" || !this.remoteCandidates || this.signalingState !== "stable") return;
    this.connectionState = "connected";
    this.iceConnectionState = "connected";
    this.onconnectionstatechange?.();
  }

  restartIce() {
    this.restarts += 1;
  }

  close() {
    this.signalingState = "closed";
    this.connectionState = "closed";
  }
}

function wrap(description) {
  return { ...description, toJSON: () => ({ type: description.type, sdp: description.sdp }) };
}

/** Let every timer and promise of the fakes run out. */
export async function settle(rounds = 300) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setTimeout(resolve, 0));
}

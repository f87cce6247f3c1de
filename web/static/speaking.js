// @ts-check
// Who is speaking, from the audio each remote participant sends us: the average level over
// each interval, from the receiver's accumulated audio energy (inbound-rtp
// totalAudioEnergy / totalSamplesDuration), so a short sound between two samples is not
// missed. A tile is outlined from the first loud interval and keeps it through the short
// pauses between words, so the outline does not flicker.

const INTERVAL_MS = 200;
// RTP audio level (0..1, linear). Room noise through a muted or quiet microphone stays well
// under it; speech at a normal distance is far above.
export const SPEAKING_LEVEL = 0.05;
export const HOLD_MS = 800;

/** One participant's speaking state, from levels sampled over time. */
export class SpeakingState {
  speaking = false;
  #lastLoudAt = -Infinity;

  /**
   * @param {number} level  0..1
   * @param {number} now    ms
   * @returns {boolean} whether `speaking` changed
   */
  sample(level, now) {
    if (level >= SPEAKING_LEVEL) this.#lastLoudAt = now;
    const speaking = now - this.#lastLoudAt < HOLD_MS;
    if (speaking === this.speaking) return false;
    this.speaking = speaking;
    return true;
  }
}

/** @typedef {{energy: number, duration: number}} AudioTotals */

/**
 * The average audio level (0..1, linear, as RTP's) between two readings of the totals.
 * @param {AudioTotals|null} before
 * @param {AudioTotals} now
 */
export function averageLevel(before, now) {
  if (!before) return 0;
  const duration = now.duration - before.duration;
  const energy = now.energy - before.energy;
  return duration > 0 && energy > 0 ? Math.sqrt(energy / duration) : 0;
}

/**
 * The totals of what a connection's audio receivers got so far (null without audio).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<AudioTotals|null>}
 */
async function audioTotals(pc) {
  let totals = null;
  for (const receiver of pc.getReceivers()) {
    if (receiver.track?.kind !== "audio") continue;
    for (const stat of (await receiver.getStats()).values()) {
      if (stat.type !== "inbound-rtp" || typeof stat.totalAudioEnergy !== "number") continue;
      totals ??= { energy: 0, duration: 0 };
      totals.energy += stat.totalAudioEnergy;
      totals.duration += stat.totalSamplesDuration ?? 0;
    }
  }
  return totals;
}

/** Polls every connection; calls `onChange(remoteId, speaking)` when that changes. */
export class SpeakingMonitor {
  #getPeers;
  #onChange;
  /** @type {ReturnType<typeof setInterval> | null} */
  #timer = null;
  /** @type {Map<string, SpeakingState>} */
  #states = new Map();
  /** @type {Map<string, {pc: RTCPeerConnection, totals: AudioTotals}>} */
  #totals = new Map();
  #busy = false;

  /**
   * @param {() => Map<string, RTCPeerConnection>} getPeers
   * @param {(remoteId: string, speaking: boolean) => void} onChange
   */
  constructor(getPeers, onChange) {
    this.#getPeers = getPeers;
    this.#onChange = onChange;
  }

  start() {
    this.#timer ??= setInterval(() => this.#tick(), INTERVAL_MS);
  }

  stop() {
    clearInterval(this.#timer ?? undefined);
    this.#timer = null;
    this.#states.clear();
    this.#totals.clear();
  }

  async #tick() {
    if (this.#busy) return; // a slow getStats: skip a beat rather than pile up
    this.#busy = true;
    try {
      const peers = this.#getPeers();
      for (const [id, state] of [...this.#states]) {
        if (!peers.has(id)) {
          if (state.speaking) this.#onChange(id, false); // its tile may stay (reconnecting)
          this.#states.delete(id);
          this.#totals.delete(id);
        }
      }
      await Promise.all([...peers].map(async ([id, pc]) => {
        const totals = await audioTotals(pc).catch(() => null); // closed meanwhile
        if (!totals || !this.#timer) return;
        const before = this.#totals.get(id);
        this.#totals.set(id, { pc, totals });
        const level = averageLevel(before?.pc === pc ? before.totals : null, totals);
        let state = this.#states.get(id);
        if (!state) this.#states.set(id, (state = new SpeakingState()));
        if (state.sample(level, performance.now())) this.#onChange(id, state.speaking);
      }));
    } finally {
      this.#busy = false;
    }
  }
}

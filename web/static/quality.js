// @ts-check
// Connection quality per remote participant, from getStats() every few seconds:
// round-trip time of the selected candidate pair, packet loss of what we receive since the
// last sample, and the frame rate of their camera while it sends.

import { t } from "./i18n.js";

const INTERVAL_MS = 2_000;

/**
 * A level in words, in the page's language: "Good connection" (for screen readers and the
 * tooltip), or with `short` the one word a tile shows ("Good").
 * @param {"good"|"fair"|"poor"} level
 * @param {{short?: boolean, language?: string}} [options]
 */
export function qualityLabel(level, { short = false, language } = {}) {
  return t(short ? `quality.${level}.short` : `quality.${level}`, {}, language);
}

/**
 * @param {{rttMs: number|null, lossPercent: number|null, fps: number|null}} sample
 * @returns {"good"|"fair"|"poor"}
 */
export function classify({ rttMs, lossPercent, fps }) {
  const rtt = rttMs ?? 0;
  const loss = lossPercent ?? 0;
  if (rtt > 500 || loss > 8 || (fps !== null && fps < 8)) return "poor";
  if (rtt > 250 || loss > 2 || (fps !== null && fps < 15)) return "fair";
  return "good";
}

/** @typedef {{received: number, lost: number, framesDecoded: number}} Totals */
/** @typedef {{rttMs: number|null, lossPercent: number|null, fps: number|null}} Sample */

/**
 * @param {RTCPeerConnection} pc
 * @param {Totals | null} previous   the totals of the last sample of this connection
 * @returns {Promise<Sample & {totals: Totals}>}
 */
async function sample(pc, previous) {
  const report = await pc.getStats();
  let rttMs = null;
  let received = 0;
  let lost = 0;
  let framesDecoded = 0;
  let fps = null;
  for (const stat of report.values()) {
    if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded" &&
        typeof stat.currentRoundTripTime === "number") {
      rttMs = Math.round(stat.currentRoundTripTime * 1000);
    } else if (stat.type === "inbound-rtp") {
      received += stat.packetsReceived ?? 0;
      lost += Math.max(0, stat.packetsLost ?? 0);
      if (stat.kind === "video") {
        framesDecoded += stat.framesDecoded ?? 0;
        if (typeof stat.framesPerSecond === "number") fps = Math.max(fps ?? 0, stat.framesPerSecond);
      }
    }
  }
  const totals = { received, lost, framesDecoded };
  if (!previous) return { totals, rttMs, lossPercent: null, fps: null };
  const dReceived = received - previous.received;
  const dLost = lost - previous.lost;
  const lossPercent = dReceived + dLost > 0 ? (100 * dLost) / (dReceived + dLost) : null;
  // A camera that is off or audio only sends no frames: that is not a bad connection.
  const videoFlowing = framesDecoded > previous.framesDecoded;
  return { totals, rttMs, lossPercent, fps: videoFlowing ? fps : null };
}

/**
 * Polls every connection; calls `onQuality(remoteId, level, sample)` for connected peers.
 * @param {() => Map<string, RTCPeerConnection>} getPeers
 * @param {(remoteId: string, level: "good"|"fair"|"poor", sample: Sample) => void} onQuality
 */
export class QualityMonitor {
  #getPeers;
  #onQuality;
  /** @type {ReturnType<typeof setInterval> | null} */
  #timer = null;
  /** @type {Map<string, {pc: RTCPeerConnection, totals: Totals}>} */
  #previous = new Map();
  /** @type {Map<string, Sample & {level: "good"|"fair"|"poor"}>} */
  levels = new Map();

  /**
   * @param {() => Map<string, RTCPeerConnection>} getPeers
   * @param {(remoteId: string, level: "good"|"fair"|"poor", sample: Sample) => void} onQuality
   */
  constructor(getPeers, onQuality) {
    this.#getPeers = getPeers;
    this.#onQuality = onQuality;
  }

  start() {
    this.#timer ??= setInterval(() => this.#tick(), INTERVAL_MS);
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
    this.#previous.clear();
    this.levels.clear();
  }

  async #tick() {
    const peers = this.#getPeers();
    for (const id of [...this.#previous.keys()]) {
      if (!peers.has(id)) {
        this.#previous.delete(id);
        this.levels.delete(id);
      }
    }
    await Promise.all([...peers].map(async ([id, pc]) => {
      if (pc.connectionState !== "connected") return;
      try {
        const before = this.#previous.get(id);
        const result = await sample(pc, before?.pc === pc ? before.totals : null);
        this.#previous.set(id, { pc, totals: result.totals });
        if (result.lossPercent === null && result.rttMs === null) return;
        const { rttMs, lossPercent, fps } = result;
        const level = classify({ rttMs, lossPercent, fps });
        this.levels.set(id, { level, rttMs, lossPercent, fps });
        this.#onQuality(id, level, { rttMs, lossPercent, fps });
      } catch {
        // The connection closed while sampling.
      }
    }));
  }
}

// @ts-check
// The pre-join network check (docs/protocol.md, "Pre-join network check"): a throw-away
// peer connection to the server over the same TURN relay the call will use, with two data
// channels. `probe-ping` measures round-trip time and loss, `probe-bulk` the upload rate.

import { t } from "./i18n.js";

const GATHER_TIMEOUT_MS = 5_000;
const OPEN_TIMEOUT_MS = 10_000;
const PROBE_ACK_TIMEOUT_MS = 20_000;
const PINGS = 40;
const PING_INTERVAL_MS = 50; // 40 pings over 2 s
const PING_GRACE_MS = 1_000; // late echoes still count as arrived
const BULK_SECONDS = 2;
const CHUNK_BYTES = 16 * 1024;
const BUFFER_HIGH = 1024 * 1024;
const BUFFER_LOW = 256 * 1024;
const BULK_REPLY_TIMEOUT_MS = 15_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Run the check once.
 * @param {(payload: object, timeoutMs: number) => Promise<object>} probe  emits `probe`, resolves with the ack
 * @param {(phase: string) => void} [onPhase]  told each phase in words (the catalogue's)
 * @param {AbortSignal} [signal]  stops the check at once (its connection closes): joining
 *   must never wait for it, nor share the relay and the server with it
 * @returns {Promise<{rttMs: number|null, lossPercent: number, kbps: number|null, thresholds: object}>}
 */
export async function measureNetwork(probe, onPhase = () => {}, signal = new AbortController().signal) {
  const stopped = new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  stopped.catch(() => {}); // rejected only for the awaits below
  /** @template T @param {Promise<T>} promise @returns {Promise<T>} */
  const until = (promise) => Promise.race([promise, stopped]);
  onPhase(t("netcheck.connecting"));
  const settings = await until(probe({}, PROBE_ACK_TIMEOUT_MS));
  // For the console only: a failed check shows the catalogue's words (NetworkCheckView).
  if (!settings?.ok) throw new Error(`the server refused the network check: ${settings?.error?.message ?? "no reason"}`);
  const pc = new RTCPeerConnection(settings.ice);
  signal.addEventListener("abort", () => pc.close(), { once: true });
  try {
    const ping = pc.createDataChannel("probe-ping", { ordered: false, maxRetransmits: 0 });
    const bulk = pc.createDataChannel("probe-bulk");
    bulk.binaryType = "arraybuffer";
    await until(pc.setLocalDescription(await until(pc.createOffer())));
    await until(iceGatheringComplete(pc));
    const answer = await until(probe({ description: pc.localDescription.toJSON() }, PROBE_ACK_TIMEOUT_MS));
    if (!answer?.ok || !answer.description) {
      throw new Error(`the server did not answer the network check: ${answer?.error?.message ?? "no reason"}`);
    }
    await until(pc.setRemoteDescription(answer.description));
    await until(withTimeout(Promise.all([opened(ping), opened(bulk)]), OPEN_TIMEOUT_MS, "opening the check"));

    onPhase(t("netcheck.measuring_delay"));
    const { rttMs, lossPercent } = await until(measurePing(ping));
    onPhase(t("netcheck.measuring_upload"));
    // Enough to tell "fast enough" apart, without saturating the person's uplink (or the server).
    const capKbps = Math.max(4 * settings.thresholds.min_kbps, 2_000);
    const kbps = await until(measureUpload(bulk, capKbps));
    return { rttMs, lossPercent, kbps, thresholds: settings.thresholds };
  } finally {
    pc.close();
  }
}

// The probe does not trickle: the offer must carry every candidate.
function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    // Whatever was gathered by then is used (a slow STUN server must not block the check).
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

function opened(channel) {
  if (channel.readyState === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.addEventListener("open", resolve, { once: true });
    channel.addEventListener("close", () => reject(new Error("the check's connection closed")), { once: true });
  });
}

async function measurePing(channel) {
  const rtts = [];
  const seen = new Set();
  const onMessage = ({ data }) => {
    try {
      const { n, t } = JSON.parse(data);
      if (Number.isInteger(n) && !seen.has(n)) {
        seen.add(n);
        rtts.push(performance.now() - t);
      }
    } catch {
      // Not one of ours.
    }
  };
  channel.addEventListener("message", onMessage);
  for (let n = 0; n < PINGS; n += 1) {
    if (channel.readyState !== "open") break;
    channel.send(JSON.stringify({ n, t: performance.now() }));
    await sleep(PING_INTERVAL_MS);
  }
  await sleep(PING_GRACE_MS);
  channel.removeEventListener("message", onMessage);
  rtts.sort((a, b) => a - b);
  const middle = Math.floor(rtts.length / 2);
  const median = rtts.length === 0 ? null
    : rtts.length % 2 ? rtts[middle] : (rtts[middle - 1] + rtts[middle]) / 2;
  return {
    rttMs: median === null ? null : Math.round(median),
    lossPercent: Math.round(((PINGS - seen.size) / PINGS) * 1000) / 10,
  };
}

async function measureUpload(channel, capKbps) {
  const reply = new Promise((resolve) => {
    channel.addEventListener("message", function onMessage({ data }) {
      if (typeof data !== "string") return;
      channel.removeEventListener("message", onMessage);
      try {
        resolve(JSON.parse(data));
      } catch {
        resolve(null);
      }
    });
  });
  channel.bufferedAmountLowThreshold = BUFFER_LOW;
  const chunk = new ArrayBuffer(CHUNK_BYTES);
  const bytesPerMs = (capKbps * 1000) / 8 / 1000;
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < BULK_SECONDS * 1000 && channel.readyState === "open") {
    const elapsed = performance.now() - started;
    if (channel.bufferedAmount > BUFFER_HIGH) {
      await Promise.race([
        new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true })),
        sleep(100),
      ]);
    } else if (sent > bytesPerMs * elapsed) {
      await sleep(10);
    } else {
      channel.send(chunk);
      sent += CHUNK_BYTES;
    }
  }
  channel.send("done");
  const result = await withTimeout(reply, BULK_REPLY_TIMEOUT_MS, "the upload measurement");
  if (!result || !(result.bytes > 0)) return null;
  // `seconds` is first to last byte at the server; a single chunk gives 0: fall back to ours.
  const seconds = result.seconds > 0 ? result.seconds : (performance.now() - started) / 1000;
  return Math.round((result.bytes * 8) / 1000 / seconds);
}

/** Which figures pass their threshold; a missing figure fails. */
export function judge({ rttMs, lossPercent, kbps }, thresholds) {
  const checks = {
    rtt: rttMs !== null && rttMs <= thresholds.max_rtt_ms,
    loss: lossPercent <= thresholds.max_loss_percent,
    kbps: kbps !== null && kbps >= thresholds.min_kbps,
  };
  return { checks, passed: checks.rtt && checks.loss && checks.kbps };
}

/** Plain-language advice for what failed, in the page's language. */
export function adviceFor(checks) {
  const advice = [];
  if (!checks.rtt || !checks.loss) advice.push(t("netcheck.advice.closer"));
  if (!checks.kbps) advice.push(t("netcheck.advice.close_apps"));
  if (advice.length) advice.push(t("netcheck.advice.still_join"));
  return advice;
}

/**
 * A figure and its verdict, in words: `format` the measured value, `bad` the catalogue's
 * word for a figure that fails (a pass is "OK").
 * @type {Record<string, {format: (r: {rttMs: number|null, lossPercent: number, kbps: number|null}) => string, bad: string}>}
 */
const FIGURES = {
  rtt: {
    format: (r) => (r.rttMs === null ? t("netcheck.no_answer") : t("netcheck.ms", { value: r.rttMs })),
    bad: "netcheck.slow",
  },
  loss: { format: (r) => t("netcheck.percent", { value: r.lossPercent }), bad: "netcheck.high" },
  kbps: {
    format: (r) => (r.kbps === null ? t("netcheck.unknown")
      : r.kbps >= 1000 ? t("netcheck.mbps", { value: (r.kbps / 1000).toFixed(1) })
        : t("netcheck.kbps", { value: r.kbps })),
    bad: "netcheck.low",
  },
};

/**
 * What a figure's row says: the value and its verdict ("240 ms", "✓ OK").
 * @param {"rtt"|"loss"|"kbps"} key
 * @param {{rttMs: number|null, lossPercent: number, kbps: number|null}} figures
 * @param {boolean} passed
 */
export function figureText(key, figures, passed) {
  const { format, bad } = FIGURES[key];
  return { value: format(figures), verdict: passed ? `✓ ${t("netcheck.ok")}` : `! ${t(bad)}` };
}

/**
 * The check's card on the pre-join screen, and `window.mtm.networkCheck`:
 * {state: "idle"|"running"|"done"|"failed"|"cancelled", rttMs, lossPercent, kbps, passed}.
 */
export class NetworkCheckView {
  result = { state: "idle", rttMs: null, lossPercent: null, kbps: null, passed: null };
  #root;
  #button;
  #summary;
  #advice;
  /** @type {Record<string, HTMLElement>} */
  #figures;
  #probe;
  #running = null;
  /** @type {AbortController|null} */
  #abort = null;

  /**
   * @param {HTMLElement} root  the card: [data-figure=rtt|loss|kbps] rows, a button, summary, advice list
   * @param {(payload: object, timeoutMs: number) => Promise<object>} probe
   */
  constructor(root, probe) {
    this.#root = root;
    this.#probe = probe;
    this.#button = /** @type {HTMLButtonElement} */ (root.querySelector("[data-netcheck-run]"));
    this.#summary = root.querySelector("[data-netcheck-summary]");
    this.#advice = root.querySelector("[data-netcheck-advice]");
    this.#figures = Object.fromEntries(
      [...root.querySelectorAll("[data-figure]")].map((row) => [/** @type {HTMLElement} */ (row).dataset.figure, /** @type {HTMLElement} */ (row)]),
    );
    this.#button.addEventListener("click", () => this.run());
  }

  /** Run (or join the run in progress). Never throws. */
  run() {
    this.#running ??= this.#run().finally(() => { this.#running = null; });
    return this.#running;
  }

  /** Stop a check that runs (the person joins): state "cancelled", nothing judged. */
  cancel() {
    this.#abort?.abort(new DOMException("the network check stopped: joining", "AbortError"));
  }

  async #run() {
    this.#set({ state: "running", rttMs: null, lossPercent: null, kbps: null, passed: null });
    this.#button.disabled = true;
    this.#advice.replaceChildren();
    for (const row of Object.values(this.#figures)) {
      row.dataset.result = "pending";
      row.querySelector("dd").textContent = "…";
    }
    const abort = (this.#abort = new AbortController());
    try {
      const figures = await measureNetwork(this.#probe, (phase) => { this.#summary.textContent = phase; }, abort.signal);
      const { checks, passed } = judge(figures, figures.thresholds);
      this.#set({ state: "done", rttMs: figures.rttMs, lossPercent: figures.lossPercent, kbps: figures.kbps, passed });
      for (const [key, row] of Object.entries(this.#figures)) {
        const text = figureText(/** @type {"rtt"|"loss"|"kbps"} */ (key), figures, checks[key]);
        row.dataset.result = checks[key] ? "pass" : "warn";
        const value = row.querySelector("dd");
        const verdict = document.createElement("span");
        verdict.className = "netcheck__verdict";
        verdict.textContent = text.verdict;
        value.replaceChildren(`${text.value} `, verdict);
      }
      this.#summary.textContent = t(passed ? "netcheck.good" : "netcheck.weak");
      this.#showAdvice(adviceFor(checks));
    } catch (error) {
      if (abort.signal.aborted) {
        this.#set({ state: "cancelled", passed: null });
        for (const row of Object.values(this.#figures)) {
          row.dataset.result = "unknown";
          row.querySelector("dd").textContent = "—";
        }
        this.#summary.textContent = t("netcheck.cancelled");
        return this.result;
      }
      console.warn("network check failed", error);
      this.#set({ state: "failed", passed: false });
      for (const row of Object.values(this.#figures)) {
        row.dataset.result = "unknown";
        row.querySelector("dd").textContent = "—";
      }
      this.#summary.textContent = t("netcheck.failed");
      this.#showAdvice([t("netcheck.advice.check_internet"), t("netcheck.advice.still_join")]);
    } finally {
      this.#button.disabled = false;
      this.#button.textContent = t("netcheck.again");
    }
    return this.result;
  }

  #showAdvice(lines) {
    this.#advice.replaceChildren(...lines.map((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    }));
  }

  #set(values) {
    this.result = { ...this.result, ...values };
    this.#root.dataset.state = this.result.state;
    if (this.result.passed !== null) this.#root.dataset.passed = String(this.result.passed);
  }
}

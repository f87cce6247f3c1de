// @ts-check
// The care team's visit timer: time since the patient first entered the call (the consult
// record's `visit_started_at`). MTM is billed in 15-minute blocks, so the pharmacist sees
// the time as it runs.

/**
 * "4:05", or "1:02:09" past an hour.
 * @param {number} ms
 */
export function formatElapsed(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

export class VisitTimer {
  #element;
  #output;
  #now;
  /** @type {number|null} */
  #startedAt = null;
  // The server's clock minus this page's, from the last `server_time` heard.
  #offset = 0;
  /** @type {ReturnType<typeof setInterval>|null} */
  #ticker = null;

  /**
   * @param {HTMLElement} element  shown once the visit started
   * @param {HTMLElement} output   where the time is written
   * @param {() => number} [now]   ms since the epoch
   */
  constructor(element, output, now = Date.now) {
    this.#element = element;
    this.#output = output;
    this.#now = now;
  }

  /**
   * @param {string|null|undefined} startedAt  ISO 8601; nothing happens without one
   * @param {string|null|undefined} [serverTime]  the server's now, sent with it
   */
  start(startedAt, serverTime) {
    const at = startedAt ? Date.parse(startedAt) : NaN;
    if (Number.isNaN(at)) return;
    const server = serverTime ? Date.parse(serverTime) : NaN;
    if (!Number.isNaN(server)) this.#offset = server - this.#now();
    this.#startedAt = at;
    this.#element.hidden = false;
    this.#render();
    this.#ticker ??= setInterval(() => this.#render(), 1000);
  }

  stop() {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
  }

  #render() {
    if (this.#startedAt === null) return;
    this.#output.textContent = formatElapsed(this.#now() + this.#offset - this.#startedAt);
  }
}

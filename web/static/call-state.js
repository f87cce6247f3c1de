// @ts-check
// The states of the call page and the moves between them, with nothing of the DOM or the
// network in it: call.js asks for a move, this module says whether it is one, and keeps
// the history (window.mtm.states). "reconnecting" is a page that was in the call (or in
// the waiting room) and lost its connection to the server; it goes back where it was when
// its `join` is accepted again.

/**
 * @typedef {"idle"|"prejoin"|"joining"|"waiting"|"in-call"|"reconnecting"
 *   |"ended"|"error"|"denied"|"removed"|"replaced"} CallStateName
 */

/** States that end the page's session (a notice explains; only a reload starts again). */
/** @type {Set<CallStateName>} */
export const FINAL = new Set(["ended", "denied", "removed", "replaced"]);

/** @type {CallStateName[]} */
const AFTER_JOINING = ["waiting", "in-call", "error", ...FINAL];

/** @type {Record<CallStateName, CallStateName[]>} */
const MOVES = {
  idle: ["prejoin"],
  // "joining" straight from the pre-join screen; an error (the link refused) too.
  prejoin: ["joining", "error", ...FINAL],
  error: ["joining", "error", ...FINAL],
  joining: AFTER_JOINING,
  waiting: ["in-call", "reconnecting", "waiting", "error", ...FINAL],
  "in-call": ["reconnecting", "in-call", "waiting", "error", ...FINAL],
  // Back in (the call, or the waiting room after the grace period), or refused.
  reconnecting: ["reconnecting", ...AFTER_JOINING],
  ended: [],
  denied: [],
  removed: [],
  replaced: [],
};

export class CallState {
  /** @type {CallStateName} */
  state = "idle";
  /** Every state this page went through, oldest first (support and tests). @type {CallStateName[]} */
  history = [];
  /** Where a reconnecting page was before: "in-call" or "waiting". @type {CallStateName|null} */
  #before = null;
  /** @type {(state: CallStateName) => void} */
  #onChange;

  /** @param {(state: CallStateName) => void} [onChange]  after every change */
  constructor(onChange = () => {}) {
    this.#onChange = onChange;
  }

  /**
   * Move to `next`; a move the page cannot make is a fault in the caller.
   * @param {CallStateName} next
   */
  go(next) {
    if (!MOVES[this.state].includes(next)) {
      throw new Error(`the call cannot go from ${this.state} to ${next}`);
    }
    if (next === "reconnecting" && this.state !== "reconnecting") this.#before = this.state;
    if (next !== "reconnecting") this.#before = null;
    const changed = next !== this.state;
    this.state = next;
    if (this.history.at(-1) !== next) this.history.push(next);
    if (changed) this.#onChange(next);
  }

  /** Whether the page is in the call now, or was before it lost its connection. */
  get inCall() {
    return this.state === "in-call" || (this.state === "reconnecting" && this.#before === "in-call");
  }

  /** Whether the page waits to be admitted now, or did before it lost its connection. */
  get waiting() {
    return this.state === "waiting" || (this.state === "reconnecting" && this.#before === "waiting");
  }

  get final() {
    return FINAL.has(this.state);
  }
}

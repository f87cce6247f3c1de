// @ts-check
// A stand-in for a socket.io-client Socket with just what the panel store uses (on, off,
// connected, timeout(ms).emitWithAck, and the "disconnect" event), so a unit test decides
// every answer and when it arrives. Tests against the real server use the real client
// (support/panel-driver.js).

/** @typedef {{event: string, payload: any, resolve: (answer: any) => void, reject: (error: Error) => void}} Request */

export class FakeSocket {
  constructor({ connected = true } = {}) {
    this.connected = connected;
    /** @type {Map<string, Set<(...args: any[]) => void>>} */
    this.handlers = new Map();
    /** @type {Request[]} requests sent and not answered yet, oldest first */
    this.pending = [];
    /** @type {{event: string, payload: any}[]} every request sent, in order */
    this.sent = [];
  }

  /** @param {string} event @param {(...args: any[]) => void} handler */
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)?.add(handler);
    return this;
  }

  /** @param {string} event @param {(...args: any[]) => void} handler */
  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
    return this;
  }

  /** @param {number} _ms */
  timeout(_ms) {
    return this;
  }

  /** @param {string} event @param {any} payload @returns {Promise<any>} */
  emitWithAck(event, payload) {
    this.sent.push({ event, payload: structuredClone(payload) });
    return new Promise((resolve, reject) => this.pending.push({ event, payload, resolve, reject }));
  }

  /** What the server sends: calls the handlers of `event`. */
  /** @param {string} event @param {...any} args */
  receive(event, ...args) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler(...args);
  }

  /** Answer the oldest pending request (it must be `event`), then let the store react. */
  /** @param {string} event @param {any} answer */
  async answer(event, answer) {
    const request = this.pending.shift();
    if (!request) throw new Error(`no pending request to answer with ${event}`);
    if (request.event !== event) throw new Error(`the pending request is ${request.event}, not ${event}`);
    request.resolve(answer);
    await settle();
  }

  /** The connection drops: pending requests fail, as socket.io-client's do. */
  async drop() {
    this.connected = false;
    for (const request of this.pending.splice(0)) request.reject(new Error("disconnected"));
    this.receive("disconnect", "transport close");
    await settle();
  }
}

/** Let promise callbacks and microtasks run. */
export async function settle() {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

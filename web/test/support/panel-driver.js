// @ts-check
// Drives the browser's panel store (web/static/panel-store.js, unchanged) from another
// process: one participant, connected to a real server with socket.io-client for Node.
// Python tests (tests/support/js_panel_client.py) start it and speak JSON lines:
//
//   stdin:  {"id": 1, "cmd": "connect", "url": "http://127.0.0.1:…", "token": "…"}
//   stdout: {"id": 1, "ok": true, "result": {...}, "state": {seq, entities, queue, ...}}
//
// Commands: connect (first time: join and mount the store; later: reconnect, join again and
// hand the ack to store.onReconnected, as call.js does), disconnect, set (store.setField),
// add (store.add), resend (a mutation already sent goes through the queue again, as after
// a lost acknowledgement), wait_for_seq, wait_until_sent, state. Every command that sends
// answers once the store is idle: nothing in flight, and the queue empty, offline, or
// waiting for its retry. The store's own code does all the syncing; this file only calls it
// and records the server's answers to `mutate` (the first one per mutation_id).

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

import { PanelStore } from "../../static/panel-store.js";
import { MemoryStorage } from "./memory-storage.js";

/** @typedef {{id: string, type: string, [key: string]: unknown}} Entity */
/** @typedef {Record<string, any>} Json */

const IDLE_POLL_MS = 10;

class Participant {
  constructor() {
    /** @type {import("socket.io-client").Socket | null} */
    this.socket = null;
    /** @type {PanelStore | null} */
    this.store = null;
    this.storage = new MemoryStorage();
    this.selfId = "";
    this.retryMs = 500;
    /** @type {Map<string, Json>} the first answer to each mutation_id */
    this.results = new Map();
    /** @type {Json[]} mutations answered (finally: neither "not now" nor "not saved yet") */
    this.sent = [];
    /** @type {[string, string][]} (mutation_id, code) of answers that kept a mutation queued */
    this.notSaved = [];
  }

  /** @param {{url: string, token: string, retry_ms?: number}} args */
  async connect({ url, token, retry_ms }) {
    if (retry_ms !== undefined) this.retryMs = retry_ms;
    if (!this.socket) {
      this.socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
      this.recordAnswers(this.socket);
    } else {
      this.socket.connect();
    }
    const socket = this.socket;
    if (!socket.connected) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("connect timed out")), 10_000);
        socket.once("connect", () => (clearTimeout(timer), resolve(undefined)));
        socket.once("connect_error", (error) => (clearTimeout(timer), reject(error)));
      });
    }
    const ack = await socket.timeout(10_000).emitWithAck("join", { consent: { accepted: true } });
    if (!ack?.ok) throw new Error(`join refused: ${JSON.stringify(ack)}`);
    if (!this.store) {
      this.selfId = ack.self.id;
      this.store = new PanelStore({
        socket,
        self: ack.self,
        consultId: "driver",
        initialPanel: ack.panel,
        settings: ack.settings,
        storage: this.storage,
        retryMs: this.retryMs,
      });
      this.store.flush();
    } else {
      this.store.onReconnected(ack);
    }
    await this.idle();
    return { self_id: this.selfId };
  }

  /**
   * Keeps the server's answer to every `mutate` the store sends (the store itself keeps only
   * what it shows). socket.timeout(ms) returns the socket, so wrapping its emitWithAck once
   * sees every call.
   * @param {import("socket.io-client").Socket} socket
   */
  recordAnswers(socket) {
    const emitWithAck = socket.emitWithAck.bind(socket);
    /** @type {(event: string, ...args: any[]) => Promise<any>} */
    const recording = async (event, ...args) => {
      const answer = await emitWithAck(event, ...args);
      if (event === "mutate") this.noteAnswer(args[0], answer);
      return answer;
    };
    socket.emitWithAck = /** @type {typeof socket.emitWithAck} */ (recording);
  }

  /** @param {Json} mutation @param {Json} answer */
  noteAnswer(mutation, answer) {
    const code = answer?.ok === false ? answer.error?.code : null;
    if (code === "database_unavailable" || code === "not_joined") {
      this.notSaved.push([mutation.mutation_id, code]);
      return;
    }
    this.sent.push(structuredClone(mutation));
    if (!this.results.has(mutation.mutation_id)) this.results.set(mutation.mutation_id, answer);
  }

  async disconnect() {
    this.socket?.disconnect();
    return {};
  }

  /** @param {{type: string, entity_id: string, field: string, value: unknown}} args */
  async set({ type, entity_id, field, value }) {
    const mutationId = this.requireStore().setField(type, entity_id, field, value);
    await this.idle();
    return { mutation_id: mutationId };
  }

  /** @param {{type: string, value: Json}} args */
  async add({ type, value }) {
    const entityId = this.requireStore().add(type, value);
    await this.idle();
    return { entity_id: entityId };
  }

  /** @param {{mutation: Json}} args */
  async resend({ mutation }) {
    const again = /** @type {import("../../static/panel-types.js").Mutation} */ (structuredClone(mutation));
    this.requireStore().enqueue(again, "again");
    await this.idle();
    return {};
  }

  /** @param {{seq: number, timeout_ms?: number}} args */
  async wait_for_seq({ seq, timeout_ms = 10_000 }) {
    const store = this.requireStore();
    await until(() => store.seq >= seq, timeout_ms, `seq ${seq} (at ${store.seq})`);
    return {};
  }

  /** @param {{timeout_ms?: number}} args */
  async wait_until_sent({ timeout_ms = 30_000 }) {
    const store = this.requireStore();
    await until(() => store.queueLength === 0, timeout_ms, "an empty queue");
    return {};
  }

  async state() {
    return {};
  }

  /** Nothing in flight, and nothing the store would send now. */
  async idle() {
    const store = this.requireStore();
    await until(
      () => !store.flushRun && (store.queueLength === 0 || !store.online || Boolean(store.retryTimer)),
      30_000,
      "the store to be idle",
    );
  }

  requireStore() {
    if (!this.store) throw new Error("not connected yet");
    return this.store;
  }

  snapshot() {
    const store = this.store;
    const entities = store ? Object.fromEntries([...store.entities].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : {};
    return {
      seq: store?.seq ?? 0,
      entities,
      queue: store ? store.queue.items.map((item) => item.mutation) : [],
      connected: Boolean(this.socket?.connected),
      online: Boolean(store?.online),
      self_id: this.selfId,
      results: Object.fromEntries(this.results),
      sent: this.sent,
      not_saved: this.notSaved,
    };
  }
}

/**
 * @param {() => boolean} condition
 * @param {number} timeoutMs
 * @param {string} what
 */
async function until(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, IDLE_POLL_MS));
  }
}

const COMMANDS = new Set(["connect", "disconnect", "set", "add", "resend", "wait_for_seq", "wait_until_sent", "state"]);

async function main() {
  const participant = new Participant();
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    /** @type {Json} */
    let request = {};
    let reply;
    try {
      request = JSON.parse(line);
      if (!COMMANDS.has(request.cmd)) throw new Error(`unknown command: ${request.cmd}`);
      const result = await participant[request.cmd](request);
      reply = { id: request.id, ok: true, result };
    } catch (error) {
      reply = { id: request.id, ok: false, error: String(error?.stack ?? error) };
    }
    process.stdout.write(`${JSON.stringify({ ...reply, state: participant.snapshot() })}\n`);
  }
  participant.store?.destroy();
  participant.socket?.disconnect();
}

await main();

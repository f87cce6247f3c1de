#!/usr/bin/env node
// Load driver for the MTM Consult benchmarks: one Node process, the same logic for every
// server under test, so that ours/peer ratios compare servers and not drivers.
//
//   node driver.js <config.json>
//
// Modes (config.mode):
//   fanout    C rooms, three participants each; one editor per room edits at a fixed rate
//             (phases spread); measures send -> ack and send -> arrival at the two others.
//             Targets: "ours" (mutate / panel-event), "sio" (the same events against the
//             relay-only peer in sio_server.js) and "yjs" (y-websocket providers, a Y.Map
//             set per edit, arrival = the remote map observing the new value).
//   capacity  connect N idle participants in bounded batches, hold them, report drops.
//
// Output: JSON lines on stdout. {"mark": ...} lines tell the orchestrator when a measured
// window starts and ends (it samples the server's CPU and memory then); the last line is
// {"result": ...}. Progress and errors go to stderr. Every loop is bounded: the config's
// max_total_s ends the process whatever happens.
"use strict";

const fs = require("fs");
const { performance, monitorEventLoopDelay } = require("perf_hooks");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
// y-websocket adds a process "exit" listener per provider; thousands are expected here.
process.setMaxListeners(0);
const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function emit(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function log(message) {
  process.stderr.write(`[driver ${config.target}] ${message}\n`);
}

const hardStop = setTimeout(() => {
  log(`max_total_s (${config.max_total_s} s) reached: giving up`);
  emit({ result: { error: "max_total_s reached", partial: partial() } });
  process.exit(3);
}, (config.max_total_s ?? 600) * 1000);
hardStop.unref();

let partialState = {};
const partial = () => partialState;

async function pool(items, limit, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index], index);
    }
  });
  await Promise.all(workers);
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  const value = sorted[rank - 1];
  return Number.isFinite(value) ? value : "inf";
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    n: sorted.length,
    p50: quantile(sorted, 50),
    p99: quantile(sorted, 99),
    max: quantile(sorted, 100),
  };
}

// ---- Socket.IO participants (ours and the relay peer speak the same events) -------------

function connectSocketIo(url, token, timeoutMs, joinPayload = {}) {
  const { io } = require("socket.io-client");
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"],
      auth: { token },
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
    });
    let settled = false;
    const fail = (error) => {
      if (settled) return;
      settled = true;
      socket.close();
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    socket.once("connect_error", (error) => fail(new Error(`connect_error: ${error.message}`)));
    socket.once("connect", () => {
      socket.timeout(timeoutMs).emit("join", joinPayload, (error, ack) => {
        if (error) return fail(new Error("join: no acknowledgement"));
        if (!ack || !ack.ok) return fail(new Error(`join refused: ${JSON.stringify(ack)}`));
        settled = true;
        resolve({ socket, ack });
      });
    });
  });
}

// One room's three participants, in order: pharmacist (the host, and the editor),
// clinician, patient. The patient accepts the consent and, when sent to the waiting room,
// is admitted by the pharmacist (docs/protocol.md); its call payload then arrives as
// `admitted`. Resolves with [{socket, ack}] (ack = the in-call payload).
async function joinRoom(url, tokens, timeoutMs) {
  const members = [];
  try {
    for (const [index, token] of tokens.entries()) {
      const payload = index === 2 ? { consent: { accepted: true } } : {};
      const member = await connectSocketIo(url, token, timeoutMs, payload);
      members.push(member);
      if (!member.ack.waiting) continue;
      const admitted = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("not admitted in time")), timeoutMs);
        member.socket.once("admitted", (callPayload) => {
          clearTimeout(timer);
          resolve(callPayload);
        });
      });
      const host = members[0].socket;
      const ack = await host
        .timeout(timeoutMs)
        .emitWithAck("admit", { participant_id: member.ack.self.id });
      if (!ack || !ack.ok) throw new Error(`admit refused: ${JSON.stringify(ack)}`);
      member.ack = await admitted;
    }
  } catch (error) {
    for (const member of members) member.socket.close();
    throw error;
  }
  return members;
}

// ---- fan-out ---------------------------------------------------------------------------

async function fanout() {
  const timeoutMs = (config.connect_timeout_s ?? 30) * 1000;
  const payloadBytes = config.payload_bytes;
  const records = new Map(); // edit id -> record
  const counters = {
    ack_errors: 0,
    error_events: 0,
    seq_gaps: 0,
    seq_duplicates: 0,
    unknown_arrivals: 0,
    replayed_acks: 0,
    disconnects: 0,
  };
  const errorCodes = {};
  let window = null; // {from, until, arrivals}
  let closing = false;

  const rooms = [];
  const roomSpecs =
    config.target === "yjs"
      ? Array.from({ length: config.room_count }, (_, i) => ({ name: `${config.room_prefix}-${i}` }))
      : config.rooms;

  function arrived(record, member, at) {
    if (record.measured) record.arrivals.push(at - record.sent);
    record.pending -= 1;
    if (window && at >= window.from && at < window.until) window.arrivals += 1;
  }

  function valueFor(id) {
    const head = `${id}:`;
    return head + "x".repeat(Math.max(0, payloadBytes - head.length));
  }

  const connectStarted = now();
  let connectFailures = 0;
  let firstError = null;

  if (config.target === "yjs") {
    const Y = require("yjs");
    const { WebsocketProvider } = require("y-websocket");
    const WebSocket = require("ws");
    for (const spec of roomSpecs) rooms.push({ name: spec.name, members: [] });
    const joins = [];
    rooms.forEach((room, r) => {
      for (let m = 0; m < 3; m++) joins.push([r, m]);
    });
    await pool(joins, config.connect_concurrency, async ([r, m]) => {
      const room = rooms[r];
      const doc = new Y.Doc();
      const provider = new WebsocketProvider(config.url, room.name, doc, {
        WebSocketPolyfill: WebSocket,
        disableBc: true, // else providers of one room sync in memory and never use the server
        maxBackoffTime: 60000,
      });
      const map = doc.getMap("panel");
      const member = { doc, provider, map, index: m };
      room.members[m] = member;
      map.observe((event) => {
        if (event.transaction.local || !event.keysChanged.has("notes")) return;
        const at = now();
        const value = map.get("notes");
        const id = typeof value === "string" ? value.slice(0, value.indexOf(":")) : "";
        const record = records.get(id);
        if (!record || record.room !== r) {
          counters.unknown_arrivals += 1;
          return;
        }
        if (m !== 0) arrived(record, m, at);
      });
      provider.on("connection-close", () => {
        if (!closing) counters.disconnects += 1;
      });
      try {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no sync")), timeoutMs);
          provider.once("synced", () => {
            clearTimeout(timer);
            resolve();
          });
        });
      } catch (error) {
        connectFailures += 1;
        firstError ??= error.message;
      }
    });
  } else {
    for (const spec of roomSpecs) rooms.push({ entityId: spec.entity_id, members: [] });
    await pool(rooms, config.connect_concurrency, async (room, r) => {
      let joined;
      try {
        joined = await joinRoom(config.url, roomSpecs[r].tokens, timeoutMs);
      } catch (error) {
        connectFailures += 1;
        firstError ??= error.message;
        return;
      }
      joined.forEach(({ socket, ack }, m) => {
        const member = { socket, index: m, lastSeq: ack.panel?.seq ?? 0 };
        room.members[m] = member;
        socket.on("panel-event", (message) => {
          const at = now();
          const event = message && message.event;
          if (!event) return;
          if (event.seq !== member.lastSeq + 1) {
            if (event.seq <= member.lastSeq) counters.seq_duplicates += 1;
            else counters.seq_gaps += 1;
          }
          member.lastSeq = Math.max(member.lastSeq, event.seq);
          const record = records.get(event.mutation_id);
          if (!record || record.room !== r) {
            counters.unknown_arrivals += 1;
            return;
          }
          if (m !== 0) arrived(record, m, at);
        });
        socket.on("error", (error) => {
          counters.error_events += 1;
          const code = (error && error.code) || "unknown";
          errorCodes[code] = (errorCodes[code] || 0) + 1;
        });
        socket.on("disconnect", (reason) => {
          if (!closing) {
            counters.disconnects += 1;
            log(`participant disconnected: ${reason}`);
          }
        });
      });
    });
  }
  const connectSeconds = (now() - connectStarted) / 1000;
  const complete = rooms.filter((room) => room.members.filter(Boolean).length === 3);
  emit({ mark: "connected", rooms: complete.length, failures: connectFailures, seconds: connectSeconds });
  log(`connected ${complete.length}/${rooms.length} rooms in ${connectSeconds.toFixed(1)} s` +
    (connectFailures ? ` (${connectFailures} failures, first: ${firstError})` : ""));

  let editCounter = 0;
  const runId = `b${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

  function send(r, measured, due) {
    const room = complete[r];
    const editor = room.members[0];
    // Unique across runs too: a repeated mutation_id is (rightly) replayed, not broadcast.
    const id = `${runId}-${r}-${editCounter++}`;
    const value = valueFor(id);
    const record = {
      room: rooms.indexOf(room),
      sent: now(),
      lag: 0,
      measured,
      ack: null,
      arrivals: [],
      pending: 2,
    };
    record.lag = record.sent - due;
    records.set(id, record);
    if (config.target === "yjs") {
      editor.map.set("notes", value);
      return record;
    }
    editor.socket.emit(
      "mutate",
      {
        mutation_id: id,
        op: "set",
        entity: "medication",
        entity_id: room.entityId,
        field: "why",
        value,
      },
      (ack) => {
        record.ack = now() - record.sent;
        if (ack && ack.replayed) counters.replayed_acks += 1;
        if (!ack || !ack.ok) {
          record.refused = true;
          counters.ack_errors += 1;
          const code = (ack && ack.error && ack.error.code) || "no_ack";
          errorCodes[`ack:${code}`] = (errorCodes[`ack:${code}`] || 0) + 1;
        }
      },
    );
    return record;
  }

  const steps = [];
  partialState = { steps, counters };
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  // Let the server finish what connecting started (loading documents, writing joins).
  await sleep((config.settle_s ?? 1) * 1000);
  let retried = false;
  for (let stepIndex = 0; stepIndex < config.steps.length; stepIndex++) {
    const step = config.steps[stepIndex];
    if (complete.length === 0) break;
    const editing = Math.min(complete.length, Math.max(1, Math.round(step.rate / 2)));
    const interval = (editing / step.rate) * 1000; // ms between two edits of one room
    const start = now() + 100;
    const from = start + step.warmup_s * 1000;
    const until = from + step.duration_s * 1000;
    const measured = [];
    const lags = [];
    window = { from, until, arrivals: 0 };
    const timers = new Array(editing);
    let cpuAtStart = null;
    const startTimer = setTimeout(() => {
      cpuAtStart = process.cpuUsage();
      loopDelay.reset();
      emit({ mark: "window-start", step: steps.length });
    }, Math.max(0, from - now()));
    for (let r = 0; r < editing; r++) {
      const phase = (r / editing) * interval;
      let k = 0;
      const fire = () => {
        const due = start + phase + k * interval;
        if (due >= until) return;
        const record = send(r, due >= from, due);
        if (record.measured) {
          measured.push(record);
          lags.push(record.lag);
        }
        k += 1;
        timers[r] = setTimeout(fire, Math.max(0, start + phase + k * interval - now()));
      };
      timers[r] = setTimeout(fire, Math.max(0, start + phase - now()));
    }
    await sleep(Math.max(0, until - now()));
    const cpu = process.cpuUsage(cpuAtStart ?? undefined);
    const wall = (now() - from) / 1000;
    emit({ mark: "window-end", step: steps.length });
    const eventLoopP99 = loopDelay.percentile(99) / 1e6;
    timers.forEach((timer) => clearTimeout(timer));
    clearTimeout(startTimer);
    // Drain: wait for outstanding acknowledgements and arrivals, bounded.
    const drainUntil = now() + config.drain_s * 1000;
    const outstanding = () =>
      measured.some((rec) => rec.pending > 0 || (config.target !== "yjs" && rec.ack === null));
    while (outstanding() && now() < drainUntil) await sleep(50);
    const arrivals = [];
    const acks = [];
    let missingArrivals = 0;
    let missingAcks = 0;
    for (const rec of measured) {
      arrivals.push(...rec.arrivals);
      for (let i = rec.arrivals.length; i < 2; i++) {
        arrivals.push(Infinity);
        missingArrivals += 1;
      }
      if (config.target !== "yjs") {
        if (rec.ack === null) missingAcks += 1;
        acks.push(rec.ack ?? Infinity);
      }
    }
    const result = {
      rate: step.rate,
      attempt: retried ? 2 : 1,
      editing_rooms: editing,
      duration_s: step.duration_s,
      sent: measured.length,
      offered_rate: measured.length / step.duration_s,
      delivered_rate: window.arrivals / 2 / wall,
      ack_ms: config.target === "yjs" ? null : summary(acks),
      arrival_ms: summary(arrivals),
      missing_arrivals: missingArrivals,
      missing_acks: missingAcks,
      refused: measured.filter((rec) => rec.refused).length,
      send_lag_ms: summary(lags),
      driver_cpu_pct: (100 * (cpu.user + cpu.system)) / 1e6 / wall,
      driver_event_loop_p99_ms: eventLoopP99,
    };
    steps.push(result);
    log(
      `step ${stepIndex}: ${step.rate} edits/s over ${editing} rooms: arrival p50 ` +
        `${result.arrival_ms.p50} p99 ${result.arrival_ms.p99} ms, missing ${missingArrivals}, ` +
        `driver CPU ${result.driver_cpu_pct.toFixed(0)}%`,
    );
    for (const rec of measured) rec.measured = false;
    // Forget finished records (keeps memory flat over a ramp).
    for (const [id, rec] of records) if (rec.pending <= 0) records.delete(id);
    const p99 = result.arrival_ms.p99;
    if (config.stop_p99_ms != null && (p99 === "inf" || p99 > config.stop_p99_ms)) {
      // One repeat of a failed step, so that a passing hiccup of a shared machine does not
      // end the ramp; a backlog must drain first.
      if (!retried && missingArrivals === 0) {
        retried = true;
        log(`p99 ${p99} ms is over ${config.stop_p99_ms} ms: repeating the step once`);
        stepIndex -= 1;
        await sleep((config.settle_s ?? 1) * 1000);
        continue;
      }
      log(`p99 ${p99} ms is over ${config.stop_p99_ms} ms: stopping the ramp`);
      break;
    }
    retried = false;
    if (stepIndex + 1 < config.steps.length) await sleep((config.settle_s ?? 1) * 1000);
  }
  closing = true;
  for (const room of rooms) {
    for (const member of room.members) {
      if (!member) continue;
      if (member.socket) member.socket.close();
      if (member.provider) member.provider.destroy();
    }
  }
  return {
    rooms: complete.length,
    connect_failures: connectFailures,
    connect_first_error: firstError,
    connect_s: connectSeconds,
    steps,
    counters,
    error_codes: errorCodes,
  };
}

// ---- capacity --------------------------------------------------------------------------

async function capacity() {
  const timeoutMs = (config.connect_timeout_s ?? 30) * 1000;
  const sockets = [];
  let failures = 0;
  let firstError = null;
  let disconnects = 0;
  let closing = false;
  const levels = [];
  partialState = { levels };
  let nextRoom = 0;
  for (const level of config.levels) {
    const started = now();
    const cpuStart = process.cpuUsage();
    const wanted = Math.min(config.rooms.length, Math.ceil(level / 3));
    const todo = config.rooms.slice(nextRoom, wanted);
    nextRoom = wanted;
    for (let i = 0; i < todo.length; i += config.batch_rooms) {
      const batch = todo.slice(i, i + config.batch_rooms);
      await Promise.all(
        batch.map(async (tokens) => {
          try {
            for (const { socket } of await joinRoom(config.url, tokens, timeoutMs)) {
              socket.on("disconnect", () => {
                if (!closing) disconnects += 1;
              });
              sockets.push(socket);
            }
          } catch (error) {
            failures += 1;
            firstError ??= error.message;
          }
        }),
      );
    }
    const seconds = (now() - started) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    emit({ mark: "connected", level, connected: sockets.length, failures, seconds });
    log(`${sockets.length} connected (${failures} failed) in ${seconds.toFixed(1)} s`);
    await sleep(config.settle_s * 1000);
    const idleCpu = process.cpuUsage();
    const idleStart = now();
    emit({ mark: "idle-start", level });
    await sleep(config.idle_s * 1000);
    emit({ mark: "idle-end", level });
    const idle = process.cpuUsage(idleCpu);
    const idleWall = (now() - idleStart) / 1000;
    levels.push({
      level,
      connected: sockets.length,
      failures,
      connect_s: seconds,
      connect_driver_cpu_pct: (100 * (cpu.user + cpu.system)) / 1e6 / seconds,
      idle_driver_cpu_pct: (100 * (idle.user + idle.system)) / 1e6 / idleWall,
      disconnects_so_far: disconnects,
    });
  }
  closing = true;
  for (const socket of sockets) socket.close();
  return { levels, failures, first_error: firstError, disconnects };
}

async function main() {
  let result;
  if (config.mode === "fanout") result = await fanout();
  else if (config.mode === "capacity") result = await capacity();
  else throw new Error(`unknown mode ${config.mode}`);
  emit({ result });
  // Give stdout a moment to flush, then leave (open handles must not keep us alive).
  setTimeout(() => process.exit(0), 200);
}

main().catch((error) => {
  log(error.stack || String(error));
  emit({ result: { error: String(error), partial: partial() } });
  setTimeout(() => process.exit(1), 200);
});

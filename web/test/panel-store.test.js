// @ts-check
// The panel's sync state machine (static/panel-store.js) with a socket whose every answer
// the test chooses. docs/protocol.md, "Medication panel".

import assert from "node:assert/strict";
import { test } from "node:test";

import { PanelStore } from "../static/panel-store.js";
import { FakeSocket, settle } from "./support/fake-socket.js";
import { MemoryStorage } from "./support/memory-storage.js";
import { settingsFor } from "./support/settings.js";

const PHARMACIST = { id: "p1", role: "pharmacist", display_name: "Pat Pharmacist" };
const CLINICIAN = { id: "c1", role: "clinician", display_name: "Cal Clinician" };

/** @param {string} id @param {Record<string, any>} data @param {Record<string, number>} [versions] */
function medication(id, data, versions = {}) {
  return { id, type: "medication", position: id, data, versions, created_seq: 1, updated_seq: 1 };
}

/**
 * @param {number} seq
 * @param {Record<string, any>} [fields]
 */
function setEvent(seq, fields = {}) {
  return {
    seq,
    op: "set",
    outcome: "applied",
    entity_type: "medication",
    entity_id: "m_1",
    field: "strength",
    actor: { id: CLINICIAN.id, name: "Cal Clinician", role: "clinician" },
    mutation_id: `c1-${seq}`,
    ...fields,
  };
}

/** @param {{socket?: FakeSocket, storage?: MemoryStorage, self?: typeof PHARMACIST, entities?: object[], seq?: number}} [options] */
function makeStore({ socket = new FakeSocket(), storage = new MemoryStorage(), self = PHARMACIST, entities, seq = 1 } = {}) {
  const store = new PanelStore({
    socket,
    self,
    consultId: "consult-1",
    initialPanel: { seq, entities: entities ?? [medication("m_1", { name: "Metformin", strength: "500 mg" }, { strength: 1 })] },
    settings: settingsFor(/** @type {"pharmacist"|"clinician"} */ (self.role)),
    storage,
    retryMs: 20,
  });
  return { store, socket, storage };
}

test("events apply in seq order; one past a gap waits for panel-sync", async () => {
  const { store, socket } = makeStore();
  socket.receive("panel-event", { event: setEvent(2, { new: "750 mg" }), entity: medication("m_1", { name: "Metformin", strength: "750 mg" }, { strength: 2 }) });
  assert.equal(store.seq, 2);
  assert.equal(store.entities.get("m_1").data.strength, "750 mg");

  // seq 4 arrives before 3: held, and the store asks for what it missed.
  socket.receive("panel-event", { event: setEvent(4, { new: "1000 mg" }), entity: medication("m_1", { name: "Metformin", strength: "1000 mg" }, { strength: 4 }) });
  assert.equal(store.seq, 2);
  assert.deepEqual(socket.sent.at(-1), { event: "panel-sync", payload: { since: 2 } });
  await socket.answer("panel-sync", {
    ok: true,
    panel: { seq: 3, entities: [medication("m_1", { name: "Metformin", strength: "900 mg" }, { strength: 3 })] },
    events: [setEvent(3, { new: "900 mg" })],
  });
  // The snapshot brought seq 3; the held event 4 follows it.
  assert.equal(store.seq, 4);
  assert.equal(store.entities.get("m_1").data.strength, "1000 mg");
  store.destroy();
});

test("an event already applied, and an older snapshot, change nothing", () => {
  const { store, socket } = makeStore({ seq: 5 });
  socket.receive("panel-event", { event: setEvent(5, { new: "1 g" }), entity: medication("m_1", { strength: "1 g" }) });
  assert.equal(store.entities.get("m_1").data.strength, "500 mg");
  assert.equal(store.replace({ seq: 4, entities: [] }), false);
  assert.equal(store.entities.size, 1);
  store.destroy();
});

test("mutations go one at a time, each after the previous acknowledgement", async () => {
  const { store, socket } = makeStore();
  const first = store.setField("medication", "m_1", "strength", "750 mg");
  const second = store.setField("medication", "m_1", "how_taken", "twice daily");
  assert.equal(socket.pending.length, 1);
  assert.equal(socket.pending[0].payload.mutation_id, first);
  // strength is compare-and-set (the server's schema): it carries the version shown.
  assert.equal(socket.pending[0].payload.base_version, 1);
  await socket.answer("mutate", {
    ok: true,
    seq: 2,
    event: setEvent(2, { actor: { id: PHARMACIST.id }, mutation_id: first, new: "750 mg" }),
    entity: medication("m_1", { name: "Metformin", strength: "750 mg" }, { strength: 2 }),
  });
  assert.equal(store.seq, 2);
  assert.equal(socket.pending.length, 1);
  assert.equal(socket.pending[0].payload.mutation_id, second);
  assert.equal(store.queueLength, 1);
  store.destroy();
});

test("while offline the queue waits in storage; a new page sends it after joining again", async () => {
  const storage = new MemoryStorage();
  const offline = new FakeSocket({ connected: false });
  const before = makeStore({ socket: offline, storage }).store;
  before.setField("medication", "m_1", "strength", "750 mg");
  before.add("medication", { name: "Lisinopril" });
  assert.equal(offline.sent.length, 0);
  assert.equal(before.queueLength, 2);
  before.destroy();

  // A reload: the same participant's queue comes back from storage.
  const socket = new FakeSocket({ connected: false });
  const { store } = makeStore({ socket, storage });
  assert.equal(store.queueLength, 2);
  socket.connected = true;
  store.onReconnected({ ok: true, panel: { seq: 1, entities: [...store.entities.values()] } });
  await settle();
  assert.deepEqual(
    socket.pending.map((r) => r.payload.op),
    ["set"],
  );
  await socket.answer("mutate", { ok: false, error: { code: "validation", message: "no" } });
  assert.deepEqual(socket.pending.map((r) => r.payload.op), ["add"]);
  store.destroy();
});

test("'not saved yet' keeps the mutation at the head of the queue and sends it again", async () => {
  const { store, socket } = makeStore();
  const id = store.setField("medication", "m_1", "strength", "750 mg");
  await socket.answer("mutate", { ok: false, error: { code: "database_unavailable", message: "later" } });
  assert.equal(store.notSavedYet, true);
  assert.equal(store.queueLength, 1);
  await new Promise((resolve) => setTimeout(resolve, 40)); // the store's retryMs is 20
  assert.equal(socket.pending.length, 1);
  assert.equal(socket.pending[0].payload.mutation_id, id);
  store.destroy();
});

test("a conflict keeps both values; 'use mine' sends mine over their version", async () => {
  const { store, socket } = makeStore();
  const id = store.setField("medication", "m_1", "strength", "750 mg");
  await socket.answer("mutate", {
    ok: false,
    error: { code: "conflict", message: "changed meanwhile" },
    current: { value: "600 mg", version: 7 },
  });
  assert.equal(store.queueLength, 0);
  const [conflict] = store.conflicts;
  assert.equal(conflict.id, id);
  assert.equal(conflict.mine, "750 mg");
  assert.equal(conflict.theirs, "600 mg");
  store.useMine("m_1", "strength");
  const sent = socket.pending[0].payload;
  assert.equal(sent.value, "750 mg");
  assert.equal(sent.base_version, 7);
  assert.equal(sent.override, true);
  assert.equal(store.conflicts.length, 0);
  store.destroy();
});

test("a second edit of a compare-and-set field builds on the version the first produced", async () => {
  const { store, socket } = makeStore();
  const first = store.setField("medication", "m_1", "strength", "750 mg");
  store.setField("medication", "m_1", "strength", "800 mg");
  await socket.answer("mutate", {
    ok: true,
    seq: 2,
    event: setEvent(2, { actor: { id: PHARMACIST.id }, mutation_id: first }),
    entity: medication("m_1", { strength: "750 mg" }, { strength: 2 }),
  });
  assert.equal(socket.pending[0].payload.value, "800 mg");
  assert.equal(socket.pending[0].payload.base_version, 2);
  store.destroy();
});

test("an applied acknowledgement's effects follow it in seq order", async () => {
  const { store, socket } = makeStore();
  const id = store.setField("medication", "m_1", "strength", "750 mg");
  await socket.answer("mutate", {
    ok: true,
    seq: 2,
    event: setEvent(2, { actor: { id: PHARMACIST.id }, mutation_id: id }),
    entity: medication("m_1", { strength: "750 mg", patient_confirmation: "confirmed" }, { strength: 2 }),
    effects: [
      {
        event: { ...setEvent(3, { op: "derived", field: "patient_confirmation", new: "needs-confirming" }), detail: { reason: "confirmation-reset", changed: "strength" } },
        entity: medication("m_1", { strength: "750 mg", patient_confirmation: "needs-confirming" }, { strength: 2 }),
      },
    ],
  });
  assert.equal(store.seq, 3);
  assert.equal(store.entities.get("m_1").data.patient_confirmation, "needs-confirming");
  store.destroy();
});

test("a refused mutation is listed for its author; consult_ended makes the panel read-only", async () => {
  const { store, socket } = makeStore();
  store.setField("medication", "m_1", "strength", "750 mg");
  store.setField("medication", "m_1", "how_taken", "daily");
  await socket.answer("mutate", { ok: false, error: { code: "consult_ended", message: "ended" } });
  assert.equal(store.readOnly, true);
  assert.equal(store.queueLength, 0);
  assert.deepEqual(store.rejected.map((r) => r.code), ["consult_ended", "consult_ended"]);
  assert.equal(store.setField("medication", "m_1", "strength", "1 g"), null);
  store.destroy();
});

test("'hidden' only moves the seq; 'remove' drops an entity no longer shared", () => {
  const { store, socket } = makeStore({ self: CLINICIAN });
  socket.receive("panel-event", { event: { seq: 2, op: "hidden" }, entity: null });
  assert.equal(store.seq, 2);
  assert.ok(store.entities.has("m_1"));
  socket.receive("panel-event", { event: { seq: 3, op: "remove", entity_id: "m_1" }, entity: null });
  assert.equal(store.seq, 3);
  assert.equal(store.entities.has("m_1"), false);
  store.destroy();
});

test("a dropped connection pauses sending until the store is joined again", async () => {
  const { store, socket } = makeStore();
  store.setField("medication", "m_1", "strength", "750 mg");
  await socket.drop();
  assert.equal(store.online, false);
  assert.equal(store.queueLength, 1);
  const sentBefore = socket.sent.length;
  socket.connected = true;
  store.onReconnected({ ok: true, waiting: true }); // back in the waiting room: keep waiting
  await settle();
  assert.equal(socket.sent.length, sentBefore);
  store.onReconnected({ ok: true, panel: { seq: 1, entities: [...store.entities.values()] } });
  await settle();
  assert.equal(socket.sent.length, sentBefore + 1);
  assert.equal(socket.sent.at(-1)?.event, "mutate");
  store.destroy();
});

/**
 * Run `body` as if on a page in `lang` (<html lang>, which i18n.js reads), then restore.
 * @param {string} lang @param {() => Promise<void>} body
 */
async function onPageIn(lang, body) {
  const had = Object.prototype.hasOwnProperty.call(globalThis, "document");
  const before = globalThis.document;
  Object.defineProperty(globalThis, "document", { value: { documentElement: { lang } }, configurable: true, writable: true });
  try {
    await body();
  } finally {
    if (had) globalThis.document = before;
    else delete globalThis.document;
  }
}

test("on a Spanish page, refusals and announcements are in Spanish; on an English page, the server's words", async () => {
  await onPageIn("es", async () => {
    const { store, socket } = makeStore();
    /** @type {string[]} */
    const said = [];
    store.subscribe((message) => {
      if (message.kind === "announce") said.push(message.text);
    });
    store.setField("medication", "m_1", "how_taken", "daily");
    await socket.answer("mutate", { ok: false, error: { code: "forbidden", message: "you may not change how_taken" } });
    store.setField("medication", "m_1", "how_taken", "twice daily");
    await socket.answer("mutate", { ok: false, error: { code: "no_such_code", message: "odd" } });
    assert.deepEqual(store.rejected.map((r) => r.message), ["Usted no puede cambiar esto.", "El servidor rechazó este cambio."]);
    assert.match(said[0], /^No se guardó: .*Usted no puede cambiar esto\.$/);
    store.onReconnected({ ok: true, panel: { seq: 2, entities: [medication("m_1", { name: "Metformin" })] } });
    assert.equal(said.at(-1), "De nuevo en línea. La lista está al día.");
    store.setReadOnly();
    assert.equal(store.readOnlyReason, "Esta consulta ha terminado; la lista ya no se puede cambiar.");
    store.destroy();
  });
  await onPageIn("en", async () => {
    const { store, socket } = makeStore();
    store.setField("medication", "m_1", "how_taken", "daily");
    await socket.answer("mutate", { ok: false, error: { code: "forbidden", message: "you may not change how_taken" } });
    store.setField("medication", "m_1", "how_taken", "twice daily");
    await socket.answer("mutate", { ok: false, error: { code: "no_such_code" } });
    assert.deepEqual(store.rejected.map((r) => r.message), ["you may not change how_taken", "The server refused this change."]);
    store.destroy();
  });
});

test("on a Spanish page, the history's errors are in Spanish", async () => {
  await onPageIn("es", async () => {
    const offline = makeStore({ socket: new FakeSocket({ connected: false }) }).store;
    await assert.rejects(offline.history("m_1"), { code: "offline", message: /^El historial necesita conexión\./ });
    offline.destroy();
    const { store, socket } = makeStore();
    const asked = assert.rejects(store.history("m_1"), { message: "El historial no está disponible." });
    await socket.answer("panel-history", { ok: false, error: { code: "no_such_code", message: "no" } });
    await asked;
    store.destroy();
  });
});

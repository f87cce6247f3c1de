// @ts-check
// The panel's offline queue (static/panel-queue.js): what survives a reload, and what
// happens when storage refuses.

import assert from "node:assert/strict";
import { test } from "node:test";

import { OfflineQueue, StoredList, defaultStorage, storageKey } from "../static/panel-queue.js";
import { MemoryStorage } from "./support/memory-storage.js";

/** @param {string} id */
const item = (id) => ({ mutation: { mutation_id: id, op: "set", entity: "medication" }, label: `change ${id}` });

test("one key per kind, consult and participant", () => {
  assert.equal(storageKey("queue", "c1", "p1"), "mtm-panel-queue:c1:p1");
  assert.notEqual(storageKey("queue", "c1", "p1"), storageKey("queue", "c1", "p2"));
});

test("queued items survive a reload, in order", () => {
  const storage = new MemoryStorage();
  const queue = new OfflineQueue(storage, "c1", "p1");
  queue.push(item("a"));
  queue.push(item("b"));
  const reloaded = new OfflineQueue(storage, "c1", "p1");
  assert.deepEqual(reloaded.items.map((i) => i.mutation.mutation_id), ["a", "b"]);
  assert.equal(reloaded.head()?.mutation.mutation_id, "a");
  // Another participant of the same consult has a queue of their own.
  assert.equal(new OfflineQueue(storage, "c1", "p2").length, 0);
});

test("take removes one mutation by id, once", () => {
  const storage = new MemoryStorage();
  const queue = new OfflineQueue(storage, "c1", "p1");
  queue.push(item("a"));
  queue.push(item("b"));
  assert.equal(queue.has("b"), true);
  assert.equal(queue.take("b")?.label, "change b");
  assert.equal(queue.take("b"), null);
  assert.equal(queue.has("b"), false);
  assert.deepEqual(new OfflineQueue(storage, "c1", "p1").items.map((i) => i.mutation.mutation_id), ["a"]);
});

test("an emptied list leaves nothing in storage", () => {
  const storage = new MemoryStorage();
  const list = new StoredList(storage, "k");
  list.push({ id: 1 });
  assert.notEqual(storage.getItem("k"), null);
  assert.deepEqual(list.clear(), [{ id: 1 }]);
  assert.equal(storage.getItem("k"), null);
});

test("unreadable or other-version data is ignored, not thrown", () => {
  const storage = new MemoryStorage();
  storage.setItem("broken", "{not json");
  storage.setItem("old", JSON.stringify({ v: 0, items: [{ id: 1 }] }));
  assert.deepEqual(new StoredList(storage, "broken").items, []);
  assert.deepEqual(new StoredList(storage, "old").items, []);
});

test("storage that refuses writes: the list keeps working in memory", () => {
  const full = new MemoryStorage();
  full.setItem = () => {
    throw new Error("QuotaExceededError");
  };
  const list = new StoredList(full, "k");
  list.push({ id: 1 });
  assert.equal(list.length, 1);
  assert.equal(new StoredList(null, "k").length, 0);
});

test("without sessionStorage (Node, sandboxed frames) the default storage is null", () => {
  assert.equal(defaultStorage(), null);
});

// @ts-check
// The panel's offline queue: mutations not yet acknowledged by the server, kept in
// sessionStorage so a page reload does not lose them. An item leaves the queue only when
// its acknowledgement arrives (panel-store.js decides that); sending the same
// mutation_id again is safe, the server answers with the first result.
// No DOM and no socket here.

const VERSION = 1;

/**
 * The sessionStorage key of one participant's data in one consult.
 * @param {string} kind @param {string} consultId @param {string} selfId
 */
export function storageKey(kind, consultId, selfId) {
  return `mtm-panel-${kind}:${consultId}:${selfId}`;
}

/**
 * The page's sessionStorage, or null where it cannot be used (privacy modes, sandboxed frames).
 * @returns {Storage | null}
 */
export function defaultStorage() {
  try {
    const storage = globalThis.sessionStorage;
    const probe = "mtm-panel-probe";
    storage.setItem(probe, "1");
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

/**
 * An ordered list of JSON-able items persisted under one key. Falls back to memory when the
 * storage refuses (quota, disabled): the page keeps working, a reload would lose the items.
 * @template T
 */
export class StoredList {
  /** @param {Storage | null} storage @param {string} key */
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
    /** @type {T[]} */
    this.items = this.#load();
  }

  get length() {
    return this.items.length;
  }

  /** @returns {T[]} */
  #load() {
    if (!this.storage) return [];
    try {
      const raw = this.storage.getItem(this.key);
      if (!raw) return [];
      const parsed = JSON.parse(raw);
      return parsed?.v === VERSION && Array.isArray(parsed.items) ? parsed.items : [];
    } catch {
      return [];
    }
  }

  save() {
    if (!this.storage) return;
    try {
      if (this.items.length) {
        this.storage.setItem(this.key, JSON.stringify({ v: VERSION, items: this.items }));
      } else {
        this.storage.removeItem(this.key);
      }
    } catch {
      // Storage full or unavailable: keep the items in memory.
    }
  }

  /** @param {T} item */
  push(item) {
    this.items.push(item);
    this.save();
  }

  /**
   * Remove the items for which `predicate` is true; returns them.
   * @param {(item: T) => boolean} predicate
   * @returns {T[]}
   */
  removeWhere(predicate) {
    const removed = this.items.filter(predicate);
    if (removed.length) {
      this.items = this.items.filter((item) => !predicate(item));
      this.save();
    }
    return removed;
  }

  /** @returns {T[]} the items removed */
  clear() {
    const removed = this.items;
    this.items = [];
    this.save();
    return removed;
  }
}

/**
 * Mutations waiting for an acknowledgement, oldest first. Each item is
 * `{mutation, label}`: the exact object sent as `mutate`, and how a person reads it.
 * @extends {StoredList<import("./panel-types.js").QueueItem>}
 */
export class OfflineQueue extends StoredList {
  /** @param {Storage | null} storage @param {string} consultId @param {string} selfId */
  constructor(storage, consultId, selfId) {
    super(storage, storageKey("queue", consultId, selfId));
  }

  head() {
    return this.items[0] ?? null;
  }

  /** @param {string} mutationId */
  has(mutationId) {
    return this.items.some((item) => item.mutation.mutation_id === mutationId);
  }

  /**
   * Remove one mutation by id; returns the item, or null if it was not queued (any more).
   * @param {string} mutationId
   */
  take(mutationId) {
    const [item] = this.removeWhere((entry) => entry.mutation.mutation_id === mutationId);
    return item ?? null;
  }
}

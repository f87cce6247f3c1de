// @ts-check
// The medication panel's sync state machine (docs/protocol.md, "Medication panel").
// No DOM: panel-view.js renders what this holds. The socket and the storage are injected, so
// it runs in Node too: web/test/panel-store.test.js drives it with a fake socket, and
// web/test/support/panel-driver.js with socket.io-client against a real server.
//
// - State: `seq` and `entities` (Map id → entity), from the join snapshot, then
//   `panel-event`s applied strictly in seq order. A gap holds the event and asks
//   `panel-sync`; a reconnect replaces the state with the fresh join snapshot.
// - Every mutation goes through the offline queue (panel-queue.js): sent one at a time,
//   each waiting for its acknowledgement, and removed only when one arrives. While the
//   socket is down (or connected but not joined again) the queue just waits; a
//   `database_unavailable` answer ("not saved yet") keeps it queued and retries later.
// - Acknowledgements: applied → done; conflict → a prompt entry (theirs / mine);
//   anything else refused → a rejected-notice entry for the author. An applied mutation's
//   acknowledgement carries `effects` (derived changes the server made because of it, with
//   the next seqs): applied after it, in order.
// - Events a patient connection receives may be "hidden" (a seq that carries nothing for
//   this reader: only the seq advances, and its entity, if any, is stored) or "remove" (the
//   entity is no longer shared).
// - Overrides: when someone replaces my value with "use mine", a notice is kept (like the
//   conflicts) until I dismiss it.

import { serverMessage, t } from "./i18n.js";
import { OfflineQueue, StoredList, defaultStorage, storageKey } from "./panel-queue.js";
import {
  compareEntities,
  describeEvent,
  describeMutation,
  entityName,
  fieldWord,
  isCompareAndSet,
  openItems,
  permissions,
  readSettings,
} from "./panel-schema.js";

const ACK_TIMEOUT_MS = 10_000;
const RETRY_MS = 3_000;
const RESYNC_RETRY_MS = 1_000;
const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ID_PREFIX = { medication: "m", problem: "dtp", recommendation: "r", plan_item: "a" };
// Refusals that say "not now" rather than "no": the mutation stays queued for the next join.
const RETRY_LATER = new Set(["not_joined"]);
// "Not saved yet" (the server cannot reach its database): stays queued, sent again in retryMs.
const SAVE_LATER = new Set(["database_unavailable"]);
// Recent events kept to explain a derived change ("because strength changed").
const RECENT_EVENTS = 200;

/** @typedef {import("./panel-types.js").Entity} Entity */
/** @typedef {import("./panel-types.js").PanelEvent} PanelEvent */
/** @typedef {import("./panel-types.js").EventPayload} EventPayload */
/** @typedef {import("./panel-types.js").PanelSnapshot} PanelSnapshot */
/** @typedef {import("./panel-types.js").Mutation} Mutation */
/** @typedef {import("./panel-types.js").MutationResult} MutationResult */
/** @typedef {import("./panel-types.js").QueueItem} QueueItem */
/** @typedef {import("./panel-types.js").PanelSocket} PanelSocket */
/** @typedef {import("./panel-types.js").Settings} Settings */
/** @typedef {import("./panel-types.js").Self} Self */
/** @typedef {{kind: "change"} | {kind: "announce", text: string} | {kind: "event", event: PanelEvent}} StoreMessage */
/**
 * @typedef {object} Conflict  a "changed while you were editing" prompt
 * @property {string} id   the mutation_id of my refused change
 * @property {string} type
 * @property {string} entity_id
 * @property {string} field
 * @property {any} mine
 * @property {any} theirs
 * @property {number | null} version   the version of theirs ("use mine" builds on it)
 * @property {import("./panel-types.js").Actor | null} by
 * @property {string} label
 * @property {string} message
 */
/** @typedef {{id: string, label: string, code: string, message: string}} Rejected */
/**
 * @typedef {object} Override  "<name> replaced your <field> with theirs"
 * @property {string} id
 * @property {number} seq
 * @property {string} type
 * @property {string} entity_id
 * @property {string} field
 * @property {{name: string, role: string}} by
 * @property {any} mine
 * @property {any} theirs
 * @property {string | null} at
 */

export class PanelStore {
  /**
   * @param {object} options
   * @param {PanelSocket} options.socket   socket.io-client Socket (already joined)
   * @param {Self} options.self
   * @param {string} options.consultId
   * @param {PanelSnapshot} [options.initialPanel]
   * @param {Settings} options.settings   the join ack's `settings`: the field rules and this
   *        role's permissions (required; throws when missing)
   * @param {Storage|null} [options.storage]   sessionStorage by default
   * @param {number} [options.ackTimeoutMs]   how long an acknowledgement may take
   * @param {number} [options.retryMs]   when a mutation "not saved yet" is sent again
   */
  constructor({
    socket,
    self,
    consultId,
    initialPanel,
    settings,
    storage = defaultStorage(),
    ackTimeoutMs = ACK_TIMEOUT_MS,
    retryMs = RETRY_MS,
  }) {
    this.socket = socket;
    this.self = self;
    this.role = self?.role ?? "";
    const { schema, may } = readSettings(settings);
    /** The server's field rules (`settings.panel_schema`): see panel-schema.js. */
    this.schema = schema;
    /** What this participant may do: `edit(type, field)`, `create(type)`, `history()`, `decide()`. */
    this.may = permissions(may, schema);
    this.consultId = String(consultId);
    this.ackTimeoutMs = ackTimeoutMs;
    this.retryMs = retryMs;

    this.seq = 0;
    /** @type {Map<string, Entity>} */
    this.entities = new Map();
    /** @type {Map<number, EventPayload>} seq → panel-event payload that arrived past a gap */
    this.held = new Map();
    this.joined = Boolean(socket?.connected);
    this.readOnly = false;
    this.readOnlyReason = "";
    this.waiting = false; // in the waiting room after a reconnect: not in the call yet
    this.notSavedYet = false; // the server answered "not saved yet" (its database is down)
    this.destroyed = false;

    this.queue = new OfflineQueue(storage, this.consultId, self.id);
    /** @type {StoredList<Rejected>} */
    this.rejectedList = new StoredList(storage, storageKey("rejected", this.consultId, self.id));
    /** @type {StoredList<Conflict>} */
    this.conflictList = new StoredList(storage, storageKey("conflicts", this.consultId, self.id));
    // "<name> replaced your <field>": notices for me, kept until dismissed.
    /** @type {StoredList<Override>} */
    this.overrideList = new StoredList(storage, storageKey("overrides", this.consultId, self.id));
    /** @type {Map<number, PanelEvent>} seq → event, the last RECENT_EVENTS applied */
    this.recentEvents = new Map();
    /** @type {Set<string>} own mutations whose panel-event came before the ack: not "sending" */
    this.seenByEvent = new Set();

    this.counter = 0;
    /** @type {object | null} the running flush (a new one replaces it after a disconnect) */
    this.flushRun = null;
    /** @type {object | null} */
    this.syncRun = null;
    this.syncAgain = false;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retryTimer = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.resyncTimer = null;
    /** @type {Set<(message: StoreMessage) => void>} */
    this.listeners = new Set();

    if (initialPanel) this.replace(initialPanel);

    /** @param {EventPayload} payload */
    this.onPanelEvent = (payload) => this.handleEvent(payload);
    this.onDisconnect = () => this.handleDisconnect();
    socket.on("panel-event", this.onPanelEvent);
    socket.on("disconnect", this.onDisconnect);
  }

  // ---- reading ----------------------------------------------------------------------

  /** Connected and joined: mutations and requests may be sent now. */
  get online() {
    return !this.destroyed && this.joined && Boolean(this.socket.connected);
  }

  get queueLength() {
    return this.queue.length;
  }

  get rejected() {
    return this.rejectedList.items;
  }

  get conflicts() {
    return this.conflictList.items;
  }

  get overrides() {
    return this.overrideList.items;
  }

  /**
   * Notices that someone replaced my value of this field with theirs, oldest first.
   * @param {string} entityId @param {string} field
   */
  overridesFor(entityId, field) {
    return this.overrideList.items.filter((o) => o.entity_id === entityId && o.field === field);
  }

  /** What is still open ("waiting for you") for this participant's role (panel-schema.js). */
  openItems() {
    return openItems(this.entities.values(), this.role, this.schema);
  }

  /**
   * The event with this seq, if it arrived recently (to explain a derived change).
   * @param {number | undefined} seq
   */
  eventAt(seq) {
    return this.recentEvents.get(seq) ?? null;
  }

  /**
   * Entities of one type in list order (position, then id, plain string comparison).
   * @param {string} type
   * @returns {Entity[]}
   */
  list(type) {
    const items = [];
    for (const entity of this.entities.values()) if (entity.type === type) items.push(entity);
    return items.sort(compareEntities);
  }

  /** @param {string} entityId @param {string} field @returns {Conflict | null} */
  conflictFor(entityId, field) {
    return this.conflictList.items.find((c) => c.entity_id === entityId && c.field === field) ?? null;
  }

  /**
   * The newest queued value for a field, not yet confirmed: `{value, waiting}` or null.
   * @param {string} entityId @param {string} field
   * @returns {{value: any, waiting: boolean, mutationId: string} | null}
   */
  pendingFor(entityId, field) {
    for (let i = this.queue.items.length - 1; i >= 0; i -= 1) {
      const { mutation } = this.queue.items[i];
      if (mutation.op !== "set" || mutation.entity_id !== entityId || mutation.field !== field) continue;
      if (this.seenByEvent.has(mutation.mutation_id)) return null;
      return { value: mutation.value, waiting: !this.online, mutationId: mutation.mutation_id };
    }
    return null;
  }

  /**
   * Queued additions of `type` that the list does not hold yet.
   * @param {string} type
   * @returns {{entityId: string, value: Record<string, any>, label: string}[]}
   */
  pendingAdds(type) {
    return this.queue.items
      .filter(({ mutation }) => mutation.op === "add" && mutation.entity === type && !this.entities.has(mutation.entity_id))
      .map(({ mutation, label }) => ({ entityId: mutation.entity_id, value: mutation.value ?? {}, label }));
  }

  // ---- notifications ----------------------------------------------------------------

  /**
   * `listener({kind: "change"|"announce"|"event", ...})`; returns an unsubscribe function.
   * @param {(message: StoreMessage) => void} listener
   */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @param {StoreMessage} message */
  emit(message) {
    for (const listener of [...this.listeners]) {
      try {
        listener(message);
      } catch (error) {
        console.error("panel listener failed", error);
      }
    }
  }

  changed() {
    if (!this.destroyed) this.emit({ kind: "change" });
  }

  /** @param {string | null | undefined} text */
  announce(text) {
    if (text && !this.destroyed) this.emit({ kind: "announce", text });
  }

  // ---- sync -------------------------------------------------------------------------

  /**
   * Replace the whole state with a snapshot `{seq, entities}` unless it is older than ours.
   * @param {PanelSnapshot | null | undefined} panel
   */
  replace(panel) {
    if (!panel || !Array.isArray(panel.entities) || !Number.isInteger(panel.seq)) return false;
    if (panel.seq < this.seq) return false;
    this.entities = new Map(panel.entities.filter((e) => e && e.id).map((e) => [e.id, e]));
    this.seq = panel.seq;
    this.drainHeld();
    this.changed();
    return true;
  }

  /** @param {EventPayload} payload */
  handleEvent(payload) {
    if (this.destroyed || !payload?.event) return;
    const { seq } = payload.event;
    if (!Number.isInteger(seq) || seq <= this.seq) return; // already applied
    if (seq === this.seq + 1) {
      this.applyOne(payload.event, payload.entity ?? null);
      this.drainHeld();
      this.changed();
      return;
    }
    // A gap: keep this one, fetch what we missed.
    this.held.set(seq, payload);
    this.resync();
  }

  /** @param {PanelEvent} event @param {Entity | null} entity */
  applyOne(event, entity) {
    // A conflict changes nothing, and a "hidden" seq carries nothing for this reader: both
    // only advance the seq. (A hidden change of a medication's unshared notes still brings
    // the medication as this reader sees it: keep that.)
    this.seq = event.seq;
    if (event.op === "hidden") {
      if (entity?.id) this.entities.set(entity.id, entity);
      return;
    }
    if (event.op === "remove") {
      // No longer shared with this reader.
      if (event.entity_id) this.entities.delete(event.entity_id);
      this.conflictList.removeWhere((c) => c.entity_id === event.entity_id);
      this.emit({ kind: "event", event });
      return;
    }
    if (event.outcome === "applied" && entity?.id) this.entities.set(entity.id, entity);
    this.remember(event);
    const mine = event.actor?.id != null && event.actor.id === this.self.id;
    if (mine && this.queue.has(event.mutation_id)) this.seenByEvent.add(event.mutation_id);
    // The notice about my replaced value says more than the plain change would.
    const overridden = this.noteOverride(event, entity);
    // A derived change is news even to the author of its cause (a reset confirmation).
    if (!overridden && (!mine || event.op === "derived")) {
      this.announce(describeEvent(event, entity, this.role, this.eventAt(event.detail?.cause_seq)));
    }
    this.emit({ kind: "event", event });
  }

  /** @param {PanelEvent} event */
  remember(event) {
    this.recentEvents.set(event.seq, event);
    if (this.recentEvents.size > RECENT_EVENTS) this.recentEvents.delete(this.recentEvents.keys().next().value);
  }

  /**
   * Someone else's "use mine" replaced a value I had set: keep a notice for that field.
   * Returns true when this event is such an override.
   * @param {PanelEvent} event @param {Entity | null} entity
   */
  noteOverride(event, entity) {
    const overrode = event.detail?.overrode;
    if (event.outcome !== "applied" || !overrode?.actor || overrode.actor.id !== this.self.id) return false;
    if (event.actor?.id === this.self.id) return false; // I replaced my own value (another tab)
    const id = `override-${event.seq}`;
    if (this.overrideList.items.some((o) => o.id === id)) return true;
    const notice = {
      id,
      seq: event.seq,
      type: event.entity_type,
      entity_id: event.entity_id,
      field: event.field,
      by: { name: event.actor?.name ?? "", role: event.actor?.role ?? "" },
      mine: overrode.value ?? null,
      theirs: event.new ?? null,
      at: event.at ?? null,
    };
    this.overrideList.push(notice);
    const target = entity ?? this.entities.get(event.entity_id) ?? null;
    const field = fieldWord(notice.type, notice.field, this.role);
    const who = notice.by.name || t("panel.common.someone");
    this.announce(t("panel.store.replaced", { who, field, name: entityName(target) }));
    return true;
  }

  /**
   * Dismiss one override notice (by id), or all of them.
   * @param {string} [id]
   */
  dismissOverride(id) {
    if (id === undefined) this.overrideList.clear();
    else this.overrideList.removeWhere((entry) => entry.id === id);
    this.changed();
  }

  /**
   * Apply acknowledged payloads (`{event, entity}`: the primary, then its effects) in seq
   * order. One past a gap waits in `held` for the broadcast events that fill the gap.
   * @param {EventPayload[]} payloads
   */
  applyAcknowledged(payloads) {
    for (const payload of payloads) {
      const seq = payload?.event?.seq;
      if (!Number.isInteger(seq) || seq <= this.seq) continue;
      // An applied change without its entity cannot be shown: its broadcast brings both.
      if (payload.event.outcome === "applied" && !payload.entity && !["hidden", "remove"].includes(payload.event.op)) {
        continue;
      }
      if (seq === this.seq + 1) this.applyOne(payload.event, payload.entity ?? null);
      else this.held.set(seq, payload);
      this.drainHeld();
    }
  }

  drainHeld() {
    for (const seq of [...this.held.keys()]) if (seq <= this.seq) this.held.delete(seq);
    while (this.held.has(this.seq + 1)) {
      const payload = this.held.get(this.seq + 1);
      this.held.delete(this.seq + 1);
      this.applyOne(payload.event, payload.entity ?? null);
    }
  }

  async resync() {
    if (!this.online) return; // onReconnected brings a fresh snapshot
    if (this.syncRun) {
      this.syncAgain = true;
      return;
    }
    const run = {};
    this.syncRun = run;
    try {
      do {
        this.syncAgain = false;
        const before = this.seq;
        let ack;
        try {
          ack = await this.socket.timeout(this.ackTimeoutMs).emitWithAck("panel-sync", { since: before });
        } catch {
          break; // no answer: the next event or reconnect tries again
        }
        if (this.syncRun !== run) return;
        if (ack?.ok && this.replace(ack.panel)) this.announceMissed(ack.events, before);
      } while (this.syncAgain && this.online);
    } finally {
      if (this.syncRun === run) this.syncRun = null;
    }
    // Still a hole below a held event: ask again shortly rather than stall.
    if (this.held.size && this.online && !this.resyncTimer) {
      this.resyncTimer = setTimeout(() => {
        this.resyncTimer = null;
        if (this.held.size) this.resync();
      }, RESYNC_RETRY_MS);
    }
  }

  /** @param {PanelEvent[] | undefined} events @param {number} before */
  announceMissed(events, before) {
    const missed = (Array.isArray(events) ? events : []).filter((e) => e.seq > before);
    for (const event of missed) {
      this.remember(event);
      this.noteOverride(event, null);
    }
    const theirs = missed.filter(
      (e) => e.outcome === "applied" && e.actor?.id !== this.self.id && e.op !== "hidden" && e.op !== "remove",
    );
    if (theirs.length === 1) {
      this.announce(describeEvent(theirs[0], this.entities.get(theirs[0].entity_id), this.role));
    } else if (theirs.length > 1) {
      this.announce(t("panel.store.missed", { count: theirs.length }));
    }
  }

  handleDisconnect() {
    this.joined = false;
    // In-flight requests belong to the old connection; a new flush may start after rejoining.
    this.flushRun = null;
    this.syncRun = null;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.changed();
  }

  /**
   * After a reconnect and a successful `join` (or the `admitted` event's payload, which has
   * the same shape): take its snapshot, then send the queue. A `{waiting: true}` answer
   * (back in the waiting room) has no panel: stay offline, keep the queue.
   * @param {{ok?: boolean, waiting?: boolean, panel?: PanelSnapshot} | null | undefined} joinAck
   */
  onReconnected(joinAck) {
    if (this.destroyed || !joinAck || joinAck.ok === false) return;
    if (joinAck.waiting) {
      this.joined = false;
      this.waiting = true;
      this.changed();
      return;
    }
    this.waiting = false;
    this.joined = Boolean(this.socket.connected);
    const before = this.seq;
    if (joinAck?.panel && this.replace(joinAck.panel)) {
      let changes = 0;
      for (const entity of this.entities.values()) if (entity.updated_seq > before) changes += 1;
      const key = changes === 0 ? "panel.store.back.none" : changes === 1 ? "panel.store.back.one" : "panel.store.back.other";
      this.announce(t(key, { count: changes }));
    } else {
      this.resync();
    }
    this.changed();
    this.flush();
  }

  // ---- mutations --------------------------------------------------------------------

  newMutationId() {
    this.counter += 1;
    const who = String(this.self.id).replace(/[^A-Za-z0-9_-]/g, "").slice(0, 36) || "p";
    return `${who}-${Date.now().toString(36)}-${this.counter.toString(36)}`;
  }

  /** @param {string} type */
  newEntityId(type) {
    const bytes = new Uint8Array(14);
    globalThis.crypto.getRandomValues(bytes);
    let id = "";
    for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
    return `${ID_PREFIX[type] ?? "x"}_${id}`;
  }

  /**
   * Change one field. For a compare-and-set field, `baseVersion` is `versions[field]` as the
   * person saw it when they started editing (defaults to the version shown now).
   * Returns the mutation_id, or null when the panel is read-only.
   * @param {string} type @param {string} entityId @param {string} field @param {any} value
   * @param {{baseVersion?: number, override?: boolean, source?: string}} [options]
   * @returns {string | null}
   */
  setField(type, entityId, field, value, { baseVersion, override = false, source } = {}) {
    if (this.readOnly || this.destroyed) return null;
    const entity = this.entities.get(entityId);
    /** @type {Mutation} */
    const mutation = {
      mutation_id: this.newMutationId(),
      op: "set",
      entity: type,
      entity_id: entityId,
      field,
      value: value === undefined ? null : value,
    };
    // "Use mine" after a conflict: the server records whose value this replaces.
    if (override) mutation.override = true;
    // Where a reconciled fact comes from (patient, fill history, chart, other).
    if (source) mutation.source = source;
    const compareAndSet = isCompareAndSet(this.schema, type, field);
    if (compareAndSet) {
      mutation.base_version = Number.isInteger(baseVersion)
        ? baseVersion
        : entity?.versions?.[field] ?? entity?.created_seq ?? 0;
    }
    // A second edit of a field while my first is still queued builds on my own value: once
    // the first is applied, this one's base_version becomes the version it produced.
    const rebase =
      compareAndSet &&
      this.queue.items.some(({ mutation: m }) => m.op === "set" && m.entity_id === entityId && m.field === field);
    // A new attempt on a field supersedes its open conflict prompt.
    this.conflictList.removeWhere((c) => c.entity_id === entityId && c.field === field);
    this.enqueue(mutation, describeMutation(mutation, entity, this.role), rebase ? { rebase: true } : {});
    return mutation.mutation_id;
  }

  /**
   * Create an entity; its id is chosen here so it can be edited before the ack.
   * @param {string} type @param {Record<string, any>} value
   * @param {{after?: string | null, source?: string}} [options]
   * @returns {string | null} the new entity's id
   */
  add(type, value, { after, source } = {}) {
    if (this.readOnly || this.destroyed) return null;
    /** @type {Mutation} */
    const mutation = {
      mutation_id: this.newMutationId(),
      op: "add",
      entity: type,
      entity_id: this.newEntityId(type),
      value,
    };
    if (after !== undefined) mutation.after = after;
    if (source) mutation.source = source;
    this.enqueue(mutation, describeMutation(mutation, null, this.role));
    return mutation.entity_id;
  }

  /** @param {Mutation} mutation @param {string} label @param {{rebase?: boolean}} [extra] */
  enqueue(mutation, label, extra = {}) {
    this.queue.push({ ...extra, mutation, label });
    this.changed();
    this.flush();
  }

  /** Send queued mutations in order, one at a time, each after the previous ack. */
  async flush() {
    if (this.flushRun || !this.canSend()) return;
    const run = {};
    this.flushRun = run;
    try {
      while (this.flushRun === run && this.canSend() && this.queue.length) {
        const item = this.queue.head();
        let result;
        try {
          result = await this.socket.timeout(this.ackTimeoutMs).emitWithAck("mutate", item.mutation);
        } catch {
          // No acknowledgement (timed out, or the connection dropped). The mutation stays
          // queued; sending the same mutation_id again is safe.
          if (this.flushRun === run) this.scheduleRetry();
          break;
        }
        if (!this.handleResult(item, result)) break;
      }
    } finally {
      if (this.flushRun === run) this.flushRun = null;
      this.changed();
    }
  }

  canSend() {
    return !this.readOnly && this.online;
  }

  scheduleRetry() {
    if (this.retryTimer || this.destroyed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.flush();
    }, this.retryMs);
  }

  /**
   * Handle one acknowledgement. Returns false when sending should pause.
   * @param {QueueItem} item @param {MutationResult | null | undefined} result
   */
  handleResult(item, result) {
    const id = item.mutation.mutation_id;
    if (result && result.ok === false && RETRY_LATER.has(result.error?.code)) {
      // Connected again but not joined yet: keep it; onReconnected sends it.
      this.joined = false;
      this.changed();
      return false;
    }
    if (result && result.ok === false && SAVE_LATER.has(result.error?.code)) {
      this.notSavedYet = true;
      this.scheduleRetry();
      return false;
    }
    this.notSavedYet = false;
    // Only the first answer for a mutation counts (a repeat send gets the same one).
    if (!this.queue.take(id)) return true;
    this.seenByEvent.delete(id);
    if (!result || typeof result !== "object") {
      this.reject(item, "no_answer", t("panel.store.no_answer"));
    } else if (result.ok) {
      this.rebaseAfter(item.mutation, result.entity);
      const effects = Array.isArray(result.effects) ? result.effects : [];
      this.applyAcknowledged([{ event: result.event, entity: result.entity }, ...effects]);
    } else if (result.error?.code === "conflict") {
      if (result.event && result.seq === this.seq + 1) {
        this.applyOne(result.event, null);
        this.drainHeld();
      }
      this.addConflict(item, result);
    } else {
      const code = result.error?.code ?? "error";
      this.reject(item, code, serverMessage(result.error, t("panel.store.refused")));
      if (code === "consult_ended") this.setReadOnly(t("panel.store.ended"));
    }
    this.changed();
    return true;
  }

  /**
   * My queued follow-up edits of the same field now build on the version mine produced.
   * @param {Mutation} mutation @param {Entity | null | undefined} entity
   */
  rebaseAfter(mutation, entity) {
    if (mutation.op !== "set" || !entity) return;
    const version = entity.versions?.[mutation.field];
    if (!Number.isInteger(version)) return;
    let touched = false;
    for (const later of this.queue.items) {
      const m = later.mutation;
      if (later.rebase && m.entity_id === mutation.entity_id && m.field === mutation.field) {
        m.base_version = version;
        touched = true;
      }
    }
    if (touched) this.queue.save();
  }

  /** @param {QueueItem} item @param {string} code @param {string} message */
  reject(item, code, message) {
    this.rejectedList.push({ id: item.mutation.mutation_id, label: item.label, code, message });
    this.announce(t("panel.store.not_saved", { item: item.label, message }));
  }

  /** @param {QueueItem} item @param {MutationResult} result */
  addConflict(item, result) {
    const { mutation } = item;
    const current = result.current ?? {};
    const entity = current.entity ?? this.entities.get(mutation.entity_id) ?? null;
    /** @type {Conflict} */
    const entry = {
      id: mutation.mutation_id,
      type: mutation.entity,
      entity_id: mutation.entity_id,
      field: mutation.field,
      mine: mutation.value ?? null,
      theirs: current.value ?? null,
      version: Number.isInteger(current.version) ? current.version : null,
      by: entity?.updated_by ?? null,
      label: item.label,
      message: result.error?.message ?? "",
    };
    this.conflictList.removeWhere((c) => c.entity_id === entry.entity_id && c.field === entry.field);
    this.conflictList.push(entry);
    const who = entry.by?.name || t("panel.store.someone_else");
    if (this.role === "patient" && entry.field === "patient_confirmation") {
      // What the patient confirmed changed meanwhile: nothing to choose, just look again.
      this.announce(t("panel.store.changed_while_confirming", { name: entityName(entity) }));
      return;
    }
    const field = fieldWord(entry.type, entry.field, this.role);
    this.announce(t("panel.store.conflict", { name: entityName(entity), field, who }));
  }

  /**
   * Conflict prompt: keep the value now on the server (nothing to send).
   * @param {string} entityId @param {string} field
   */
  keepTheirs(entityId, field) {
    this.conflictList.removeWhere((c) => c.entity_id === entityId && c.field === field);
    this.changed();
  }

  /**
   * Conflict prompt: send my value again on top of theirs (base_version = their version).
   * @param {string} entityId @param {string} field
   */
  useMine(entityId, field) {
    const conflict = this.conflictFor(entityId, field);
    if (!conflict) return null;
    return this.setField(conflict.type, entityId, field, conflict.mine, {
      baseVersion: conflict.version ?? undefined,
      override: true,
    });
  }

  /**
   * Dismiss one rejected-change entry (by mutation id), or all of them.
   * @param {string} [id]
   */
  dismissRejected(id) {
    if (id === undefined) this.rejectedList.clear();
    else this.rejectedList.removeWhere((entry) => entry.id === id);
    this.changed();
  }

  /**
   * The audit trail of one entity, oldest first (pharmacist and clinician).
   * @param {string} entityId
   * @returns {Promise<PanelEvent[]>}
   */
  async history(entityId) {
    // The drawer shows these errors' messages: they are the catalogue's words.
    if (!this.online) throw Object.assign(new Error(t("panel.history.offline")), { code: "offline" });
    const ack = await this.socket.timeout(this.ackTimeoutMs).emitWithAck("panel-history", { entity_id: entityId });
    if (!ack?.ok) {
      const message = serverMessage(ack?.error, t("panel.store.history_unavailable"));
      throw Object.assign(new Error(message), { code: ack?.error?.code });
    }
    return Array.isArray(ack.events) ? ack.events : [];
  }

  /**
   * The consult ended: nothing more can be changed; unsent edits are listed for their author.
   * @param {string} [reason]
   */
  setReadOnly(reason) {
    const text = reason || t("panel.store.ended");
    if (this.readOnly) {
      this.readOnlyReason = text;
      this.changed();
      return;
    }
    this.readOnly = true;
    this.readOnlyReason = text;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const item of this.queue.clear()) {
      this.rejectedList.push({
        id: item.mutation.mutation_id,
        label: item.label,
        code: "consult_ended",
        message: t("panel.store.not_sent_ended"),
      });
    }
    this.seenByEvent.clear();
    this.changed();
  }

  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.off("panel-event", this.onPanelEvent);
    this.socket.off("disconnect", this.onDisconnect);
    clearTimeout(this.retryTimer);
    clearTimeout(this.resyncTimer);
    this.flushRun = null;
    this.syncRun = null;
    this.listeners.clear();
  }
}

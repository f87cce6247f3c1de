// @ts-check
// The live medication panel beside (or below) the video: mountPanel() is its only entry.
//
//   import { mountPanel } from "/static/panel.js";
//   const panel = mountPanel(document.getElementById("side-panel"), {
//     socket, self: ack.self, consultId, initialPanel: ack.panel,
//     settings: ack.settings,   // required: settings.panel_schema (the field rules) and
//                               // settings.may (what this role may do) decide what is offered
//   });
//   panel.onReconnected(joinAck);  // after each reconnect + successful join
//   panel.setReadOnly(reason);     // the consult ended
//   panel.openCounts();            // {toDecide, toConfirm}: what is still open
//   panel.destroy();
//
// panel-store.js holds the sync state machine and the offline queue (panel-queue.js),
// panel-view.js and the row modules it imports the DOM.
// Test hook, only with options.exposeTestHooks (the server's `testing.expose_hooks`):
// window.mtmPanel = {seq, entities (Map id → entity), queueLength, readOnly, ...}.

import { readSettings } from "./panel-schema.js";
import { PanelStore } from "./panel-store.js";
import { PanelView } from "./panel-view.js";

const mounted = new WeakMap();

/**
 * @param {HTMLElement} root  the element the panel fills (the call page's #side-panel)
 * @param {object} options
 * @param {import("./panel-types.js").PanelSocket} options.socket   the connected, joined
 *        socket.io-client socket
 * @param {import("./panel-types.js").Self} options.self   join ack's `self`
 * @param {string} [options.consultId]     keys the offline queue in sessionStorage
 * @param {import("./panel-types.js").PanelSnapshot} [options.initialPanel]   join ack's `panel`
 * @param {import("./panel-types.js").Settings} options.settings   join ack's `settings`:
 *        `panel_schema` (every field rule: choices, transitions, compare-and-set, lengths,
 *        the Action governing each field) and `may` (this role's permissions). Required:
 *        throws an Error when either is missing.
 * @param {Storage|null} [options.storage]   defaults to sessionStorage
 * @param {boolean} [options.exposeTestHooks]   set window.mtmPanel (tests only)
 * @param {Promise<unknown>} [options.showWhen]   the list is drawn once this settles (at
 *        once without it); the store listens from the start, so nothing is missed meanwhile
 */
export function mountPanel(
  root,
  { socket, self, consultId, initialPanel, settings, storage, exposeTestHooks = false, showWhen } = /** @type {any} */ ({}),
) {
  if (!root) throw new TypeError("mountPanel: a root element is required");
  if (!socket || !self?.id) throw new TypeError("mountPanel: socket and self are required");
  readSettings(settings); // throws, naming what is missing, before replacing anything
  mounted.get(root)?.destroy(); // mounting twice on one element replaces the first panel

  const store = new PanelStore({
    socket,
    self,
    consultId: consultId ?? "consult",
    initialPanel: initialPanel ?? { seq: 0, entities: [] },
    settings,
    ...(storage !== undefined ? { storage } : {}),
  });
  let destroyed = false;
  /** @type {PanelView|null} */
  let view = null;
  const show = () => {
    if (!destroyed) view = new PanelView(root, store);
  };
  if (showWhen) showWhen.finally(show);
  else show();

  const hooks = {
    get seq() {
      return store.seq;
    },
    get entities() {
      return store.entities;
    },
    get queueLength() {
      return store.queueLength;
    },
    get readOnly() {
      return store.readOnly;
    },
    get online() {
      return store.online;
    },
    get conflicts() {
      return store.conflicts;
    },
    get rejected() {
      return store.rejected;
    },
    get overrides() {
      return store.overrides;
    },
    /** {toDecide: [ids], toConfirm: [ids]}: what is still open for this role. */
    get openItems() {
      const { toDecide, toConfirm } = store.openItems();
      return { toDecide: toDecide.map((e) => e.id), toConfirm: toConfirm.map((e) => e.id) };
    },
    get destroyed() {
      return destroyed;
    },
  };
  if (exposeTestHooks) /** @type {any} */ (window).mtmPanel = hooks;

  const panel = {
    /** call.js: after a reconnect, once `join` succeeded again; `joinAck.panel` is fresh. */
    onReconnected(joinAck) {
      store.onReconnected(joinAck);
    },
    /** What is still open on the panel: `{toDecide, toConfirm}` counts (the pharmacist's "End consult"). */
    openCounts() {
      const { toDecide, toConfirm } = store.openItems();
      return { toDecide: toDecide.length, toConfirm: toConfirm.length };
    },
    /** The consult ended: no more editing; unsent edits are listed for their author. */
    setReadOnly(reason) {
      store.setReadOnly(reason);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      view?.destroy();
      store.destroy();
      if (mounted.get(root) === panel) mounted.delete(root);
    },
    store,
  };
  mounted.set(root, panel);
  // Edits left in sessionStorage by an earlier page load go out now.
  store.flush();
  return panel;
}

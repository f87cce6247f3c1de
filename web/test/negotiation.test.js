// The mesh's negotiation (web/static/peers.js) against a fake RTCPeerConnection: who makes
// the first offer, what happens when both do, and renegotiation glare.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { Mesh } from "../static/peers.js";
import { FakePeerConnection, FakeTrack, settle } from "./support/fake-rtc.js";

/** A fake track where the mesh takes a browser's. @param {"audio"|"video"} kind @returns {any} */
const fakeTrack = (kind) => new FakeTrack(kind);
/** The fake connection of `page` to `remoteId`. @returns {any} */
const connection = (page, remoteId) => page.mesh.connections.get(remoteId);

/** Pages that relay each other's signals in order, as the server does (asynchronously). */
function makeNetwork() {
  /** @type {Map<string, any>} */
  const pages = new Map();
  /** @type {{from: string, to: string, type: string}[]} */
  const log = [];

  function makePage(id) {
    const tracks = { audio: new FakeTrack("audio"), video: new FakeTrack("video") };
    const page = {
      id,
      /** remote id -> tracks received (camera and microphone) */
      received: new Map(),
      /** remote id -> their screen track, or null */
      screens: new Map(),
      /** every connection this page made, oldest first */
      made: [],
      // Fakes stand in for the browser's media and connection types.
      local: /** @type {any} */ ({ stream: {}, track: (kind) => tracks[kind], screen: null }),
      mesh: /** @type {Mesh} */ (/** @type {unknown} */ (null)),
    };
    page.mesh = new Mesh({
      selfId: id,
      rtcConfig: { iceServers: [] },
      local: page.local,
      sendSignal: ({ to, ...message }) => {
        log.push({ from: id, to, type: message.description?.type ?? "candidate" });
        setTimeout(() => pages.get(to)?.mesh.handleSignal({ from: id, ...message }), 0);
      },
      onTrack: (remoteId, track) => page.received.set(remoteId, [...(page.received.get(remoteId) ?? []), track]),
      onScreen: (remoteId, track) => page.screens.set(remoteId, track),
      onConnectionState: () => {},
      createConnection: (config) => {
        const pc = new FakePeerConnection(config);
        page.made.push(pc);
        return /** @type {any} */ (pc);
      },
    });
    pages.set(id, page);
    return page;
  }
  return { makePage, log, pages };
}

/** Both ends of a pair are connected, stable, and receive the other's camera and microphone. */
function assertMediaBothWays(a, b) {
  for (const [self, other] of [[a, b], [b, a]]) {
    const pc = self.mesh.connections.get(other.id);
    assert.equal(pc.signalingState, "stable", `${self.id} to ${other.id}`);
    assert.equal(pc.connectionState, "connected", `${self.id} to ${other.id}`);
    const kinds = (self.received.get(other.id) ?? []).filter((track) => !track.muted).map((track) => track.kind).sort();
    assert.deepEqual(kinds, ["audio", "video"], `${self.id} hears and sees ${other.id}`);
    assert.ok(self.mesh.liveRemoteVideoTracks(other.id) >= 1);
  }
}

beforeEach(() => {
  FakePeerConnection.made.length = 0;
});

for (const [present, newcomer] of [["p_a", "p_b"], ["p_b", "p_a"]]) {
  test(`the newcomer (${newcomer}) offers and the one present (${present}) only answers`, async () => {
    const { makePage, log } = makeNetwork();
    const old = makePage(present);
    const fresh = makePage(newcomer);
    // The newcomer's join acknowledgement lists the one present; that one hears `participant-joined`.
    fresh.mesh.connect(present, { offer: true });
    old.mesh.connect(newcomer, { offer: false });
    await settle();
    assert.deepEqual(log.filter((entry) => entry.type === "offer").map((entry) => entry.from), [newcomer]);
    assert.deepEqual(log.filter((entry) => entry.type === "answer").map((entry) => entry.from), [present]);
    assertMediaBothWays(old, fresh);
    assert.equal(FakePeerConnection.made.length, 2);
    assert.ok(FakePeerConnection.made.every((pc) => pc.rollbacks === 0));
  });
}

test("the one present sends nothing before the newcomer's offer arrives", async () => {
  const { makePage, log } = makeNetwork();
  const old = makePage("p_a");
  old.mesh.connect("p_b", { offer: false });
  await settle();
  assert.deepEqual(log, []);
  assert.deepEqual(old.made[0].getTransceivers(), []);
  // The newcomer's first signal may even come before `participant-joined`: it is answered.
  const fresh = makePage("p_b");
  fresh.mesh.connect("p_a", { offer: true });
  await settle();
  assertMediaBothWays(old, fresh);
});

test("two first offers (each listed the other): the polite side answers on a fresh connection", async () => {
  const { makePage } = makeNetwork();
  const polite = makePage("p_a"); // "p_a" < "p_b"
  const impolite = makePage("p_b");
  polite.mesh.connect("p_b", { offer: true });
  impolite.mesh.connect("p_a", { offer: true });
  await settle();
  assertMediaBothWays(polite, impolite);
  // No first offer was rolled back (that would mute the polite side's remote tracks).
  assert.ok(FakePeerConnection.made.every((pc) => !pc.firstOfferRolledBack));
  assert.equal(polite.made.length, 2);
  assert.equal(polite.made[0].signalingState, "closed");
  assert.equal(impolite.made.length, 1);
});

test("renegotiation glare (both share a screen at once) is settled by the polite side's rollback", async () => {
  const { makePage } = makeNetwork();
  const polite = makePage("p_a");
  const impolite = makePage("p_b");
  impolite.mesh.connect("p_a", { offer: true });
  polite.mesh.connect("p_b", { offer: false });
  await settle();
  const screens = [polite, impolite].map(() => ({ track: fakeTrack("video"), stream: /** @type {any} */ ({}) }));
  polite.mesh.startScreen(screens[0]);
  impolite.mesh.startScreen(screens[1]);
  await settle();
  assert.equal(connection(polite, "p_b").rollbacks, 1);
  assert.equal(connection(impolite, "p_a").rollbacks, 0);
  assert.ok(polite.screens.get("p_b"), "the polite side sees the other's screen");
  assert.ok(impolite.screens.get("p_a"), "the impolite side sees the other's screen");
  assertMediaBothWays(polite, impolite);
  assert.equal(polite.mesh.liveRemoteVideoTracks("p_b"), 2);
  // Stopping a share renegotiates again; the other side hides it.
  polite.mesh.stopScreen();
  await settle();
  assert.equal(impolite.screens.get("p_a"), null);
});

test("a page that comes back as a new session is met as a newcomer on a new connection", async () => {
  const { makePage, pages } = makeNetwork();
  const old = makePage("p_a");
  const first = makePage("p_b");
  first.mesh.connect("p_a", { offer: true });
  old.mesh.connect("p_b", { offer: false });
  await settle();
  // p_b reloads: its old page is gone; the new one joins and lists p_a in its roster, and
  // p_a, told a new session of p_b joined, drops the old connection (call.js connectOrKeep).
  first.mesh.close();
  pages.delete("p_b");
  const again = makePage("p_b");
  again.mesh.connect("p_a", { offer: true });
  old.mesh.disconnect("p_b");
  old.received.delete("p_b"); // its tile goes with it
  old.mesh.connect("p_b", { offer: false });
  await settle();
  assertMediaBothWays(old, again);
  assert.equal(old.made.length, 2);
});

test("a camera track changed in the call is sent without renegotiating", async () => {
  const { makePage, log } = makeNetwork();
  const a = makePage("p_a");
  const b = makePage("p_b");
  b.mesh.connect("p_a", { offer: true });
  a.mesh.connect("p_b", { offer: false });
  await settle();
  const offers = log.filter((entry) => entry.type === "offer").length;
  const next = fakeTrack("video");
  await a.mesh.setTrack("video", next);
  await settle();
  assert.equal(log.filter((entry) => entry.type === "offer").length, offers);
  const sender = a.mesh.connections.get("p_b").getTransceivers().find((t) => t.sender.track === next);
  assert.ok(sender);
});

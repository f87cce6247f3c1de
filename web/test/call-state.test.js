// The call page's states (web/static/call-state.js) and who it connects to and how
// (web/static/call-roster.js), driven with a real Mesh over fake peer connections.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Roster } from "../static/call-roster.js";
import { CallState } from "../static/call-state.js";
import { Mesh } from "../static/peers.js";
import { FakePeerConnection, FakeTrack, settle } from "./support/fake-rtc.js";

/** @typedef {import("../static/call-state.js").CallStateName} CallStateName */
/** @param {CallStateName[]} states */
const moves = (states) => states;

test("a join goes prejoin, joining, waiting, in-call; a lost connection comes back in", () => {
  const seen = [];
  const state = new CallState((next) => seen.push(next));
  for (const next of moves(["prejoin", "joining", "waiting", "in-call", "reconnecting"])) state.go(next);
  assert.equal(state.inCall, true, "a reconnecting page is still in the call");
  assert.equal(state.waiting, false);
  state.go("in-call");
  state.go("ended");
  assert.deepEqual(state.history, ["prejoin", "joining", "waiting", "in-call", "reconnecting", "in-call", "ended"]);
  assert.deepEqual(seen, state.history);
  assert.equal(state.final, true);
});

test("a page reconnecting from the waiting room is still waiting", () => {
  const state = new CallState();
  for (const next of moves(["prejoin", "joining", "waiting", "reconnecting"])) state.go(next);
  assert.equal(state.waiting, true);
  assert.equal(state.inCall, false);
  state.go("waiting");
  assert.equal(state.waiting, true);
});

test("moves the page cannot make are refused", () => {
  const state = new CallState();
  assert.throws(() => state.go("in-call"), /from idle to in-call/);
  state.go("prejoin");
  assert.throws(() => state.go("reconnecting"), /from prejoin to reconnecting/);
  state.go("joining");
  state.go("in-call");
  state.go("removed");
  assert.throws(() => state.go("joining"), /from removed to joining/);
  assert.deepEqual(state.history, ["prejoin", "joining", "in-call", "removed"]);
});

test("a refused join goes back to the pre-join screen's error state, from where Join works again", () => {
  const state = new CallState();
  for (const next of moves(["prejoin", "joining", "error", "joining", "in-call"])) state.go(next);
  assert.equal(state.state, "in-call");
});

/** Pages with a Roster each, whose signals the "server" relays in order. */
/** Timers the test fires by hand. */
class FakeTimers {
  /** @type {Map<number, {run: () => void, ms: number}>} */
  pending = new Map();
  #next = 1;
  set = (run, ms) => {
    const id = this.#next++;
    this.pending.set(id, { run, ms });
    return id;
  };
  clear = (id) => { this.pending.delete(id); };
  fireAll() {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const { run } of due) run();
  }
}

function makeCall() {
  const pages = new Map();
  function page(id, session) {
    const timers = new FakeTimers();
    const tracks = { audio: new FakeTrack("audio"), video: new FakeTrack("video") };
    const tiles = new Map();
    const announced = [];
    const made = [];
    const mesh = new Mesh({
      selfId: id,
      rtcConfig: {},
      // Fakes stand in for the browser's media and connection types.
      local: /** @type {any} */ ({ stream: {}, track: (kind) => tracks[kind], screen: null }),
      sendSignal: ({ to, ...message }) => setTimeout(() => pages.get(to)?.roster.signal({ from: id, ...message }), 0),
      onTrack: () => {},
      onScreen: () => {},
      onConnectionState: (remoteId) => pages.get(id)?.roster.connectionChanged(remoteId),
      createConnection: (config) => {
        const pc = new FakePeerConnection(config);
        made.push(pc);
        return /** @type {any} */ (pc);
      },
    });
    const roster = new Roster(mesh, {
      upsert: (participant) => tiles.set(participant.id, { ...tiles.get(participant.id), ...participant }),
      remove: (participantId) => tiles.delete(participantId),
      setAway: (participantId, away) => { tiles.get(participantId).away = away; },
      setMedia: (participantId, media) => { tiles.get(participantId).media = media; },
      announce: (text) => announced.push(text),
      nameOf: (participantId) => tiles.get(participantId)?.display_name,
    }, { graceMs: 30_000, timers });
    const entry = { id, session, tiles, announced, made, mesh, roster, timers, public: { id, display_name: id.toUpperCase(), session } };
    pages.set(id, entry);
    return entry;
  }
  return { page, pages };
}

test("the newcomer offers to its roster and the one present answers: both connect", async () => {
  const { page } = makeCall();
  const present = page("p_b", "s1");
  const newcomer = page("p_a", "s2");
  newcomer.roster.enter([present.public]);
  present.roster.joined({ participant: newcomer.public });
  await settle();
  for (const [self, other] of [[present, newcomer], [newcomer, present]]) {
    assert.equal(self.mesh.connections.get(other.id).connectionState, "connected");
    assert.equal(self.made.length, 1);
  }
  assert.deepEqual(present.announced, ["P_A joined."]);
});

test("the same page session back (a reconnect, a server takeover) keeps its connection", async () => {
  const { page } = makeCall();
  const present = page("p_b", "s1");
  const newcomer = page("p_a", "s2");
  newcomer.roster.enter([present.public]);
  present.roster.joined({ participant: newcomer.public });
  await settle();
  const before = present.mesh.connections.get("p_a");
  // The server lost p_a (its instance died): reported disconnected, media still flows.
  present.roster.left({ participant_id: "p_a", reason: "disconnected" });
  assert.ok(present.tiles.has("p_a"));
  // p_a's page rejoins through another instance: its roster lists p_b, whose page hears
  // `participant-joined` again, both with the sessions they know.
  newcomer.roster.enter([present.public]);
  present.roster.joined({ participant: newcomer.public });
  await settle();
  assert.equal(present.mesh.connections.get("p_a"), before);
  assert.equal(present.made.length, 1);
  assert.equal(newcomer.made.length, 1);
  assert.deepEqual(present.announced, [
    "P_A joined.", "P_A's connection dropped. Waiting for them to reconnect…", "P_A is back.",
  ]);
  assert.equal(present.tiles.get("p_a").away, false);
  assert.equal(present.timers.pending.size, 0, "the grace period ended when they came back");
});

test("a page that reloads (a new session) is met anew, and answers as the newcomer's peer", async () => {
  const { page, pages } = makeCall();
  const present = page("p_b", "s1");
  const first = page("p_a", "s2");
  first.roster.enter([present.public]);
  present.roster.joined({ participant: first.public });
  await settle();
  first.roster.close();
  pages.delete("p_a");
  const reloaded = page("p_a", "s3");
  reloaded.roster.enter([present.public]);
  present.roster.joined({ participant: reloaded.public });
  await settle();
  assert.equal(present.made.length, 2);
  assert.equal(present.made[0].signalingState, "closed");
  assert.equal(present.mesh.connections.get("p_a").connectionState, "connected");
  assert.equal(reloaded.mesh.connections.get("p_b").connectionState, "connected");
});

test("a signal that overtakes participant-joined is answered, and the announcement keeps it", async () => {
  const { page } = makeCall();
  const present = page("p_b", "s1");
  const newcomer = page("p_a", "s2");
  newcomer.roster.enter([present.public]); // its offer reaches p_b before p_b hears of p_a
  await settle();
  assert.equal(present.mesh.connections.get("p_a").connectionState, "connected");
  present.roster.joined({ participant: newcomer.public });
  await settle();
  assert.equal(present.made.length, 1);
  assert.equal(present.tiles.get("p_a").display_name, "P_A");
});

test("someone who left for good is removed at once; a disconnected one after the grace period", async () => {
  const { page } = makeCall();
  const present = page("p_b", "s1");
  const newcomer = page("p_a", "s2");
  newcomer.roster.enter([present.public]);
  present.roster.joined({ participant: newcomer.public });
  await settle();
  present.roster.left({ participant_id: "p_a", reason: "disconnected" });
  assert.ok(present.mesh.has("p_a"), "kept while media flows");
  assert.equal(present.tiles.get("p_a").away, true, "shown as reconnecting");
  assert.equal([...present.timers.pending.values()][0].ms, 30_000);
  const pc = /** @type {any} */ (present.mesh.connections.get("p_a"));
  pc.connectionState = "failed";
  pc.onconnectionstatechange();
  assert.equal(present.mesh.has("p_a"), false, "a dead connection is closed");
  assert.ok(present.tiles.has("p_a"), "but the tile stays until the grace period ends");
  assert.ok(!present.announced.includes("P_A left."));
  present.timers.fireAll();
  assert.equal(present.tiles.has("p_a"), false);
  assert.deepEqual(present.announced.at(-1), "P_A left.");
  newcomer.roster.left({ participant_id: "p_b", reason: "left" });
  assert.equal(newcomer.mesh.has("p_b"), false);
  assert.equal(newcomer.tiles.has("p_b"), false);
  assert.deepEqual(newcomer.announced.at(-1), "P_B left.");
  assert.equal(newcomer.timers.pending.size, 0, "a deliberate leave has no grace period");
});

test("back within the grace period as a new page (a reload): a new connection, never 'left'", async () => {
  const { page, pages } = makeCall();
  const present = page("p_b", "s1");
  const first = page("p_a", "s2");
  first.roster.enter([present.public]);
  present.roster.joined({ participant: first.public });
  await settle();
  present.roster.left({ participant_id: "p_a", reason: "disconnected" });
  first.roster.close();
  pages.delete("p_a");
  const reloaded = page("p_a", "s3");
  reloaded.roster.enter([present.public]);
  present.roster.joined({ participant: reloaded.public });
  await settle();
  assert.equal(present.made.length, 2);
  assert.equal(present.mesh.connections.get("p_a").connectionState, "connected");
  assert.notEqual(present.tiles.get("p_a").away, true);
  assert.equal(present.timers.pending.size, 0);
  assert.ok(!present.announced.includes("P_A left."));
  assert.deepEqual(present.announced.at(-1), "P_A is back.");
  present.timers.fireAll();
  assert.ok(present.tiles.has("p_a"), "no late 'left'");
});

test("participant-media reaches a known participant's tile; one for a stranger is ignored", async () => {
  const { page } = makeCall();
  const present = page("p_b", "s1");
  const newcomer = page("p_a", "s2");
  newcomer.roster.enter([{ ...present.public, media: { microphone: "off", camera: "on" } }]);
  present.roster.joined({ participant: newcomer.public });
  await settle();
  assert.deepEqual(newcomer.tiles.get("p_b").media, { microphone: "off", camera: "on" }, "from the roster");
  present.roster.media({ participant_id: "p_a", media: { microphone: "on", camera: "audio-only" } });
  assert.deepEqual(present.tiles.get("p_a").media, { microphone: "on", camera: "audio-only" });
  present.roster.media({ participant_id: "p_zz", media: { microphone: "off", camera: "off" } });
  present.roster.media(/** @type {any} */ ({ participant_id: 7 }));
  assert.equal(present.tiles.has("p_zz"), false);
  assert.deepEqual([...present.tiles.keys()], ["p_a"]);
});

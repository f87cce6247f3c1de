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
function makeCall() {
  const pages = new Map();
  function page(id, session) {
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
      announce: (text) => announced.push(text),
      nameOf: (participantId) => tiles.get(participantId)?.display_name,
    });
    const entry = { id, session, tiles, announced, made, mesh, roster, public: { id, display_name: id.toUpperCase(), session } };
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
  assert.deepEqual(present.announced, ["P_A joined."], "nothing changed for this person");
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

test("someone who left for good is removed; a disconnected one with a dead connection too", async () => {
  const { page } = makeCall();
  const present = page("p_b", "s1");
  const newcomer = page("p_a", "s2");
  newcomer.roster.enter([present.public]);
  present.roster.joined({ participant: newcomer.public });
  await settle();
  present.roster.left({ participant_id: "p_a", reason: "disconnected" });
  assert.ok(present.mesh.has("p_a"), "kept while media flows");
  const pc = /** @type {any} */ (present.mesh.connections.get("p_a"));
  pc.connectionState = "failed";
  pc.onconnectionstatechange();
  assert.equal(present.mesh.has("p_a"), false);
  assert.equal(present.tiles.has("p_a"), false);
  assert.deepEqual(present.announced.at(-1), "P_A left.");
  newcomer.roster.left({ participant_id: "p_b", reason: "left" });
  assert.equal(newcomer.mesh.has("p_b"), false);
});

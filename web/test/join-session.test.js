// The call page's join protocol (web/static/join-session.js) driven over a fake socket:
// what it sends, which state it moves the page to, what it tells the page.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CallState } from "../static/call-state.js";
import { JoinSession } from "../static/join-session.js";

/** A socket.io-client socket the test plays the server for. */
class FakeSocket {
  connected = false;
  active = false;
  /** @type {Map<string, Set<(...args: any[]) => void>>} */
  handlers = new Map();
  /** `emit`s of the client: [event, payload]. @type {[string, any][]} */
  sent = [];
  /** `join`s awaiting their acknowledgement. @type {{payload: any, answer: (ack: any) => void, fail: () => void}[]} */
  joins = [];
  connects = 0;
  disconnects = 0;

  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
  }

  off(event, handler) {
    this.handlers.get(event)?.delete(handler);
  }

  emit(event, payload) {
    this.sent.push([event, payload]);
  }

  connect() {
    this.connects += 1;
    this.active = true;
  }

  disconnect() {
    this.disconnects += 1;
    this.connected = false;
    this.active = false;
  }

  timeout() {
    return {
      emitWithAck: (event, payload) => new Promise((answer, reject) => {
        assert.equal(event, "join");
        this.joins.push({ payload, answer, fail: () => reject(new Error("timeout")) });
      }),
    };
  }

  /** The server sends `event`. */
  serve(event, ...args) {
    for (const handler of [...(this.handlers.get(event) ?? [])]) handler(...args);
  }

  /** The connection is (re)established. */
  up() {
    this.connected = true;
    this.active = true;
    this.serve("connect");
  }

  /** The connection drops; Socket.IO keeps trying. */
  drop() {
    this.connected = false;
    this.serve("disconnect", "transport close");
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const IN_CALL = { ok: true, self: { id: "p_me" }, roster: [], ice: {} };

/** @type {{microphone: "on"|"off", camera: "on"|"off"|"audio-only"}} */
const ON = { microphone: "on", camera: "on" };

function setUp() {
  const socket = new FakeSocket();
  /** @type {{microphone: "on"|"off", camera: "on"|"off"|"audio-only"}} */
  const media = { ...ON };
  const state = new CallState();
  state.go("prejoin");
  /** @type {[string, ...any[]][]} */
  const told = [];
  const tell = (name) => (...args) => told.push([name, ...args]);
  const session = new JoinSession({
    socket,
    callState: state,
    session: "page-1",
    events: {
      idleConnect: tell("idleConnect"),
      trouble: tell("trouble"),
      accepted: tell("accepted"),
      waiting: tell("waiting"),
      inCall: tell("inCall"),
      refused: tell("refused"),
      ended: tell("ended"),
      participantJoined: tell("participantJoined"),
      participantMedia: tell("participantMedia"),
      signal: tell("signal"),
    },
    media: () => ({ ...media }),
  });
  return { socket, state, session, told, media, names: () => told.map(([name]) => name) };
}

test("Join sends one join with the name, the page's session and the consent in the language shown; the ack puts it in the call", async () => {
  const { socket, state, session, told } = setUp();
  socket.up();
  assert.deepEqual(told, [["idleConnect"]], "connected before Join: the network check may run");
  await session.join({ name: "Maria Lopez", consent: "es" });
  assert.equal(state.state, "joining");
  assert.deepEqual(socket.joins.map((join) => join.payload), [
    { display_name: "Maria Lopez", session: "page-1", media: ON, consent: { accepted: true, language: "es" } },
  ]);
  socket.joins[0].answer(IN_CALL);
  await settle();
  assert.equal(state.state, "in-call");
  assert.equal(session.joined, true);
  assert.equal(session.joins, 1);
  assert.deepEqual(told.at(-1), ["inCall", IN_CALL, { reconnected: false }]);
});

test("Join before the socket connects connects it, and the connect sends the join", async () => {
  const { socket, session } = setUp();
  await session.join({ name: "Ana", consent: null });
  assert.equal(socket.connects, 1);
  assert.equal(socket.joins.length, 0);
  socket.up();
  assert.deepEqual(socket.joins.map((join) => join.payload), [{ display_name: "Ana", session: "page-1", media: ON }]);
});

test("the join waits for the camera; a refusal meanwhile sends nothing", async () => {
  const { socket, state, session } = setUp();
  socket.up();
  /** @type {(value?: unknown) => void} */
  let ready = () => {};
  const joining = session.join({ name: "Ana", consent: null, ready: new Promise((resolve) => { ready = resolve; }) });
  await settle();
  assert.equal(socket.joins.length, 0, "not before the camera and microphone are ready");
  session.end("error");
  ready();
  await joining;
  assert.equal(socket.joins.length, 0);
  assert.equal(state.state, "error");
});

test("call events before the acknowledgement are held, then applied in order after it", async () => {
  const { socket, session, names, told } = setUp();
  socket.up();
  await session.join({ name: "Ana", consent: null });
  socket.serve("signal", { from: "p_b", description: { type: "offer", sdp: "x" } });
  socket.serve("participant-joined", { participant: { id: "p_c" } });
  assert.ok(!names().includes("signal"), "no mesh yet to apply it to");
  socket.joins[0].answer(IN_CALL);
  await settle();
  assert.deepEqual(names().slice(-3), ["inCall", "signal", "participantJoined"]);
  socket.serve("signal", { from: "p_b", candidate: null });
  assert.deepEqual(told.at(-1), ["signal", { from: "p_b", candidate: null }], "after the ack: at once");
});

test("held events of a connection that dropped are not applied to the next one", async () => {
  const { socket, session, names } = setUp();
  socket.up();
  await session.join({ name: "Ana", consent: null });
  socket.serve("signal", { from: "p_b", candidate: { candidate: "old" } });
  socket.drop();
  socket.joins[0].fail(); // its ack never comes
  socket.up();
  assert.equal(socket.joins.length, 2, "the join is sent again on the new connection");
  socket.joins[1].answer(IN_CALL);
  await settle();
  assert.ok(!names().includes("signal"));
});

test("a lost connection goes reconnecting, joins again (consent not resent) and is back in the call", async () => {
  const { socket, state, session, told } = setUp();
  socket.up();
  await session.join({ name: "Maria", consent: "es" });
  socket.joins[0].answer(IN_CALL);
  await settle();
  socket.drop();
  assert.equal(state.state, "reconnecting");
  assert.deepEqual(told.at(-1), ["trouble", "Connection lost. Reconnecting…"]);
  assert.equal(state.inCall, true);
  socket.up();
  assert.deepEqual(told.at(-1), ["trouble", null], "the status line is cleared");
  assert.deepEqual(socket.joins[1].payload, { display_name: "Maria", session: "page-1", media: ON });
  socket.joins[1].answer(IN_CALL);
  await settle();
  assert.equal(state.state, "in-call");
  assert.deepEqual(told.at(-1), ["inCall", IN_CALL, { reconnected: true }]);
  assert.equal(session.joins, 2);
  assert.deepEqual(state.history, ["prejoin", "joining", "in-call", "reconnecting", "in-call"]);
});

test("an acknowledgement superseded by a newer join counts for nothing", async () => {
  const { socket, state, session, names } = setUp();
  socket.up();
  await session.join({ name: "Ana", consent: null });
  socket.drop();
  socket.up(); // a second join before the first was answered
  socket.joins[0].answer({ ok: true, waiting: true, self: { id: "p_me" } });
  await settle();
  assert.ok(!names().includes("waiting"));
  assert.equal(state.state, "joining");
  socket.joins[1].answer(IN_CALL);
  await settle();
  assert.equal(state.state, "in-call");
});

test("the waiting room, then admission", async () => {
  const { socket, state, session, told } = setUp();
  socket.up();
  await session.join({ name: "Maria", consent: "es" });
  const waiting = { ok: true, waiting: true, self: { id: "p_me" }, message: "Soon." };
  socket.joins[0].answer(waiting);
  await settle();
  assert.equal(state.state, "waiting");
  assert.deepEqual(told.at(-1), ["waiting", waiting, { again: false }]);
  assert.equal(session.joined, false);
  socket.serve("admitted", { ok: false });
  assert.equal(state.state, "waiting", "a failed admission leaves the patient waiting");
  socket.serve("admitted", IN_CALL);
  assert.equal(state.state, "in-call");
  socket.serve("admitted", IN_CALL);
  assert.deepEqual(state.history, ["prejoin", "joining", "waiting", "in-call"], "admitted once only");
});

test("a refused join goes back to the page's error state and is not sent again", async () => {
  const { socket, state, session, told } = setUp();
  socket.up();
  await session.join({ name: "Ana", consent: null });
  const error = { code: "consent_required", message: "Please accept the consent." };
  socket.joins[0].answer({ ok: false, error });
  await settle();
  assert.deepEqual(told.at(-1), ["refused", error]);
  assert.equal(state.state, "error");
  assert.equal(session.wanted, false);
  socket.drop();
  socket.up();
  assert.equal(socket.joins.length, 1, "a reconnect does not join on its own");
});

test("a join the server does not answer is refused with a timeout, while connected", async () => {
  const { socket, state, session, told } = setUp();
  socket.up();
  await session.join({ name: "Ana", consent: null });
  socket.joins[0].fail();
  await settle();
  assert.equal(told.at(-1)[0], "refused");
  assert.equal(told.at(-1)[1].code, "timeout");
  assert.equal(state.state, "error");
});

test("a join refused because the consult ended ends the page", async () => {
  const { socket, session, told } = setUp();
  socket.up();
  await session.join({ name: "Ana", consent: null });
  socket.joins[0].answer({ ok: false, error: { code: "consult_ended", message: "It ended." } });
  await settle();
  assert.deepEqual(told.at(-1), ["ended", "ended", { title: "The consult has ended", message: "It ended." }]);
});

test("the server's endings are told with their own words; end() closes the socket for good", async () => {
  /** @type {[string, object, import("../static/call-state.js").CallStateName, string][]} */
  const endings = [
    ["denied", { message: "Not today." }, "denied", "You were not let in"],
    ["removed", {}, "removed", "You were removed from the consult"],
    ["replaced", {}, "replaced", "Opened in another window"],
    ["consult-ended", { reason: "Done" }, "ended", "The consult has ended"],
  ];
  for (const [event, payload, state, title] of endings) {
    const { socket, state: callState, session, told } = setUp();
    socket.up();
    await session.join({ name: "Ana", consent: null });
    socket.joins[0].answer(IN_CALL);
    await settle();
    socket.serve(event, payload);
    const [name, endedState, ending] = told.at(-1);
    assert.equal(name, "ended");
    assert.equal(endedState, state);
    assert.equal(ending.title, title);
    if (event === "denied") {
      assert.equal(ending.message, "Your care team could not let you into this consult. Please contact your pharmacy.",
        "the page's own words, in its language, not the server's English");
    }
    if (event === "consult-ended") {
      assert.equal(ending.message, "Reason given: Done");
      assert.equal(ending.keepPanel, true);
    }
    session.end(endedState);
    assert.equal(callState.state, state);
    assert.equal(socket.disconnects, 1);
    socket.serve("disconnect", "io client disconnect");
    socket.serve("signal", { from: "p_b", candidate: null });
    assert.equal(told.at(-1)[0], "ended", "nothing is heard after the end");
    session.end("ended"); // a second ending changes nothing
    assert.equal(callState.state, state);
  }
});

test("a link the server refuses at connect ends the page; a network error only says so", () => {
  const { socket, told } = setUp();
  socket.active = true;
  socket.serve("connect_error", new Error("xhr poll error"));
  assert.deepEqual(told.at(-1), ["trouble", "Cannot reach the server. Trying again…"]);
  socket.active = false;
  socket.serve("connect_error", Object.assign(new Error("refused"), { data: { message: "This link has expired." } }));
  assert.deepEqual(told.at(-1), ["ended", "error", { title: "Cannot join this consult", message: "This link has expired." }]);
});

test("the server closing a joined page's connection ends it; before Join it reconnects", async () => {
  const before = setUp();
  before.socket.up();
  before.socket.serve("disconnect", "io server disconnect");
  assert.equal(before.socket.connects, 1, "not joined: connecting again tells what happened");
  const joined = setUp();
  joined.socket.up();
  await joined.session.join({ name: "Ana", consent: null });
  joined.socket.serve("disconnect", "io server disconnect");
  assert.deepEqual(joined.told.at(-1).slice(0, 2), ["ended", "ended"]);
  assert.equal(joined.told.at(-1)[2].action, "Rejoin");
});

test("the join carries the microphone and camera as they are when it is sent, a reconnect's too", async () => {
  const { socket, session, media } = setUp();
  media.microphone = "off"; // "Join muted" on the pre-join screen
  socket.up();
  await session.join({ name: "Ana", consent: null });
  assert.deepEqual(socket.joins[0].payload.media, { microphone: "off", camera: "on" });
  socket.joins[0].answer(IN_CALL);
  await settle();
  media.camera = "audio-only";
  socket.drop();
  socket.up();
  assert.deepEqual(socket.joins[1].payload.media, { microphone: "off", camera: "audio-only" });
});

test("a change of microphone or camera is sent in the call only; the others' changes wait for the ack", async () => {
  const { socket, session, media, told } = setUp();
  socket.up();
  session.sendMedia();
  assert.deepEqual(socket.sent, [], "not joined: the join will carry it");
  await session.join({ name: "Ana", consent: null });
  const change = { participant_id: "p_lee", media: { microphone: "off", camera: "on" } };
  socket.serve("participant-media", change);
  assert.equal(told.filter(([name]) => name === "participantMedia").length, 0, "held until the ack");
  socket.joins[0].answer(IN_CALL);
  await settle();
  assert.deepEqual(told.filter(([name]) => name === "participantMedia"), [["participantMedia", change]]);
  media.microphone = "off";
  session.sendMedia();
  assert.deepEqual(socket.sent, [["media", { microphone: "off", camera: "on" }]]);
  socket.drop();
  media.camera = "off";
  session.sendMedia();
  assert.equal(socket.sent.length, 1, "reconnecting: the next join carries it");
  socket.up();
  assert.deepEqual(socket.joins[1].payload.media, { microphone: "off", camera: "off" });
});

// Entry point of the call page: camera check before joining, the Socket.IO session
// (docs/protocol.md), and the wiring between the peer mesh, the tiles and the controls.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { openLocalMedia, stopLocalMedia, tracksOf } from "./local-media.js";
import { Mesh } from "./peers.js";
import { summarizePeer } from "./stats.js";
import { TileGrid } from "./tiles.js";

const JOIN_TIMEOUT_MS = 10_000;

const boot = JSON.parse(document.getElementById("boot").textContent);
const byId = (id) => document.getElementById(id);
const ui = {
  app: byId("app"),
  screens: { prejoin: byId("prejoin"), call: byId("call"), notice: byId("notice") },
  preview: byId("preview"),
  mediaMessage: byId("media-message"),
  joinForm: byId("join-form"),
  nameInput: byId("display-name"),
  joinButton: byId("join-button"),
  micButton: byId("mic-button"),
  cameraButton: byId("camera-button"),
  leaveButton: byId("leave-button"),
  noticeTitle: byId("notice-title"),
  noticeMessage: byId("notice-message"),
  noticeAction: byId("notice-action"),
  status: byId("status"),
};

const tiles = new TileGrid(byId("tiles"), () =>
  showStatus("Sound is paused by your browser. Click anywhere or press a key to hear the others."));

// One session = one socket; a mesh lives from one successful `join` to the next.
let socket = null;
let mesh = null;
let joined = false;
let displayName = "";
// {stream, problem} from openLocalMedia, once the person pressed Join.
let local = null;
// Events that arrive between connecting and the join acknowledgement, replayed after it.
let early = [];
// Remote ids we connected to on their first signal, before their `participant-joined`.
const unannounced = new Set();
let joinable = true;
let settleJoin = null;

/** Test and support hook; tests depend on this shape. */
const mtm = {
  state: "prejoin",
  selfId: boot.participant.id,
  get peers() {
    return mesh?.connections ?? new Map();
  },
  async stats() {
    return Promise.all([...mtm.peers].map(([id, pc]) => summarizePeer(id, pc)));
  },
  join,
};
window.mtm = mtm;

const localMedia = openLocalMedia().then(showPreview);

ui.nameInput.value = boot.participant.display_name ?? "";
ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  join();
});
ui.micButton.addEventListener("click", () => toggleLocal(ui.micButton, "audio"));
ui.cameraButton.addEventListener("click", () => toggleLocal(ui.cameraButton, "video"));
ui.leaveButton.addEventListener("click", leave);

// ---- screens, state and status ---------------------------------------------------------

function setState(state) {
  mtm.state = state;
  ui.app.dataset.state = state;
  if (state !== "joining" && settleJoin) {
    settleJoin(state);
    settleJoin = null;
  }
}

function showScreen(name) {
  for (const [key, screen] of Object.entries(ui.screens)) screen.hidden = key !== name;
}

/** The live region: announced to screen readers, shown to everyone. */
function showStatus(text, tone = "info") {
  ui.status.textContent = text;
  ui.status.dataset.tone = tone;
}

/** @param {string|null} action  label of a link that reopens this page, if that can help */
function showNotice(title, message, action) {
  ui.noticeTitle.textContent = title;
  ui.noticeMessage.textContent = message;
  ui.noticeAction.textContent = action ?? "";
  ui.noticeAction.hidden = !action;
  showStatus("");
  showScreen("notice");
  // Moving focus reads the outcome out and keeps keyboard users on the visible screen.
  ui.noticeTitle.focus();
}

// ---- before joining --------------------------------------------------------------------

function showPreview(result) {
  ui.preview.srcObject = result.stream;
  ui.preview.parentElement.dataset.video = tracksOf(result.stream, "video").length ? "on" : "off";
  ui.mediaMessage.textContent = result.problem ?? "";
  ui.mediaMessage.hidden = !result.problem;
  return result;
}

/**
 * What the Join button does. Resolves with the state reached ("in-call", "error", ...).
 * @param {string} [name]  defaults to the name field
 */
async function join(name = ui.nameInput.value) {
  if (!joinable) return mtm.state;
  const trimmed = String(name).trim();
  if (trimmed.length < 1 || trimmed.length > 80) {
    showStatus("Please enter your name (up to 80 characters).", "error");
    ui.nameInput.focus();
    return mtm.state;
  }
  joinable = false;
  displayName = trimmed;
  const settled = new Promise((resolve) => { settleJoin = resolve; });
  setState("joining");
  ui.joinButton.disabled = true;
  showStatus("Joining…");
  local = await localMedia;
  openSocket();
  return settled;
}

function openSocket() {
  // The token travels only in the auth payload, never in a URL.
  socket = io({ transports: ["websocket"], auth: { token: boot.token } });
  socket.on("connect", sendJoin);
  socket.on("connect_error", onConnectError);
  socket.on("disconnect", onDisconnect);
  socket.on("participant-joined", afterJoin(onParticipantJoined));
  socket.on("participant-left", afterJoin(({ participant_id: id }) => onParticipantLeft(id)));
  socket.on("signal", afterJoin(onSignal));
  socket.on("replaced", ({ message } = {}) => finish("replaced", "Opened in another window",
    message || "This consult is now open in another window or tab.", "Use this window instead"));
  socket.on("consult-ended", () => finish("ended", "The consult has ended",
    "Thank you for taking part. You can close this window."));
  socket.on("error", onServerError);
}

// Until the acknowledgement arrives there is no mesh to apply events to; queue them.
function afterJoin(handler) {
  return (payload) => (joined ? handler(payload) : early.push(() => handler(payload)));
}

// Runs on the first connect and again after every automatic reconnect.
async function sendJoin() {
  const current = socket;
  joined = false;
  early = []; // whatever was queued belonged to the previous connection
  let ack;
  try {
    ack = await socket.timeout(JOIN_TIMEOUT_MS).emitWithAck("join", { display_name: displayName });
  } catch {
    ack = { ok: false, error: { message: "The server did not answer. Please try again." } };
  }
  if (current !== socket) return; // left or finished while waiting
  if (ack?.ok) enterCall(ack);
  else joinFailed(ack?.error);
}

function joinFailed(error) {
  const message = error?.message || "Could not join the consult.";
  console.warn("join refused", error);
  closeSocket();
  closeMesh();
  tiles.clear();
  joinable = true;
  ui.joinButton.disabled = false;
  showScreen("prejoin");
  setState("error");
  showStatus(message, "error");
  ui.nameInput.focus();
}

// ---- in the call -----------------------------------------------------------------------

function enterCall(ack) {
  const { stream } = local;
  mtm.selfId = ack.self.id;
  // The others dropped their connections to our previous session: start the mesh afresh.
  closeMesh();
  tiles.removeRemotes();
  mesh = new Mesh({
    selfId: ack.self.id,
    rtcConfig: ack.ice,
    localStream: stream,
    sendSignal,
    onTrack: (remoteId, track) => tiles.addTrack(remoteId, track),
    onConnectionState: (remoteId, state) => tiles.get(remoteId)?.setConnection(tileConnection(state)),
  });
  const selfTile = tiles.upsert(ack.self, { self: true });
  const [videoTrack] = tracksOf(stream, "video");
  if (videoTrack) selfTile.setVideoTrack(videoTrack);
  selfTile.setCameraOff(!videoTrack?.enabled);
  for (const participant of ack.roster) addParticipant(participant);

  joined = true;
  for (const replay of early.splice(0)) replay();

  const wasInCall = mtm.state === "in-call";
  setupControls(stream);
  showScreen("call");
  setState("in-call");
  showStatus(wasInCall ? "Reconnected." : rosterSummary(ack.roster));
  if (!wasInCall) (ui.micButton.disabled ? ui.leaveButton : ui.micButton).focus();
}

// While reconnecting, Socket.IO would buffer emits and deliver them to the next session,
// which has not joined yet and whose peers are new: signals of the old mesh are dropped.
function sendSignal(message) {
  if (joined && socket?.connected) socket.emit("signal", message);
}

function rosterSummary(roster) {
  if (roster.length === 0) return "You joined. Waiting for the others.";
  return `You joined. ${roster.length === 1 ? "1 other person is" : `${roster.length} others are`} here.`;
}

function tileConnection(state) {
  if (state === "connected") return "connected";
  // Shown until the connection recovers (restartIce runs on "failed").
  if (state === "disconnected" || state === "failed") return "reconnecting";
  return "connecting";
}

function addParticipant(participant) {
  tiles.upsert(participant);
  mesh.connect(participant.id);
}

function removeParticipant(participantId) {
  mesh.disconnect(participantId);
  tiles.remove(participantId);
}

function onParticipantJoined({ participant }) {
  if (unannounced.delete(participant.id)) {
    tiles.upsert(participant); // its connection is already being negotiated: keep it
  } else {
    // Someone we already knew joining again is a new session (their link opened in another
    // window, or a reconnect): their side of the old connection is gone.
    removeParticipant(participant.id);
    addParticipant(participant);
  }
  showStatus(`${tiles.get(participant.id).name} joined.`);
}

function onParticipantLeft(participantId) {
  const name = tiles.get(participantId)?.name;
  unannounced.delete(participantId);
  removeParticipant(participantId);
  if (name) showStatus(`${name} left.`);
}

function onSignal(message) {
  // A signal can overtake `participant-joined` (several server instances): connect now, and
  // the name comes with the `participant-joined` that follows.
  if (!mesh.has(message.from)) {
    unannounced.add(message.from);
    addParticipant({ id: message.from });
  }
  mesh.handleSignal(message);
}

function setupControls(stream) {
  ui.micButton.disabled = tracksOf(stream, "audio").length === 0;
  ui.cameraButton.disabled = tracksOf(stream, "video").length === 0;
}

// aria-pressed="true" means "muted" / "camera off"; the button text stays the same.
function toggleLocal(button, kind) {
  const off = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(off));
  for (const track of tracksOf(local.stream, kind)) track.enabled = !off;
  if (kind === "video") tiles.get(mtm.selfId)?.setCameraOff(off);
  showStatus(kind === "audio" ? `Microphone ${off ? "muted" : "on"}.` : `Camera ${off ? "off" : "on"}.`);
}

// ---- leaving and being sent away -------------------------------------------------------

function leave() {
  socket?.emit("leave");
  finish("ended", "You left the consult", "You can rejoin with the same link while the consult is open.",
    "Rejoin");
}

/** End of this page's session: release camera, connections and socket, then explain. */
function finish(state, title, message, action = null) {
  joinable = false;
  closeSocket();
  closeMesh();
  tiles.clear();
  stopLocalMedia(local?.stream);
  ui.preview.srcObject = null;
  setState(state);
  showNotice(title, message, action);
}

function closeMesh() {
  joined = false;
  unannounced.clear();
  mesh?.close();
  mesh = null;
}

function closeSocket() {
  if (!socket) return;
  const closing = socket;
  socket = null;
  // Our own disconnect must not be reported as a lost connection.
  closing.off("disconnect", onDisconnect);
  closing.disconnect();
}

function onConnectError(error) {
  if (socket?.active) {
    // A network problem: Socket.IO keeps retrying on its own.
    showStatus("Cannot reach the server. Trying again…", "error");
    return;
  }
  // The server refused this link (expired, ended, ...): retrying cannot help.
  const message = error.data?.message || error.message || "This link cannot be used.";
  console.warn("connection refused", error.data ?? error);
  finish("error", "Cannot join this consult", message);
}

function onDisconnect(reason) {
  if (reason === "io server disconnect") {
    finish("ended", "You were disconnected", "The server closed the connection.", "Rejoin");
  } else {
    showStatus("Connection lost. Reconnecting…", "error");
  }
}

function onServerError({ event, code, message } = {}) {
  console.warn(`server refused ${event ?? "an event"}: ${code}`, message);
  showStatus(message || "The server refused a request.", "error");
}

// Entry point of the call page: the pre-join check (consent, devices, microphone level,
// network), the waiting room, the Socket.IO session (docs/protocol.md), and the wiring
// between the peer mesh, the tiles, the medication panel and the controls.
// Relative, so that a versioned call.js loads the socket.io client of the same release.
import { io } from "socket.io-client";
import { DevicePickers, LevelMeter, listDevices, playTestSound } from "./devices.js";
import { startCallBridge } from "./embed-bridge.js";
import { Roster } from "./call-roster.js";
import { controlLabel, hasPressedLabel } from "./control-labels.js";
import { COOKIE, pageLanguage, serverMessage, t, tCount } from "./i18n.js";
import { ChatView } from "./chat.js";
import { KnockAlert, notifyIfAllowed, playChime, primeChime } from "./knock.js";
import { SpeakingMonitor } from "./speaking.js";
import { VisitTimer } from "./visit-timer.js";
import { CallState } from "./call-state.js";
import { JoinSession } from "./join-session.js";
import { LocalMedia } from "./local-media.js";
import { ask, WaitingRoomView } from "./lobby.js";
import { NetworkCheckView } from "./network-check.js";
import { Mesh } from "./peers.js";
import { QualityMonitor } from "./quality.js";
import { canShareScreen, pickScreen } from "./screen-share.js";
import { summarizePeer } from "./stats.js";
import { TileGrid } from "./tiles.js";

const JOIN_TIMEOUT_MS = 10_000;
const ACK_TIMEOUT_MS = 10_000;
// The longest what can wait for the call's media waits, after joining, for the connections
// to be set up, the others' video to show and the page to be idle: the medication list
// (drawing it is the page's longest task), the speaking outline and the quality badges
// (both poll every connection's statistics).
const AFTER_MEDIA_MAX_MS = 3_000;
// How long after the page has loaded the automatic network check starts.
const NETWORK_CHECK_AFTER_MS = 1_500;
// A reloaded page goes straight back in (the server lets an admitted patient skip the
// waiting room within its grace period); older marks are forgotten.
const REJOIN_MAX_AGE_MS = 60 * 60 * 1000;
// Poor quality this many samples in a row (2 s each) suggests audio only.
const POOR_SAMPLES_BEFORE_SUGGESTING = 3;

const boot = JSON.parse(document.getElementById("boot").textContent);
const REJOIN_KEY = `mtm:rejoin:${boot.participant.id}`;
// Reconnecting (a lost network, or the server instance holding this consult died and
// another takes over): Socket.IO tries again after 0.5 s, doubling up to 5 s, each wait
// with ±50% jitter so that a consult's pages do not all come back at the same instant.
const RECONNECT = { reconnectionDelay: 500, reconnectionDelayMax: 5000, randomizationFactor: 0.5 };
// This page's session, the same across its reconnects: the others keep their peer
// connections to a page that comes back (docs/protocol.md, `join`).
const PAGE_SESSION = randomSession();
const byId = (id) => document.getElementById(id);
const ui = {
  app: byId("app"),
  screens: { prejoin: byId("prejoin"), waiting: byId("waiting"), call: byId("call"), notice: byId("notice") },
  previews: { prejoin: byId("preview"), waiting: byId("waiting-preview") },
  mediaProblem: byId("media-problem"),
  mediaMessage: byId("media-message"),
  mediaRetry: byId("media-retry"),
  devicesDetails: byId("prejoin-devices"),
  joinForm: byId("join-form"),
  consent: byId("consent"),
  consentText: byId("consent-text"),
  consentCheckbox: byId("consent-checkbox"),
  nameInput: byId("display-name"),
  joinMuted: byId("join-muted"),
  joinCameraOff: byId("join-camera-off"),
  joinButton: byId("join-button"),
  joinHint: byId("join-hint"),
  waitingTitle: byId("waiting-title"),
  waitingMessage: byId("waiting-message"),
  waitingLeave: byId("waiting-leave"),
  call: byId("call"),
  tiles: byId("tiles"),
  endedCard: byId("ended-card"),
  endedTitle: byId("ended-title"),
  endedMessage: byId("ended-message"),
  lobby: byId("lobby"),
  sidePanel: byId("side-panel"),
  suggestion: byId("suggestion"),
  suggestionText: byId("suggestion-text"),
  suggestionAccept: byId("suggestion-accept"),
  suggestionDismiss: byId("suggestion-dismiss"),
  micButton: byId("mic-button"),
  cameraButton: byId("camera-button"),
  switchCameraButton: byId("switch-camera-button"),
  shareButton: byId("share-button"),
  settingsButton: byId("settings-button"),
  endButton: byId("end-button"),
  leaveButton: byId("leave-button"),
  settingsDialog: byId("settings-dialog"),
  audioOnlyToggle: byId("audio-only-toggle"),
  knockSettings: byId("knock-settings"),
  knockSoundToggle: byId("knock-sound-toggle"),
  knockNotifyToggle: byId("knock-notify-toggle"),
  endDialog: byId("end-dialog"),
  leaveDialog: byId("leave-dialog"),
  side: byId("side"),
  sideTitle: byId("side-title"),
  panelToggle: byId("panel-toggle"),
  panelClose: byId("panel-close"),
  endReason: byId("end-reason"),
  endOpen: byId("end-open"),
  removeDialog: byId("remove-dialog"),
  removeTitle: byId("remove-title"),
  noticeTitle: byId("notice-title"),
  noticeMessage: byId("notice-message"),
  noticeAction: byId("notice-action"),
  status: byId("status"),
};

// The medication panel is loaded on its own: a problem there must not stop the call.
const panelModule = import("./panel.js").catch((error) => {
  console.warn("the medication panel could not load", error);
  return null;
});

const tiles = new TileGrid(ui.tiles, () =>
  showStatus(t("status.sound_paused")));
const local = new LocalMedia();
const coarsePointer = matchMedia("(pointer: coarse)");

// ---- session state ----------------------------------------------------------------------

// One socket for the page's life: the network check runs over it before joining, and
// Socket.IO reconnects it after a network drop (we then send `join` again).
let socket = null;
let mesh = null;
/** Who we are connected to, for `mesh` (call-roster.js). @type {Roster|null} */
let roster = null;
let panel = null;
/** The join protocol over `socket` (join-session.js). @type {JoinSession|null} */
let session = null;
let joinable = true;
let displayName = "";
let settings = null; // the in-call acknowledgement's settings
let screen = null; // our screen share {track, stream}
let speakerId = "";
let waitingRoom = [];
let poorStreak = 0;
let suggestionDismissed = false;
let settleJoin = null;
// The page's state (call-state.js); every change shows on the page and goes to the portal.
const callState = new CallState((state) => {
  ui.app.dataset.state = state;
  // The embed SDK's states are those of docs/embed.md: the page starts in "prejoin" (told
  // in `ready`), and a reconnect shows in the status line only.
  if (state !== "reconnecting" && state !== "prejoin") embed?.state(state);
  if (state !== "joining" && settleJoin) {
    settleJoin(state);
    settleJoin = null;
  }
});

const quality = new QualityMonitor(() => mtm.peers, onQuality);
const speaking = new SpeakingMonitor(() => mtm.peers, (remoteId, on) => tiles.get(remoteId)?.setSpeaking(on));
const network = new NetworkCheckView(byId("network-check"), (payload, timeoutMs) =>
  socket.timeout(timeoutMs).emitWithAck("probe", payload));
const speaker = {
  get: () => speakerId,
  async set(id) {
    speakerId = id;
    try {
      await tiles.setSinkId(id);
    } catch {
      showStatus(t("status.speaker_unusable"), "error");
    }
    refreshPickers();
  },
};
const pickerHooks = { local, speaker, onProblem: (text) => showStatus(text, "error") };
const pickers = [
  new DevicePickers({
    video: { select: byId("camera-select") },
    audio: { select: byId("microphone-select") },
    speaker: { select: byId("speaker-select"), field: byId("speaker-field") },
  }, pickerHooks),
  new DevicePickers({
    video: { select: byId("settings-camera-select") },
    audio: { select: byId("settings-microphone-select") },
    speaker: { select: byId("settings-speaker-select"), field: byId("settings-speaker-field") },
  }, pickerHooks),
];
const meters = {
  prejoin: new LevelMeter(byId("mic-level"), byId("mic-level-text")),
  settings: new LevelMeter(byId("settings-mic-level"), byId("settings-mic-level-text")),
};
const lobby = new WaitingRoomView(ui.lobby, { admit, deny, admitAll });
const chat = new ChatView(byId("chat"), sendChat, (message) => {
  if (sheetHidesChat()) {
    unreadChat += 1;
    updateSheetToggle();
    showStatus(t("status.new_chat", { name: message.author.display_name || t("chat.someone") }));
  }
});
let unreadChat = 0;
// The care team's only: a patient's page never shows the visit's time.
const visitTimer = new VisitTimer(byId("visit-timer"), byId("visit-timer-time"));
const knock = new KnockAlert({
  doc: document,
  chime: playChime,
  notify: (text) => { if (ui.knockNotifyToggle.checked) notifyIfAllowed(text); },
  storage: pageStorage(),
});

/** Test hook (only with `testing.expose_hooks`); tests depend on this shape. */
const mtm = {
  get state() {
    return callState.state;
  },
  /** Every state this page went through, oldest first (support and tests). */
  get states() {
    return [...callState.history];
  },
  selfId: boot.participant.id,
  session: PAGE_SESSION,
  /** Accepted `join`s of this page: 1, then one more after each reconnect. */
  get joins() {
    return session?.joins ?? 0;
  },
  get peers() {
    return mesh?.connections ?? new Map();
  },
  async stats() {
    return Promise.all([...mtm.peers].map(([id, pc]) => summarizePeer(id, pc)));
  },
  join,
  /** Who waits to be admitted (pharmacists only): [{id, role, display_name}]. */
  get waitingRoom() {
    return waitingRoom.map((person) => ({ ...person }));
  },
  admit,
  deny,
  admitAll,
  remove: removeFromConsult,
  endConsult,
  /** [{kind, label, id, enabled}] of what this page sends. */
  localTracks: () => local.describeTracks(),
  /** Video tracks `peerId` sends us now, with frames (camera and screen share). */
  async remoteVideoTracks(peerId) {
    return mesh?.liveRemoteVideoTracks(peerId) ?? 0;
  },
  switchCamera,
  shareScreen,
  stopScreenShare,
  setAudioOnly,
  get audioOnly() {
    return local.audioOnly;
  },
  /** {state: "idle"|"running"|"done"|"failed", rttMs, lossPercent, kbps, passed} */
  get networkCheck() {
    return { ...network.result };
  },
  runNetworkCheck: () => network.run(),
  /** {peerId: {level: "good"|"fair"|"poor", rttMs, lossPercent, fps}} */
  quality: () => Object.fromEntries(quality.levels),
  /** Waiting-room chimes played so far. */
  get chimes() {
    return knock.chimes;
  },
};
if (boot.expose_test_hooks === true) window.mtm = mtm;

// Embedded in a clinic's portal (/embed/<token>): the host page's commands and events.
const embed = boot.embed ? startCallBridge(boot.embed, {
  join, leave, admit, deny,
  setEnabled: (kind, on) => Boolean(local.track(kind)) && (local.isEnabled(kind) === on || (toggleLocal(kind), true)),
  // A reconnecting page is still where it was, for the portal (docs/embed.md's states).
  state: () => (callState.inCall ? "in-call" : callState.waiting ? "waiting" : mtm.state), selfId: () => mtm.selfId, role: boot.participant.role, app: ui.app, status: ui.status,
}) : null;

// ---- page start -------------------------------------------------------------------------

setState("prejoin");
showConsentText();
// The embed's set-language changes <html lang>: the consent is then shown in it too.
new MutationObserver(showConsentText).observe(document.documentElement, { attributeFilter: ["lang"] });
ui.nameInput.value = boot.participant.display_name ?? "";
if (matchMedia("(max-width: 40rem), (max-height: 40rem)").matches) ui.devicesDetails.open = false;
updateJoinReadiness();

// The join's phases as User Timing marks ("mtm:…", read by `./run.sh bench join`): the
// first of each only, so reconnects and renegotiations add none.
const marked = new Set();
function markFirst(phase) {
  if (marked.has(phase)) return;
  marked.add(phase);
  performance.mark(`mtm:${phase}`);
}

local.onChange(onLocalTrack);
const localReady = local.open().then((problem) => {
  markFirst("media-ready");
  return afterLocalOpen(problem);
});
navigator.mediaDevices?.addEventListener?.("devicechange", () => {
  refreshPickers();
  updateSwitchCamera();
});

ui.consentCheckbox.addEventListener("change", updateJoinReadiness);
// The language switch: remembered for this site, and the page drawn again in it.
byId("language-select").addEventListener("change", (event) => {
  const lang = /** @type {HTMLSelectElement} */ (event.target).value;
  document.cookie = `${COOKIE}=${encodeURIComponent(lang)}; path=/; max-age=31536000; SameSite=Lax`;
  location.reload();
});
// Join muted or with the camera off: the tracks open disabled, and the join says so.
ui.joinMuted.addEventListener("change", () => setSending("audio", !ui.joinMuted.checked));
ui.joinCameraOff.addEventListener("change", () => setSending("video", !ui.joinCameraOff.checked));
// Closing the tab or going elsewhere is leaving, not a dropped connection: the others are
// told at once rather than seeing "Reconnecting…" for the grace period.
addEventListener("pagehide", (event) => {
  if (!event.persisted && session?.joined) socket.emit("leave");
});
ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  join();
});
ui.mediaRetry.addEventListener("click", async () => {
  ui.mediaRetry.disabled = true;
  afterLocalOpen(await local.open());
  ui.mediaRetry.disabled = false;
});
byId("speaker-test").addEventListener("click", testSpeaker);
byId("settings-speaker-test").addEventListener("click", testSpeaker);
ui.waitingLeave.addEventListener("click", leave);
ui.micButton.addEventListener("click", () => toggleLocal("audio"));
ui.cameraButton.addEventListener("click", () => toggleLocal("video"));
ui.switchCameraButton.addEventListener("click", switchCamera);
ui.shareButton.addEventListener("click", () => (screen ? stopScreenShare() : shareScreen()));
ui.settingsButton.addEventListener("click", openSettings);
ui.settingsDialog.querySelector("[data-dialog-close]").addEventListener("click", () => ui.settingsDialog.close());
ui.settingsDialog.addEventListener("close", () => meters.settings.stop());
ui.audioOnlyToggle.addEventListener("change", () => setAudioOnly(ui.audioOnlyToggle.checked));
ui.knockSoundToggle.checked = knock.soundOn;
ui.knockSoundToggle.addEventListener("change", () => { knock.soundOn = ui.knockSoundToggle.checked; });
ui.knockNotifyToggle.checked = typeof Notification !== "undefined" && Notification.permission === "granted";
ui.knockNotifyToggle.addEventListener("change", async () => {
  if (!ui.knockNotifyToggle.checked) return;
  const allowed = typeof Notification !== "undefined" && await Notification.requestPermission() === "granted";
  ui.knockNotifyToggle.checked = allowed;
  if (!allowed) showStatus(t("call.notifications_blocked"), "error");
});
ui.endButton.addEventListener("click", confirmEnd);
ui.leaveButton.addEventListener("click", confirmLeave);
// On a phone the medication list and the chat are a sheet over the call, opened and closed.
ui.panelToggle.addEventListener("click", () => setSheet(ui.call.dataset.sheet !== "open"));
ui.panelClose.addEventListener("click", () => setSheet(false));
ui.side.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.call.dataset.sheet === "open") setSheet(false);
});
ui.suggestionAccept.addEventListener("click", () => setAudioOnly(true));
ui.suggestionDismiss.addEventListener("click", () => {
  suggestionDismissed = true;
  ui.suggestion.hidden = true;
  ui.micButton.focus();
});
openSocket();
const rejoin = readRejoin();
if (rejoin) {
  ui.nameInput.value = rejoin.name;
  join(rejoin.name, { auto: true });
}

// ---- screens, state and status ----------------------------------------------------------

function setState(state) {
  try {
    callState.go(state);
  } catch (error) {
    console.warn(error); // a late event after the end: the page stays where it is
  }
}

function showScreen(name) {
  for (const [key, section] of Object.entries(ui.screens)) section.hidden = key !== name;
  syncPreviews();
  if (name === "prejoin") meters.prejoin.start();
  else meters.prejoin.stop();
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

// ---- before joining ---------------------------------------------------------------------

function afterLocalOpen(problem) {
  ui.mediaMessage.textContent = problem ?? "";
  ui.mediaProblem.hidden = !problem;
  refreshPickers();
  updateSwitchCamera();
  meters.prejoin.attach(local.track("audio"));
  if (!ui.screens.prejoin.hidden) meters.prejoin.start();
  return problem;
}

/** Every change of what we send: previews, meters, the self tile, and every connection. */
function onLocalTrack(kind, track) {
  if (kind === "video") {
    syncPreviews();
    ui.app.dataset.facing = local.facingMode;
    tiles.get(mtm.selfId)?.setVideoTrack(track);
    refreshSelfTile();
  } else {
    meters.prejoin.attach(track);
    if (ui.settingsDialog.open) meters.settings.attach(track);
  }
  mesh?.setTrack(kind, track).catch((error) => console.warn(`could not send the new ${kind} track`, error));
  updateControls();
}

// Only the preview of the screen shown plays the camera: a hidden <video> still takes every
// camera frame, and in the call the self tile shows it.
function syncPreviews() {
  const track = local.track("video");
  for (const [screen, video] of Object.entries(ui.previews)) {
    const wanted = track && !ui.screens[screen].hidden ? track : null;
    if ((video.srcObject?.getVideoTracks()[0] ?? null) !== wanted) {
      video.srcObject = wanted ? new MediaStream([wanted]) : null;
    }
    video.parentElement.dataset.video = track && local.isEnabled("video") ? "on" : "off";
  }
}

function refreshPickers() {
  for (const picker of pickers) picker.refresh();
}

async function updateSwitchCamera() {
  const { videoinput } = await listDevices();
  // Phones flip between front and back; computers with two cameras go to the next one.
  const useful = videoinput.length > 1 || (coarsePointer.matches && videoinput.length > 0);
  ui.switchCameraButton.hidden = !useful;
}

/**
 * The consent in the page's language (the server sends it in every offered language), marked
 * with its language: the join says which text the person accepted, and it is recorded.
 */
function showConsentText() {
  /** @type {Record<string, string>} */
  const texts = boot.consent?.texts ?? {};
  const language = pageLanguage() in texts ? pageLanguage() : "en";
  ui.consentText.lang = language;
  ui.consentText.textContent = texts[language] ?? "";
}

function updateJoinReadiness() {
  const needsConsent = !ui.consent.hidden && !ui.consentCheckbox.checked;
  ui.joinButton.disabled = !joinable || needsConsent;
  ui.joinHint.textContent = needsConsent ? t("call.consent_hint") : "";
  ui.joinHint.hidden = !needsConsent;
}

async function testSpeaker() {
  try {
    await playTestSound(speakerId);
    showStatus(t("status.test_sound"));
  } catch {
    showStatus(t("status.test_sound_failed"), "error");
  }
}

/**
 * What the Join button does. Resolves with the state reached ("in-call", "waiting", "error", ...).
 * @param {string} [name]  defaults to the name field
 * @param {{auto?: boolean}} [options]  auto: a reload going back in (no consent re-sent)
 */
async function join(name = ui.nameInput.value, { auto = false } = {}) {
  if (!joinable) return mtm.state;
  const trimmed = String(name).trim();
  if (trimmed.length < 1 || trimmed.length > 80) {
    showStatus(t("status.name_needed"), "error");
    ui.nameInput.focus();
    return mtm.state;
  }
  const consentShown = !ui.consent.hidden;
  if (consentShown && !auto && !ui.consentCheckbox.checked) {
    showStatus(t("status.consent_needed"), "error");
    ui.consentCheckbox.focus();
    return mtm.state;
  }
  markFirst("join-clicked");
  primeChime(); // a click: the one moment a page may start its sound
  joinable = false;
  displayName = trimmed;
  const settled = new Promise((resolve) => { settleJoin = resolve; });
  network.cancel();
  // The connections start with the camera and microphone the person checked.
  const consent = consentShown && ui.consentCheckbox.checked ? ui.consentText.lang : null;
  session.join({ name: trimmed, consent, ready: localReady });
  updateJoinReadiness();
  showStatus(t(auto ? "status.going_back" : "status.joining"));
  return settled;
}

function openSocket() {
  // The token travels only in the auth payload, never in a URL. The consult id does, so
  // that a load balancer sends every page of one consult to the same instance (docs/deploy.md).
  socket = io({
    transports: ["websocket"],
    auth: { token: boot.token },
    query: { consult: boot.consult.id },
    ...RECONNECT,
  });
  socket.on("connect", () => markFirst("socket-connected"));
  session = new JoinSession({
    socket,
    callState,
    session: PAGE_SESSION,
    joinTimeoutMs: JOIN_TIMEOUT_MS,
    media: localMedia,
    events: {
      idleConnect: startNetworkCheck,
      trouble: (text) => showStatus(text ?? "", text ? "error" : "info"),
      answered: () => markFirst("join-answered"),
      accepted: rememberRejoin,
      waiting: enterWaiting,
      inCall: enterCall,
      refused: joinFailed,
      ended: (state, { title, message, action = null, keepPanel = false }) => {
        if (state === "error") console.warn("connection refused", message);
        finish(state, title, message, { action, keepPanel });
      },
      participantJoined: (event) => roster?.joined(event),
      participantLeft: (event) => roster?.left(event),
      participantMedia: (event) => roster?.media(event),
      visitStarted: (event) => showVisitTimer(event?.visit_started_at, event?.server_time),
      chatMessage: (message) => chat.add([message], { incoming: true }),
      signal: (message) => {
        if (message?.description) markFirst("description-received");
        roster?.signal(message);
      },
    },
  });
  socket.on("waiting-room", ({ waiting } = {}) => updateWaitingRoom(waiting ?? []));
  socket.on("error", onServerError);
  embed?.watch(socket);
}

// The automatic first check (the button runs it again) starts a moment after the page has
// loaded, so it never competes with loading the page nor with a Join pressed at once (its
// peer connection costs the page's main thread a quarter of a second on a busy phone), and
// only while the person has not joined: joining stops it (join), as the call must not wait
// for it nor share the relay with it.
function startNetworkCheck() {
  if (document.readyState !== "complete") {
    addEventListener("load", () => setTimeout(startNetworkCheck), { once: true });
    return;
  }
  const navigation = /** @type {PerformanceNavigationTiming|undefined} */ (performance.getEntriesByType("navigation")[0]);
  const wait = (navigation?.loadEventEnd ?? 0) + NETWORK_CHECK_AFTER_MS - performance.now();
  if (wait > 0) {
    setTimeout(startNetworkCheck, wait);
    return;
  }
  if ((mtm.state === "prejoin" || mtm.state === "error") && network.result.state === "idle" && socket?.connected) {
    network.run();
  }
}

/** A `join` refused (the session goes to "error" next): back to the pre-join screen. */
function joinFailed(error) {
  const code = error?.code;
  // A timeout is this page's own finding, already in the catalogue's words.
  const message = code === "timeout" && error?.message ? error.message : serverMessage(error, t("call.join_failed"));
  console.warn("join refused", error);
  joinable = true;
  forgetRejoin();
  leaveCallView();
  showScreen("prejoin");
  showStatus(message, "error");
  if (code === "consent_required") {
    // The server has no consent on record: show it (again) and ask for it.
    ui.consent.hidden = false;
    ui.consentCheckbox.checked = false;
    updateJoinReadiness();
    ui.consentCheckbox.focus();
  } else {
    updateJoinReadiness();
    ui.nameInput.focus();
  }
}

// ---- the waiting room (patients) --------------------------------------------------------

/** The session goes to "waiting" next; `again`: it was waiting before a reconnect. */
function enterWaiting(ack, { again }) {
  // Back from the call (a reconnect after the grace period): the others dropped us.
  leaveCallView();
  mtm.selfId = ack.self?.id ?? mtm.selfId;
  ui.waitingMessage.textContent = t("waiting.message");
  showScreen("waiting");
  showStatus(again ? t("status.still_waiting") : "");
  if (!again) ui.waitingTitle.focus();
}

// ---- in the call ------------------------------------------------------------------------

/** The session goes to "in-call" next; `reconnected`: it was in the call before. */
function enterCall(ack, { reconnected: wasInCall }) {
  mtm.selfId = ack.self.id;
  settings = ack.settings ?? { may: {} };
  const may = settings.may ?? {};
  tiles.onRemove = may.manage_participants ? confirmRemove : null;
  if (wasInCall && mesh) {
    // Back after a reconnect, as the same page: media never passed through the server, so
    // the connections that still carry it are kept (the others keep theirs to our session).
    mesh.setRtcConfig(ack.ice);
  } else {
    closeMesh();
    tiles.removeRemotes();
    mesh = new Mesh({
      selfId: ack.self.id,
      rtcConfig: ack.ice,
      local: {
        get stream() {
          return local.stream;
        },
        track: (kind) => local.track(kind),
        get screen() {
          return screen;
        },
      },
      sendSignal,
      onTrack: (remoteId, track) => tiles.addTrack(remoteId, track),
      onScreen: onRemoteScreen,
      onConnectionState,
    });
    roster = new Roster(mesh, {
      upsert: (participant) => tiles.upsert(participant),
      remove: (participantId) => tiles.remove(participantId),
      setAway: (participantId, away) => tiles.get(participantId)?.setAway(away),
      setMedia: (participantId, media) => tiles.get(participantId)?.setMedia(media),
      announce: (text) => showStatus(text),
      nameOf: (participantId) => tiles.get(participantId)?.name,
    }, { graceMs: 1000 * (ack.settings?.reconnect_grace_seconds ?? 30) });
  }
  const selfTile = tiles.upsert(ack.self, { self: true });
  selfTile.setVideoTrack(local.track("video"));
  refreshSelfTile();
  // We are the newcomer to everyone already in the call: we make the first offers.
  roster?.enter(ack.roster ?? []);

  embed?.joined(ack);

  ui.lobby.hidden = true;
  updateWaitingRoom(may.admit ? ack.waiting_room ?? [] : []);
  ui.knockSettings.hidden = !may.admit;
  showVisitTimer(ack.consult?.visit_started_at, ack.server_time);
  chat.open();
  loadChat();
  ui.endButton.hidden = !may.manage_participants;
  ui.shareButton.hidden = !(may.share_screen && canShareScreen);
  updateControls();
  updateSwitchCamera();
  const mediaSettled = callSettled(AFTER_MEDIA_MAX_MS);
  mountPanel(ack, mediaSettled);
  mediaSettled.then(() => {
    if (!callState.inCall) return; // left meanwhile: the monitors stay stopped
    markFirst("media-settled");
    quality.start();
    speaking.start();
  });
  showScreen("call");
  showStatus(wasInCall ? t("status.reconnected") : rosterSummary(ack.roster ?? []));
  if (!wasInCall) {
    (ui.micButton.disabled ? ui.leaveButton : ui.micButton).focus();
    if (network.result.passed === false) {
      suggestAudioOnly(t("call.suggest.weak"));
    }
  }
}

/**
 * @param {any} ack
 * @param {Promise<unknown>} showWhen  the list is drawn once this settles (a first mount)
 */
async function mountPanel(ack, showWhen) {
  const module = await panelModule;
  if (!module?.mountPanel || !session?.joined) return;
  try {
    if (panel) {
      panel.onReconnected(ack);
    } else {
      panel = module.mountPanel(ui.sidePanel, {
        socket, self: ack.self, consultId: ack.consult?.id, initialPanel: ack.panel, settings: ack.settings,
        exposeTestHooks: boot.expose_test_hooks === true,
        showWhen,
      });
    }
  } catch (error) {
    console.warn("the medication panel could not start", error);
  }
}

/**
 * Resolves once no connection of the call is still being set up, every remote camera that
 * is on shows its first frame, and the page is idle, or after `timeoutMs`: what can wait
 * for the media goes after it.
 * @param {number} timeoutMs
 */
function callSettled(timeoutMs) {
  return new Promise((resolve) => {
    const deadline = performance.now() + timeoutMs;
    const settingUp = () => [...(mesh?.connections.values() ?? [])]
      .some(({ connectionState }) => connectionState === "new" || connectionState === "connecting") ||
      tiles.awaitingVideo();
    const check = () => {
      const left = deadline - performance.now();
      if (left <= 0) resolve(undefined);
      else if (settingUp()) setTimeout(check, 100);
      else requestIdleCallback(() => resolve(undefined), { timeout: left });
    };
    check();
  });
}

// While reconnecting, Socket.IO would buffer emits and deliver them to the next session,
// which has not joined yet and whose peers are new: signals of the old mesh are dropped.
function sendSignal(message) {
  if (session?.joined && socket?.connected) socket.emit("signal", message);
}

function rosterSummary(roster) {
  if (roster.length === 0) return t("status.joined_alone");
  return tCount("status.joined", roster.length);
}

function tileConnection(state) {
  if (state === "connected") return "connected";
  // Shown until the connection recovers (restartIce runs on "failed").
  if (state === "disconnected" || state === "failed") return "reconnecting";
  return "connecting";
}

function onConnectionState(remoteId, state) {
  tiles.get(remoteId)?.setConnection(tileConnection(state));
  roster?.connectionChanged(remoteId);
}

function onRemoteScreen(remoteId, track) {
  tiles.setScreen(remoteId, track);
  const name = tiles.get(remoteId)?.name ?? t("chat.someone");
  showStatus(t(track ? "status.sharing" : "status.stopped_sharing", { name }));
}

// ---- controls -----------------------------------------------------------------------------

function updateControls() {
  const audio = local.track("audio");
  const video = local.track("video");
  ui.micButton.disabled = !audio;
  const muted = Boolean(audio) && !local.isEnabled("audio");
  setPressed(ui.micButton, muted);
  ui.cameraButton.disabled = !video;
  setPressed(ui.cameraButton, !video || !local.isEnabled("video"));
  ui.audioOnlyToggle.checked = local.audioOnly;
}

function setPressed(button, pressed) {
  button.setAttribute("aria-pressed", String(pressed));
  if (hasPressedLabel(button.id)) {
    button.textContent = controlLabel(button.id, { language: document.documentElement.lang, pressed });
  }
}

/**
 * What this page's microphone and camera do, as the others are told (`media`).
 * @returns {{microphone: "on"|"off", camera: "on"|"off"|"audio-only"}}
 */
function localMedia() {
  const sending = (kind) => Boolean(local.track(kind)) && local.isEnabled(kind);
  return {
    microphone: sending("audio") ? "on" : "off",
    camera: local.audioOnly ? "audio-only" : sending("video") ? "on" : "off",
  };
}

function refreshSelfTile() {
  tiles.get(mtm.selfId)?.setMedia(localMedia());
}

/** Before joining: what the tracks will do (they may not be open yet). */
function setSending(kind, on) {
  local.setEnabled(kind, on);
  updateControls();
  syncPreviews();
}

// aria-pressed="true" means "muted" / "camera off"; the label says what a press does.
function toggleLocal(kind) {
  const off = local.isEnabled(kind);
  local.setEnabled(kind, !off);
  updateControls();
  refreshSelfTile();
  session?.sendMedia();
  showStatus(t(kind === "audio" ? (off ? "status.mic_muted" : "status.mic_on") : (off ? "status.camera_off" : "status.camera_on")));
}

async function switchCamera() {
  const { videoinput } = await listDevices();
  const problem = await local.switchCamera(videoinput);
  refreshPickers();
  if (problem) showStatus(problem, "error");
  else showStatus(coarsePointer.matches
    ? t(local.facingMode === "environment" ? "status.back_camera" : "status.front_camera")
    : t("status.using_camera", { camera: local.track("video")?.label || t("status.other_camera") }));
  return local.deviceId("video");
}

async function setAudioOnly(on) {
  ui.suggestion.hidden = true;
  const problem = await local.setAudioOnly(Boolean(on));
  updateControls();
  refreshSelfTile();
  session?.sendMedia();
  if (problem) showStatus(problem, "error");
  else if (local.audioOnly) {
    showStatus(t("status.audio_only_on"));
  } else {
    showStatus(t("status.audio_only_off"));
  }
  return local.audioOnly;
}

function suggestAudioOnly(text) {
  if (suggestionDismissed || local.audioOnly || !local.track("video") || !ui.suggestion.hidden) return;
  ui.suggestionText.textContent = text;
  ui.suggestion.hidden = false;
  showStatus(text);
}

function onQuality(remoteId, level) {
  tiles.get(remoteId)?.setQuality(level);
  const anyPoor = [...quality.levels.values()].some((entry) => entry.level === "poor");
  poorStreak = anyPoor ? poorStreak + 1 : 0;
  if (poorStreak >= POOR_SAMPLES_BEFORE_SUGGESTING * Math.max(1, quality.levels.size)) {
    suggestAudioOnly(t("call.suggest.poor"));
  }
}

async function shareScreen() {
  if (screen) return true;
  if (!session?.joined || !settings?.may?.share_screen || !canShareScreen) return false;
  let picked;
  try {
    picked = await pickScreen(() => stopScreenShare());
  } catch (error) {
    console.warn("screen share failed", error);
    showStatus(t("status.share_failed"), "error");
    return false;
  }
  if (!picked) {
    showStatus(t("status.share_cancelled"));
    return false;
  }
  if (!session?.joined) {
    picked.track.stop();
    return false;
  }
  screen = picked;
  mesh.startScreen(screen);
  tiles.setScreen(mtm.selfId, screen.track, { self: true });
  setPressed(ui.shareButton, true); // "Stop sharing"
  showStatus(t("status.you_share"));
  return true;
}

function stopScreenShare({ silent = false } = {}) {
  if (!screen) return false;
  const { track } = screen;
  screen = null;
  track.stop();
  mesh?.stopScreen();
  tiles.setScreen(mtm.selfId, null);
  setPressed(ui.shareButton, false); // "Share screen"
  if (!silent) showStatus(t("status.you_stopped_sharing"));
  return true;
}

function openSettings() {
  refreshPickers();
  updateControls();
  meters.settings.attach(local.track("audio"));
  meters.settings.start();
  ui.settingsDialog.showModal();
}

// ---- managing the consult (pharmacists) ---------------------------------------------------

// After joining (and after each reconnect: what was said meanwhile). Not in the join's
// acknowledgement, so that joining costs no more than it must.
async function loadChat() {
  try {
    const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("chat-history", {});
    if (ack?.ok) chat.add(ack.messages ?? []);
  } catch {
    // The connection dropped meanwhile: the next join loads it again.
  }
}

/**
 * @param {string|null|undefined} startedAt
 * @param {string|null|undefined} serverTime
 */
function showVisitTimer(startedAt, serverTime) {
  if (boot.participant.role !== "patient") visitTimer.start(startedAt, serverTime);
}

/** localStorage, or null where the page may not use it (a sandboxed embed, privacy modes). */
function pageStorage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function updateWaitingRoom(people) {
  const before = new Set(waitingRoom.map((person) => person.id));
  waitingRoom = people;
  if (!settings?.may?.admit) return;
  lobby.render(people);
  const arrived = people.filter((person) => !before.has(person.id));
  knock.update(people.length, arrived.length);
  updateSheetToggle();
  if (arrived.length === 1) showStatus(t("call.waiting.one", { name: arrived[0].display_name || t("chat.someone") }));
  else if (arrived.length > 1) showStatus(t("call.waiting.other", { count: arrived.length }));
}

async function manage(event, payload) {
  try {
    const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (!ack?.ok) showStatus(serverMessage(ack?.error, t("server.refused")), "error");
    return ack ?? { ok: false };
  } catch {
    // Ending the consult closes our connection before its acknowledgement can arrive.
    if (session?.joined) showStatus(t("ending.timeout"), "error");
    return { ok: false };
  }
}

function nameOfWaiting(id) {
  return waitingRoom.find((person) => person.id === id)?.display_name || t("chat.someone");
}

async function admit(id) {
  const name = nameOfWaiting(id);
  const ack = await manage("admit", { participant_id: id });
  if (ack.ok) showStatus(t("call.admitted", { name }));
  return ack;
}

async function deny(id) {
  const name = nameOfWaiting(id);
  const ack = await manage("deny", { participant_id: id });
  if (ack.ok) showStatus(t("call.denied", { name }));
  return ack;
}

async function admitAll() {
  const ack = await manage("admit-all", {});
  if (ack.ok) showStatus(t("call.admitted_all", { count: ack.admitted?.length ?? 0 }));
  return ack;
}

async function removeFromConsult(id) {
  const name = tiles.get(id)?.name ?? t("tile.participant");
  const ack = await manage("remove", { participant_id: id });
  if (ack.ok) showStatus(t("call.removed", { name }));
  return ack;
}

async function confirmRemove(tile) {
  ui.removeTitle.textContent = t("call.remove_title", { name: tile.name });
  if (await ask(ui.removeDialog)) await removeFromConsult(tile.participantId);
}

async function endConsult(reason = "") {
  const trimmed = String(reason).trim().slice(0, 500);
  return manage("end-consult", trimmed ? { reason: trimmed } : {});
}

async function confirmEnd() {
  ui.endReason.value = "";
  showOpenItems();
  if (await ask(ui.endDialog)) await endConsult(ui.endReason.value);
}

/** The end dialog lists what is still open on the medication panel (issue: nothing ends unseen). */
function showOpenItems() {
  const counts = panel?.openCounts?.();
  ui.endOpen.hidden = !counts;
  if (!counts) return;
  const { toDecide, toConfirm } = counts;
  ui.endOpen.dataset.toDecide = String(toDecide);
  ui.endOpen.dataset.toConfirm = String(toConfirm);
  const parts = [];
  if (toDecide) parts.push(tCount("end.open.decide", toDecide));
  if (toConfirm) parts.push(tCount("end.open.confirm", toConfirm));
  ui.endOpen.textContent = parts.length
    ? t("end.open.some", { items: parts.join("; ") })
    : t("end.open.none");
  ui.endOpen.dataset.open = parts.length ? "true" : "false";
}

// ---- leaving and being sent away ----------------------------------------------------------

/** @param {boolean} open */
function setSheet(open) {
  ui.call.dataset.sheet = open ? "open" : "closed";
  ui.panelToggle.setAttribute("aria-expanded", String(open));
  if (open) unreadChat = 0;
  updateSheetToggle();
  (open ? ui.sideTitle : ui.panelToggle).focus();
}

// A phone, with the sheet closed: the chat and the waiting room are out of sight.
function sheetHidesChat() {
  return ui.panelToggle.offsetParent !== null && ui.call.dataset.sheet !== "open";
}

/** The sheet's toggle says what waits inside it. */
function updateSheetToggle() {
  const waiting = settings?.may?.admit ? waitingRoom.length : 0;
  const extras = [
    unreadChat ? t("sheet.new", { count: unreadChat }) : "",
    waiting ? t("sheet.waiting", { count: waiting }) : "",
  ].filter(Boolean).join(", ");
  ui.panelToggle.textContent = extras
    ? t("control.panel-toggle-with", { extras })
    : t("control.panel-toggle");
}

/** @param {string} text */
async function sendChat(text) {
  // While reconnecting, Socket.IO would send it before the join: refused, and confusing.
  if (!session?.joined || !socket?.connected) {
    return { ok: false, error: { message: t("chat.reconnecting") } };
  }
  return socket.timeout(ACK_TIMEOUT_MS).emitWithAck("chat", { text });
}

// On a phone, Leave sits where a thumb lands by mistake: it asks first.
async function confirmLeave() {
  if (!coarsePointer.matches || await ask(ui.leaveDialog)) leave();
}

function leave() {
  socket?.emit("leave");
  finish("ended", t("call.left.title"), t("call.left.message"), { action: t("notice.rejoin") });
}

/**
 * End of this page's session: release camera, connections and socket, then explain.
 * keepPanel: the consult ended; the medication list stays readable beside the message.
 */
function finish(state, title, message, { action = null, keepPanel = false } = {}) {
  joinable = false;
  knock.reset();
  visitTimer.stop();
  chat.close();
  forgetRejoin();
  for (const dialog of [ui.settingsDialog, ui.endDialog, ui.removeDialog, ui.leaveDialog]) if (dialog.open) dialog.close();
  stopScreenShare({ silent: true });
  quality.stop();
  speaking.stop();
  closeMesh();
  tiles.clear();
  local.stop();
  meters.prejoin.close();
  meters.settings.close();
  for (const video of Object.values(ui.previews)) video.srcObject = null;
  ui.suggestion.hidden = true;
  ui.lobby.hidden = true;
  waitingRoom = [];
  if (keepPanel && panel) {
    panel.setReadOnly(t("call.read_only"));
    ui.call.dataset.ended = "true";
    ui.endedTitle.textContent = title;
    ui.endedMessage.textContent = message;
    ui.endedCard.hidden = false;
    showStatus("");
    showScreen("call");
    session.end(state);
    ui.endedTitle.focus();
    return;
  }
  panel?.destroy();
  panel = null;
  session.end(state);
  showNotice(title, message, action);
}

// Back out of the call view (refused re-join, or waiting again): no mesh, no panel.
function leaveCallView() {
  stopScreenShare({ silent: true });
  quality.stop();
  speaking.stop();
  closeMesh();
  tiles.clear();
  panel?.destroy();
  panel = null;
  ui.lobby.hidden = true;
  waitingRoom = [];
  knock.reset();
  visitTimer.stop();
  chat.close();
}

function closeMesh() {
  roster?.close();
  roster = null;
  mesh = null;
}

function onServerError({ event, code, message } = {}) {
  console.warn(`server refused ${event ?? "an event"}: ${code}`, message);
  // The acknowledgement of join, probe and chat already tells the person.
  if (event === "join" || event === "probe" || event === "chat") return;
  // Candidates still on their way to someone who just left: nothing the person can act on.
  if (event === "signal" && code === "unknown_recipient") return;
  showStatus(serverMessage({ code, message }, t("status.refused")), "error");
}

// ---- reload: back into the call -------------------------------------------------------------

function rememberRejoin() {
  try {
    sessionStorage.setItem(REJOIN_KEY, JSON.stringify({ name: displayName, at: Date.now() }));
  } catch {
    // Storage disabled: a reload shows the pre-join screen again.
  }
}

function forgetRejoin() {
  try {
    sessionStorage.removeItem(REJOIN_KEY);
  } catch {
    // Nothing stored.
  }
}

function readRejoin() {
  try {
    const mark = JSON.parse(sessionStorage.getItem(REJOIN_KEY) ?? "null");
    if (mark && typeof mark.name === "string" && Date.now() - mark.at < REJOIN_MAX_AGE_MS) return mark;
  } catch {
    // Unreadable: ignore.
  }
  forgetRejoin();
  return null;
}

function randomSession() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

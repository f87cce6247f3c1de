// Video tiles, one per participant (self included). Every value that came from the server
// is written with textContent, so a display name can never turn into markup.

import { has, t } from "./i18n.js";
import { qualityLabel } from "./quality.js";

/** @param {string} role */
const roleLabel = (role) => (has(`role.${role}`) ? t(`role.${role}`) : role);

function element(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

// First letter or digit of the first two words that have one: "Ana P." -> "AP".
function initials(name) {
  const firsts = name.split(/\s+/).map((word) => word.match(/[\p{L}\p{N}]/u)?.[0]).filter(Boolean);
  return firsts.slice(0, 2).join("").toUpperCase() || "?";
}

class Tile {
  #name = element("span", "tile__name");
  #role = element("span", "tile__role");
  #placeholder = element("p", "tile__placeholder");
  #badge = element("p", "tile__badge");
  #quality = element("p", "tile__quality");
  // What the participant's page says (`media`): shown to everyone, words not colour alone.
  #states = element("p", "tile__states");
  #muted = element("span", "tile__state");
  #cameraNote = element("span", "tile__state");
  #videoTrack = null;
  #cameraOff = false;
  #away = false;
  #connection = "connecting";

  /**
   * @param {string} participantId
   * @param {object} options
   * @param {boolean} options.self
   * @param {((tile: Tile) => void)|null} options.onRemove  shows a Remove button (hosts)
   */
  constructor(participantId, { self, onRemove = null }) {
    this.self = self;
    this.participantId = participantId;
    this.element = element("figure", self ? "tile tile--self" : "tile");
    this.element.dataset.testid = "tile";
    this.element.dataset.participantId = participantId;
    // Self needs no network; remote tiles start "connecting" until ICE says otherwise.
    this.#connection = self ? "connected" : "connecting";
    this.element.dataset.connection = this.#connection;
    this.element.dataset.presence = "here";
    this.element.dataset.speaking = "false";

    this.video = element("video", "tile__video");
    this.video.autoplay = true;
    this.video.playsInline = true;
    // Muted video can always autoplay; remote sound plays through a separate <audio>.
    this.video.muted = true;

    this.#placeholder.setAttribute("aria-hidden", "true");
    const caption = element("figcaption", "tile__caption");
    caption.append(this.#name, this.#role);
    this.#muted.dataset.testid = "muted-indicator";
    this.#muted.textContent = t("tile.muted");
    this.#muted.hidden = true;
    this.#cameraNote.dataset.testid = "camera-indicator";
    this.#cameraNote.hidden = true;
    this.#states.append(this.#muted, this.#cameraNote);
    this.element.append(this.video, this.#placeholder, caption, this.#states, this.#badge);
    this.setMedia({ microphone: "on", camera: "on" });
    this.#refreshBadge();

    if (!self) {
      this.audio = element("audio", "tile__audio");
      this.audio.autoplay = true;
      this.#quality.dataset.testid = "quality-indicator";
      this.#quality.hidden = true;
      this.element.append(this.audio, this.#quality);
    }
    if (onRemove && !self) {
      this.removeButton = element("button", "tile__remove button button--small");
      this.removeButton.type = "button";
      this.removeButton.dataset.testid = "remove-button";
      this.removeButton.textContent = t("tile.remove");
      this.removeButton.addEventListener("click", () => onRemove(this));
      this.element.append(this.removeButton);
    }
  }

  get name() {
    return this.#name.textContent;
  }

  setIdentity({ display_name: displayName, role }) {
    const name = displayName || t("tile.participant");
    this.#name.textContent = name;
    this.#role.textContent = [role ? roleLabel(role) : null, this.self ? t("tile.you") : null]
      .filter(Boolean).join(" · ");
    this.#placeholder.textContent = initials(name);
    this.removeButton?.setAttribute("aria-label", t("tile.remove_label", { name }));
  }

  /** @param {"good"|"fair"|"poor"|null} level  shown as bars and words, never colour alone */
  setQuality(level) {
    this.#quality.hidden = !level;
    if (!level) return;
    this.#quality.dataset.quality = level;
    const bars = element("span", "quality-bars");
    bars.setAttribute("aria-hidden", "true");
    bars.append(element("span", "quality-bars__bar"), element("span", "quality-bars__bar"),
      element("span", "quality-bars__bar"));
    // "Good" on screen; "Good connection" for screen readers and in the tooltip.
    const words = element("span", "tile__quality-text");
    const shown = element("span");
    shown.setAttribute("aria-hidden", "true");
    shown.textContent = qualityLabel(level, { short: true });
    const full = element("span", "visually-hidden");
    full.textContent = qualityLabel(level);
    words.append(shown, full);
    this.#quality.title = qualityLabel(level);
    this.#quality.replaceChildren(bars, words);
  }

  get quality() {
    return this.#quality.hidden ? null : this.#quality.dataset.quality;
  }

  /** Show a video track; a remote track is "muted" while no frames arrive. */
  setVideoTrack(track) {
    if (track === this.#videoTrack) return;
    this.#videoTrack = track;
    this.video.srcObject = track ? new MediaStream([track]) : null;
    track?.addEventListener("mute", () => this.#refreshVideo());
    track?.addEventListener("unmute", () => this.#refreshVideo());
    this.#refreshVideo();
  }

  /** @returns {Promise<void>} rejects when the browser's autoplay policy blocks sound */
  setAudioTrack(track) {
    this.audio.srcObject = new MediaStream([track]);
    return this.audio.play();
  }

  /**
   * What the participant's microphone and camera do (their page says so, docs/protocol.md
   * `media`): "Muted", and for a camera that is off or audio only the initials instead of
   * a picture (never the last frame, frozen), labelled.
   * @param {{microphone?: string, camera?: string}} media
   */
  setMedia({ microphone = "on", camera = "on" } = {}) {
    this.element.dataset.microphone = microphone === "off" ? "off" : "on";
    this.element.dataset.camera = camera;
    this.#muted.hidden = microphone !== "off";
    const note = { off: t("tile.camera_off"), "audio-only": t("tile.audio_only") }[camera] ?? "";
    this.#cameraNote.textContent = note;
    this.#cameraNote.hidden = !note;
    this.#states.hidden = this.#muted.hidden && this.#cameraNote.hidden;
    this.#cameraOff = camera !== "on";
    this.#refreshVideo();
  }

  // The initials placeholder stands in whenever there is no picture to show.
  #refreshVideo() {
    const showing = this.#videoTrack && !this.#videoTrack.muted && !this.#cameraOff && !this.#away;
    this.element.dataset.video = showing ? "on" : "off";
  }

  /** A remote camera that is on and here, whose first frame this tile has not shown yet. */
  get awaitingVideo() {
    return !this.self && !this.#cameraOff && !this.#away &&
      this.video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA;
  }

  /** @param {"connecting"|"connected"|"reconnecting"} state  of our connection to them */
  setConnection(state) {
    this.#connection = state;
    this.#refreshBadge();
  }

  /**
   * Their connection to the server dropped: shown as reconnecting (not as gone) until they
   * are back or the grace period ends.
   * @param {boolean} away
   */
  setAway(away) {
    this.#away = away;
    this.element.dataset.presence = away ? "reconnecting" : "here";
    this.#refreshBadge();
    this.#refreshVideo();
  }

  /** @param {boolean} speaking  outlined (CSS) while they speak */
  setSpeaking(speaking) {
    if ((this.element.dataset.speaking === "true") === speaking) return;
    this.element.dataset.speaking = String(speaking);
  }

  #refreshBadge() {
    const state = this.#away ? "reconnecting" : this.#connection;
    this.element.dataset.connection = state;
    if (this.self) return;
    this.#badge.textContent = { connecting: t("tile.connecting"), reconnecting: t("tile.reconnecting") }[state] ?? "";
  }

  remove() {
    this.video.srcObject = null;
    if (this.audio) this.audio.srcObject = null;
    this.element.remove();
  }
}

/** A shared screen: its own tile, labelled "<name>'s screen", letterboxed rather than cropped. */
class ScreenTile {
  #label = element("span", "tile__name");
  #placeholder = element("p", "tile__placeholder tile__placeholder--screen");
  #track = null;

  constructor(participantId, { self }) {
    this.self = self;
    this.element = element("figure", "tile tile--screen");
    this.element.dataset.testid = "screen-tile";
    this.element.dataset.screenOf = participantId;
    this.element.dataset.connection = "connected";
    this.video = element("video", "tile__video");
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.muted = true;
    this.#placeholder.textContent = t("tile.screen_starting");
    this.#placeholder.setAttribute("aria-hidden", "true");
    const caption = element("figcaption", "tile__caption");
    caption.append(this.#label);
    this.element.append(this.video, this.#placeholder, caption);
    this.element.dataset.video = "off";
  }

  setName(name) {
    this.#label.textContent = this.self
      ? t("tile.your_screen")
      : t("tile.screen_of", { name: name || t("tile.participant") });
  }

  setTrack(track) {
    if (track === this.#track) return;
    this.#track = track;
    this.video.srcObject = new MediaStream([track]);
    const refresh = () => { this.element.dataset.video = track.muted ? "off" : "on"; };
    track.addEventListener("mute", refresh);
    track.addEventListener("unmute", refresh);
    refresh();
  }

  remove() {
    this.video.srcObject = null;
    this.element.remove();
  }
}

/** The grid of tiles; `data-count` on the container lets CSS pick a layout. */
export class TileGrid {
  #tiles = new Map();
  #screens = new Map(); // participantId -> ScreenTile
  #container;
  #onAudioBlocked;
  #sinkId = "";
  /** Set (by hosts) to show a Remove button on remote tiles. */
  onRemove = null;

  /**
   * @param {HTMLElement} container
   * @param {() => void} onAudioBlocked  called when sound needs a click or key press first
   */
  constructor(container, onAudioBlocked) {
    this.#container = container;
    this.#onAudioBlocked = onAudioBlocked;
  }

  /** Play every remote voice through this speaker ("" = the system default). */
  async setSinkId(sinkId) {
    this.#sinkId = sinkId;
    await Promise.all([...this.#tiles.values()].map((tile) => tile.audio?.setSinkId?.(sinkId)));
  }

  /** Show (track) or hide (null) the screen a participant shares. */
  setScreen(participantId, track, { self = false } = {}) {
    let screen = this.#screens.get(participantId);
    if (!track) {
      screen?.remove();
      this.#screens.delete(participantId);
      this.#updateCount();
      return;
    }
    if (!screen) {
      screen = new ScreenTile(participantId, { self });
      this.#screens.set(participantId, screen);
      // Right after its owner's tile: a shared screen reads as theirs.
      const owner = this.#tiles.get(participantId)?.element;
      if (owner) owner.after(screen.element);
      else this.#container.append(screen.element);
      this.#updateCount();
    }
    screen.setName(this.#tiles.get(participantId)?.name);
    screen.setTrack(track);
  }

  get screens() {
    return [...this.#screens.keys()];
  }

  get(participantId) {
    return this.#tiles.get(participantId);
  }

  /** Create or update the tile of {id, display_name, role}. */
  upsert(participant, { self = false } = {}) {
    let tile = this.#tiles.get(participant.id);
    if (!tile) {
      tile = new Tile(participant.id, { self, onRemove: self ? null : this.onRemove });
      if (tile.audio && this.#sinkId) tile.audio.setSinkId?.(this.#sinkId).catch(() => {});
      this.#tiles.set(participant.id, tile);
      // Self always comes first so one's own picture does not jump around.
      if (self) this.#container.prepend(tile.element);
      else this.#container.append(tile.element);
      this.#updateCount();
    }
    tile.setIdentity(participant);
    if (participant.media) tile.setMedia(participant.media);
    this.#screens.get(participant.id)?.setName(tile.name);
    return tile;
  }

  /** Route a remote track to its tile: video on screen, audio to the hidden player. */
  addTrack(participantId, track) {
    const tile = this.#tiles.get(participantId);
    if (!tile) return;
    if (track.kind === "video") {
      tile.setVideoTrack(track);
    } else {
      tile.setAudioTrack(track).catch((error) => {
        if (error.name === "NotAllowedError") this.#resumeAudioOnGesture();
      });
    }
  }

  // Browsers only start sound after the person interacted with the page; retry then.
  #resumeAudioOnGesture() {
    this.#onAudioBlocked();
    const resume = () => {
      for (const tile of this.#tiles.values()) tile.audio?.play().catch(() => {});
    };
    document.addEventListener("pointerdown", resume, { once: true });
    document.addEventListener("keydown", resume, { once: true });
  }

  remove(participantId) {
    this.#tiles.get(participantId)?.remove();
    this.#tiles.delete(participantId);
    this.setScreen(participantId, null);
    this.#updateCount();
  }

  /** Whether some remote camera that is on has not shown its first frame yet. */
  awaitingVideo() {
    return [...this.#tiles.values()].some((tile) => tile.awaitingVideo);
  }

  removeRemotes() {
    for (const [id, tile] of this.#tiles) if (!tile.self) this.remove(id);
  }

  clear() {
    for (const id of [...this.#tiles.keys()]) this.remove(id);
  }

  #updateCount() {
    this.#container.dataset.count = String(this.#tiles.size + this.#screens.size);
    this.#container.dataset.screens = String(this.#screens.size);
  }
}

// Video tiles, one per participant (self included). Every value that came from the server
// is written with textContent, so a display name can never turn into markup.

const ROLE_LABELS = { pharmacist: "Pharmacist", clinician: "Clinical team", patient: "Patient" };
const UNKNOWN_NAME = "Participant";

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
  #videoTrack = null;
  #cameraOff = false;

  constructor(participantId, { self }) {
    this.self = self;
    this.element = element("figure", self ? "tile tile--self" : "tile");
    this.element.dataset.testid = "tile";
    this.element.dataset.participantId = participantId;
    // Self needs no network; remote tiles start "connecting" until ICE says otherwise.
    this.setConnection(self ? "connected" : "connecting");
    this.#refreshVideo();

    this.video = element("video", "tile__video");
    this.video.autoplay = true;
    this.video.playsInline = true;
    // Muted video can always autoplay; remote sound plays through a separate <audio>.
    this.video.muted = true;

    this.#placeholder.setAttribute("aria-hidden", "true");
    const caption = element("figcaption", "tile__caption");
    caption.append(this.#name, this.#role);
    this.element.append(this.video, this.#placeholder, caption, this.#badge);

    if (!self) {
      this.audio = element("audio", "tile__audio");
      this.audio.autoplay = true;
      this.element.append(this.audio);
    }
  }

  get name() {
    return this.#name.textContent;
  }

  setIdentity({ display_name: displayName, role }) {
    const name = displayName || UNKNOWN_NAME;
    this.#name.textContent = name;
    this.#role.textContent = [ROLE_LABELS[role] ?? role, this.self ? "you" : null]
      .filter(Boolean).join(" · ");
    this.#placeholder.textContent = initials(name);
  }

  /** Show a video track; a remote track is "muted" while no frames arrive. */
  setVideoTrack(track) {
    if (track === this.#videoTrack) return;
    this.#videoTrack = track;
    this.video.srcObject = new MediaStream([track]);
    track.addEventListener("mute", () => this.#refreshVideo());
    track.addEventListener("unmute", () => this.#refreshVideo());
    this.#refreshVideo();
  }

  /** @returns {Promise<void>} rejects when the browser's autoplay policy blocks sound */
  setAudioTrack(track) {
    this.audio.srcObject = new MediaStream([track]);
    return this.audio.play();
  }

  setCameraOff(off) {
    this.#cameraOff = off;
    this.#refreshVideo();
  }

  // The initials placeholder stands in whenever there is no picture to show.
  #refreshVideo() {
    const showing = this.#videoTrack && !this.#videoTrack.muted && !this.#cameraOff;
    this.element.dataset.video = showing ? "on" : "off";
  }

  /** @param {"connecting"|"connected"|"reconnecting"} state */
  setConnection(state) {
    this.element.dataset.connection = state;
    this.#badge.textContent = { connecting: "Connecting…", reconnecting: "Reconnecting…" }[state] ?? "";
  }

  remove() {
    this.video.srcObject = null;
    if (this.audio) this.audio.srcObject = null;
    this.element.remove();
  }
}

/** The grid of tiles; `data-count` on the container lets CSS pick a layout. */
export class TileGrid {
  #tiles = new Map();
  #container;
  #onAudioBlocked;

  /**
   * @param {HTMLElement} container
   * @param {() => void} onAudioBlocked  called when sound needs a click or key press first
   */
  constructor(container, onAudioBlocked) {
    this.#container = container;
    this.#onAudioBlocked = onAudioBlocked;
  }

  get(participantId) {
    return this.#tiles.get(participantId);
  }

  /** Create or update the tile of {id, display_name, role}. */
  upsert(participant, { self = false } = {}) {
    let tile = this.#tiles.get(participant.id);
    if (!tile) {
      tile = new Tile(participant.id, { self });
      this.#tiles.set(participant.id, tile);
      // Self always comes first so one's own picture does not jump around.
      if (self) this.#container.prepend(tile.element);
      else this.#container.append(tile.element);
      this.#updateCount();
    }
    tile.setIdentity(participant);
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
    this.#updateCount();
  }

  removeRemotes() {
    for (const [id, tile] of this.#tiles) if (!tile.self) this.remove(id);
  }

  clear() {
    for (const id of [...this.#tiles.keys()]) this.remove(id);
  }

  #updateCount() {
    this.#container.dataset.count = String(this.#tiles.size);
  }
}

// The local camera and microphone. A consult must stay joinable without them (receive-only),
// so every failure ends up as a plain-language message rather than an exception.
//
// LocalMedia owns the tracks this page sends: one microphone track and one camera track at
// most, kept in one MediaStream. Changing a device, flipping the phone camera or going audio
// only replaces a track in place and tells the listeners (the mesh calls
// `RTCRtpSender.replaceTrack` on every peer: no renegotiation).

import { t } from "./i18n.js";

const AUDIO = { echoCancellation: true, noiseSuppression: true };
// Modest resolution: in a full mesh every participant uploads one copy per remote peer.
const VIDEO = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

/** Sentences of the catalogue, one after the other. @param {...string} keys */
const sentences = (...keys) => keys.map((key) => t(key)).join(" ");

// Errors where one kind of device may still work on its own (no camera, mic busy, ...).
const PARTIAL_FAILURES = new Set(["NotFoundError", "OverconstrainedError", "NotReadableError"]);

/** Tracks of one kind ("audio" | "video") in a stream that may be absent. */
export function tracksOf(stream, kind) {
  return stream ? stream.getTracks().filter((track) => track.kind === kind) : [];
}

/** Stop the tracks of a stream so the browser's recording indicator goes off. */
export function stopLocalMedia(stream) {
  for (const track of stream?.getTracks() ?? []) track.stop();
}

export class LocalMedia {
  /** What is sent: at most one audio and one video track. */
  stream = new MediaStream();
  /** A sentence for the person when something is missing or blocked, else null. */
  problem = null;
  /** "user" (front) or "environment" (back): the phone camera in use. */
  facingMode = "user";
  audioOnly = false;
  #enabled = { audio: true, video: true };
  #deviceIds = { audio: null, video: null };
  #listeners = new Set();
  #stopped = false;

  /** @param {(kind: "audio"|"video", track: MediaStreamTrack|null) => void} listener */
  onChange(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The current track of a kind, or null. */
  track(kind) {
    return tracksOf(this.stream, kind)[0] ?? null;
  }

  get available() {
    return Boolean(navigator.mediaDevices?.getUserMedia);
  }

  /**
   * Ask for microphone and camera (again, for "Try again"). Never throws.
   * @returns {Promise<string|null>} the problem, if any
   */
  async open() {
    if (!this.available) {
      this.problem = sentences("media.unsupported", "media.join_anyway");
      return this.problem;
    }
    const wantVideo = !this.audioOnly;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: this.#audioConstraints(),
        video: wantVideo ? this.#videoConstraints() : false,
      });
      this.problem = null;
      this.#adopt(stream);
      return null;
    } catch (error) {
      if (PARTIAL_FAILURES.has(error.name)) {
        const partial = await this.#openOneKind(wantVideo);
        if (partial) {
          this.problem = partial;
          return partial;
        }
      }
      this.problem = mediaProblem(error);
      return this.problem;
    }
  }

  // A laptop without a camera (or with a busy microphone) can still take part halfway.
  async #openOneKind(wantVideo) {
    const fallbacks = [
      ["audio", "media.no_camera"],
      ...(wantVideo ? [["video", "media.no_microphone"]] : []),
    ];
    for (const [kind, problemKey] of fallbacks) {
      try {
        const constraints = kind === "audio" ? this.#audioConstraints() : this.#videoConstraints();
        this.#adopt(await navigator.mediaDevices.getUserMedia({ [kind]: constraints }));
        return t(problemKey);
      } catch {
        // This kind is unavailable too; try the next one.
      }
    }
    return null;
  }

  #adopt(stream) {
    if (this.#stopped) {
      stopLocalMedia(stream);
      return;
    }
    for (const track of stream.getTracks()) this.#setTrack(track.kind, track);
  }

  #audioConstraints() {
    const id = this.#deviceIds.audio;
    return id ? { ...AUDIO, deviceId: { exact: id } } : AUDIO;
  }

  #videoConstraints() {
    const id = this.#deviceIds.video;
    if (id) return { ...VIDEO, deviceId: { exact: id } };
    return { ...VIDEO, facingMode: { ideal: this.facingMode } };
  }

  /** The device id a track of this kind uses now (from the browser), else the chosen one. */
  deviceId(kind) {
    return this.track(kind)?.getSettings().deviceId ?? this.#deviceIds[kind];
  }

  /** Mute / camera off: the track stays open and keeps its place on every connection. */
  setEnabled(kind, enabled) {
    this.#enabled[kind] = enabled;
    const track = this.track(kind);
    if (track) track.enabled = enabled;
  }

  isEnabled(kind) {
    return this.#enabled[kind];
  }

  /**
   * Use another camera or microphone. Resolves with a problem sentence or null.
   * @param {"audio"|"video"} kind
   * @param {string} deviceId
   */
  async useDevice(kind, deviceId) {
    this.#deviceIds[kind] = deviceId || null;
    if (kind === "video" && this.audioOnly) return null; // used when video comes back
    return this.#reopen(kind);
  }

  /** Front ↔ back camera on a phone; on a computer with several cameras, the next one. */
  async switchCamera(cameras = []) {
    if (this.audioOnly) return t("media.audio_only_on");
    const coarse = matchMedia("(pointer: coarse)").matches;
    if (!coarse && cameras.length > 1) {
      const current = this.deviceId("video");
      const index = cameras.findIndex((camera) => camera.deviceId === current);
      this.#deviceIds.video = cameras[(index + 1) % cameras.length].deviceId;
    } else {
      this.facingMode = this.facingMode === "user" ? "environment" : "user";
      this.#deviceIds.video = null;
    }
    // A phone can rarely open its two cameras at once: release the old one first.
    return this.#reopen("video", { releaseFirst: coarse });
  }

  /** Stop sending video (and release the camera), or bring the camera back. */
  async setAudioOnly(on) {
    this.audioOnly = on;
    if (on) {
      this.#setTrack("video", null);
      return null;
    }
    return this.#reopen("video");
  }

  async #reopen(kind, { releaseFirst = false } = {}) {
    if (!this.available) return this.problem;
    const constraints = kind === "audio" ? this.#audioConstraints() : this.#videoConstraints();
    if (releaseFirst) this.#setTrack(kind, null);
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
      this.#adopt(stream);
      return null;
    } catch (error) {
      if (!releaseFirst && error.name === "NotReadableError" && this.track(kind)) {
        // Some devices cannot be opened twice: release the old one and try once more.
        return this.#reopen(kind, { releaseFirst: true });
      }
      return mediaProblem(error, kind);
    }
  }

  #setTrack(kind, track) {
    const old = this.track(kind);
    if (old === track) return;
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    if (track) {
      track.enabled = this.#enabled[kind];
      this.stream.addTrack(track);
    }
    for (const listener of this.#listeners) listener(kind, track);
  }

  /** A summary for tests and support: [{kind, label, id, enabled}]. */
  describeTracks() {
    return this.stream.getTracks().map(({ kind, label, id, enabled }) => ({ kind, label, id, enabled }));
  }

  /** Release camera and microphone for good. */
  stop() {
    this.#stopped = true;
    for (const kind of ["audio", "video"]) this.#setTrack(kind, null);
  }
}

/** The problem in words (the catalogue's media.*): which device, what to do, and that joining still works. */
export function mediaProblem(error, kind = null) {
  const device = kind === "audio" || kind === "video" ? kind : "any";
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return sentences(`media.blocked.${device}`, "media.join_anyway", "media.how_to_allow");
    case "NotFoundError":
    case "OverconstrainedError":
      return sentences(`media.not_found.${device}`, "media.join_anyway");
    case "NotReadableError":
    case "AbortError":
      return sentences(`media.busy.${device}`, "media.join_anyway");
    default:
      return sentences(`media.failed.${device}`, "media.join_anyway");
  }
}

// @ts-check
// Someone knocks (joins the waiting room): those who may admit them hear a chime (unless
// they turned it off), see the count in the tab's title, and, while the tab is hidden, get
// a browser notification if they allowed them. The notification names no one: it can stay
// in the computer's notification centre, and a patient's name is theirs.

import { tCount } from "./i18n.js";

const SOUND_KEY = "mtm:knock-sound";

/**
 * @typedef {{title: string, hidden: boolean}} KnockDocument
 * @typedef {{getItem: (key: string) => string|null, setItem: (key: string, value: string) => void}} KnockStorage
 */

export class KnockAlert {
  #doc;
  #chime;
  #notify;
  #storage;
  #baseTitle;
  #soundOn;
  /** Chimes played so far (the page's test hooks read it). */
  chimes = 0;

  /**
   * @param {object} options
   * @param {KnockDocument} options.doc
   * @param {() => void} options.chime
   * @param {(text: string) => void} options.notify  shows a notification if allowed
   * @param {KnockStorage|null} [options.storage]  remembers "sound off" across visits
   */
  constructor({ doc, chime, notify, storage = null }) {
    this.#doc = doc;
    this.#chime = chime;
    this.#notify = notify;
    this.#storage = storage;
    this.#baseTitle = doc.title;
    this.#soundOn = read(storage) !== "off";
  }

  get soundOn() {
    return this.#soundOn;
  }

  /** Kept for this page; remembered across visits where the page may store it. */
  set soundOn(on) {
    this.#soundOn = on;
    try {
      this.#storage?.setItem(SOUND_KEY, on ? "on" : "off");
    } catch {
      // Storage full or refused: this page still honours it.
    }
  }

  /**
   * The waiting room now, and who of it arrived since the last update.
   * @param {number} waiting
   * @param {number} arrived
   */
  update(waiting, arrived) {
    this.#doc.title = waiting > 0 ? `(${waiting}) ${this.#baseTitle}` : this.#baseTitle;
    if (arrived <= 0) return;
    if (this.soundOn) {
      this.chimes += 1;
      this.#chime();
    }
    if (this.#doc.hidden) {
      this.#notify(tCount("knock.notify", arrived));
    }
  }

  /** Back to the page's own title (the call ended). */
  reset() {
    this.#doc.title = this.#baseTitle;
  }
}

/** @param {KnockStorage|null} storage */
function read(storage) {
  try {
    return storage?.getItem(SOUND_KEY) ?? null;
  } catch {
    return null;
  }
}

/** @type {AudioContext|null} */
let context = null;

/**
 * Call from a click or key press (Join): a browser only lets sound start after one, and a
 * chime later, when nobody is touching the page, needs the context running already.
 */
export function primeChime() {
  try {
    context ??= new AudioContext();
    context.resume().catch(() => {});
  } catch {
    // No Web Audio here.
  }
}

/** Two soft tones, made on the spot (no sound file to fetch). */
export function playChime() {
  try {
    context ??= new AudioContext();
    context.resume().catch(() => {});
    const start = context.currentTime;
    for (const [offset, frequency] of [[0, 660], [0.18, 880]]) {
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.3);
      tone.connect(gain).connect(context.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.32);
    }
  } catch {
    // No sound (no audio device, or a browser without Web Audio): the title still says it.
  }
}

/** @param {string} text */
export function notifyIfAllowed(text) {
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
  try {
    new Notification("MTM Consult", { body: text, tag: "mtm-waiting-room" });
  } catch {
    // Android's Chrome allows notifications from a service worker only: the chime and
    // the title still tell.
  }
}

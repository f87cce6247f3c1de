// Device pickers (camera, microphone, speaker), the microphone level meter and the speaker
// test sound. Used on the pre-join screen and in the in-call settings dialog.

import { t } from "./i18n.js";

const KINDS = { video: "videoinput", audio: "audioinput", speaker: "audiooutput" };

/** Choosing where sound plays needs HTMLMediaElement.setSinkId (not in every browser). */
export const canPickSpeaker = typeof HTMLMediaElement !== "undefined" &&
  "setSinkId" in HTMLMediaElement.prototype;

/** {videoinput: [...], audioinput: [...], audiooutput: [...]} */
export async function listDevices() {
  const lists = { videoinput: [], audioinput: [], audiooutput: [] };
  try {
    for (const device of await navigator.mediaDevices.enumerateDevices()) {
      // Without permission, browsers list devices with empty ids: nothing to choose from.
      if (device.deviceId && lists[device.kind]) lists[device.kind].push(device);
    }
  } catch {
    // No mediaDevices (insecure page, old browser): nothing to pick.
  }
  return lists;
}

/**
 * One set of three <select>s bound to a LocalMedia and a speaker choice.
 * @param {object} fields  {video, audio, speaker}: each {select, field} (field = the wrapper to hide)
 * @param {object} hooks   {local, onProblem(text), speaker: {get(), set(id)}}
 */
export class DevicePickers {
  #fields;
  #hooks;

  constructor(fields, hooks) {
    this.#fields = fields;
    this.#hooks = hooks;
    for (const [key, { select }] of Object.entries(fields)) {
      select.addEventListener("change", () => this.#choose(key, select.value));
    }
  }

  async #choose(key, deviceId) {
    if (key === "speaker") {
      await this.#hooks.speaker.set(deviceId);
      return;
    }
    const problem = await this.#hooks.local.useDevice(key, deviceId);
    if (problem) this.#hooks.onProblem(problem);
    // The browser may have picked another device than asked: show the truth.
    this.refresh();
  }

  /** Fill the lists again (after permission, devicechange or a switch). */
  async refresh() {
    const lists = await listDevices();
    const local = this.#hooks.local;
    for (const [key, { select, field }] of Object.entries(this.#fields)) {
      const devices = lists[KINDS[key]];
      if (key === "speaker") {
        // Hidden where the browser cannot route sound, or lists no speakers.
        field.hidden = !canPickSpeaker || devices.length === 0;
      }
      const current = key === "speaker" ? this.#hooks.speaker.get() : local.deviceId(key);
      fillSelect(select, devices, key, current);
    }
  }
}

function fillSelect(select, devices, key, current) {
  const options = devices.map((device, index) => {
    const option = document.createElement("option");
    option.value = device.deviceId;
    // The browser's label is the device's own name (data); without one, "Camera 2".
    option.textContent = device.label || t(`devices.numbered.${key}`, { number: index + 1 });
    return option;
  });
  if (options.length === 0) {
    const none = document.createElement("option");
    none.value = "";
    none.textContent = t(`devices.none.${key}`);
    options.push(none);
  }
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
  if (current && devices.some((device) => device.deviceId === current)) select.value = current;
}

/**
 * The microphone level as a <meter> (0–1) plus a sentence, from a WebAudio AnalyserNode.
 * Runs only while started (the pre-join screen or the settings dialog is open).
 */
export class LevelMeter {
  #meter;
  #text;
  #context = null;
  #source = null;
  #analyser = null;
  #samples = null;
  #timer = null;
  #track = null;
  #heard = false;

  /** @param {HTMLMeterElement} meter  @param {HTMLElement} text */
  constructor(meter, text) {
    this.#meter = meter;
    this.#text = text;
  }

  /** Measure this track from now on (null: nothing to measure). */
  attach(track) {
    if (track === this.#track) return;
    this.#track = track;
    this.#source?.disconnect();
    this.#source = null;
    this.#heard = false;
    if (!track) {
      this.#show(0);
      this.#text.textContent = t("devices.level.none");
      return;
    }
    if (!this.#ensureContext()) return;
    this.#source = this.#context.createMediaStreamSource(new MediaStream([track]));
    this.#source.connect(this.#analyser);
    this.#text.textContent = t("devices.level.say");
  }

  #ensureContext() {
    if (this.#context) return true;
    const Context = window.AudioContext ?? /** @type {any} */ (window).webkitAudioContext; // older Safari
    if (!Context) {
      this.#text.textContent = t("devices.level.unsupported");
      return false;
    }
    this.#context = new Context();
    this.#analyser = this.#context.createAnalyser();
    this.#analyser.fftSize = 1024;
    this.#samples = new Float32Array(this.#analyser.fftSize);
    // Browsers may keep audio suspended until the person interacts with the page.
    const resume = () => this.#context?.resume().catch(() => {});
    document.addEventListener("pointerdown", resume, { once: true });
    document.addEventListener("keydown", resume, { once: true });
    return true;
  }

  start() {
    if (this.#timer) return;
    this.#context?.resume().catch(() => {});
    this.#timer = setInterval(() => this.#sample(), 100);
  }

  /** Stop measuring; the audio graph is suspended so it costs nothing meanwhile. */
  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
    this.#context?.suspend().catch(() => {});
  }

  close() {
    this.stop();
    this.#source?.disconnect();
    this.#context?.close().catch(() => {});
    this.#context = null;
    this.#track = null;
  }

  #sample() {
    if (!this.#source || !this.#track) return;
    this.#analyser.getFloatTimeDomainData(this.#samples);
    let sum = 0;
    for (const sample of this.#samples) sum += sample * sample;
    const rms = Math.sqrt(sum / this.#samples.length);
    // -60 dBFS (silence) .. 0 dBFS (loudest) mapped onto 0..1.
    const level = rms > 0 ? Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 60)) : 0;
    const muted = !this.#track.enabled;
    this.#show(muted ? 0 : level);
    if (muted) {
      this.#text.textContent = t("devices.level.muted");
    } else if (level > 0.35 && !this.#heard) {
      this.#heard = true;
      this.#text.textContent = t("devices.level.heard");
    }
  }

  #show(level) {
    const rounded = Math.round(level * 100) / 100;
    this.#meter.value = rounded;
    this.#meter.setAttribute("aria-valuetext", t("devices.level.percent", { percent: Math.round(rounded * 100) }));
  }
}

/** A short tone through the chosen speaker, so people can check they hear something. */
export async function playTestSound(sinkId) {
  const audio = new Audio(URL.createObjectURL(toneWav()));
  if (sinkId && canPickSpeaker) await audio.setSinkId(sinkId);
  audio.addEventListener("ended", () => URL.revokeObjectURL(audio.src), { once: true });
  await audio.play();
}

// 0.6 s of a soft 660 Hz tone with fade in/out, as 16-bit mono PCM WAV.
function toneWav() {
  const rate = 22050;
  const count = Math.round(rate * 0.6);
  const buffer = new ArrayBuffer(44 + count * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + count * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, count * 2, true);
  for (let i = 0; i < count; i += 1) {
    const envelope = Math.min(1, i / 1000, (count - i) / 1000);
    view.setInt16(44 + i * 2, Math.sin((2 * Math.PI * 660 * i) / rate) * 0.3 * envelope * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// @ts-check
// The words on the call's controls, from the page's message catalogue (i18n.js): the embed's
// `set-language` switches them. A toggle (`aria-pressed`) says what pressing it does:
// "Mute" while the microphone is on, "Unmute" while it is off.

import { has, t } from "./i18n.js";

/** The ids of the controls whose labels the catalogue holds (`control.<id>`). */
const CONTROLS = [
  "prejoin-title", "join-button", "waiting-title", "waiting-leave", "mic-button", "camera-button",
  "switch-camera-button", "share-button", "settings-button", "end-button", "leave-button",
];

/**
 * The label of control `id` in `language` (English if not offered), for its pressed state.
 * @param {string} id
 * @param {{language: string, pressed?: boolean}} how
 */
export function controlLabel(id, { language, pressed = false }) {
  const key = pressed && has(`control.${id}/pressed`) ? `control.${id}/pressed` : `control.${id}`;
  return t(key, {}, language);
}

/** Whether control `id` says its pressed state in words. @param {string} id */
export function hasPressedLabel(id) {
  return has(`control.${id}/pressed`);
}

/**
 * Write every control's label in the document's language (`<html lang>`), toggles as
 * they stand now.
 * @param {Document} doc
 */
export function applyControlLabels(doc) {
  const language = doc.documentElement.lang;
  for (const id of CONTROLS) {
    const element = doc.getElementById(id);
    if (!element) continue;
    const pressed = element.getAttribute("aria-pressed") === "true";
    element.textContent = controlLabel(id, { language, pressed });
  }
}

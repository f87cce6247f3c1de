// @ts-check
// The words on the call's controls, per language (the embed's `set-language` switches them;
// the status line stays English for now). A toggle (`aria-pressed`) says what pressing it
// does: "Mute" while the microphone is on, "Unmute" while it is off.

/** @type {Record<"en"|"es", Record<string, string>>} */
export const CONTROL_LABELS = {
  en: {
    "prejoin-title": "Join your medication review",
    "join-button": "Join",
    "waiting-title": "You're in the waiting room",
    "waiting-leave": "Leave the waiting room",
    "mic-button": "Mute",
    "mic-button/pressed": "Unmute",
    "camera-button": "Turn camera off",
    "camera-button/pressed": "Turn camera on",
    "switch-camera-button": "Switch camera",
    "settings-button": "Settings",
    "end-button": "End for everyone",
    "leave-button": "Leave",
  },
  es: {
    "prejoin-title": "Únase a su revisión de medicamentos",
    "join-button": "Unirse",
    "waiting-title": "Está en la sala de espera",
    "waiting-leave": "Salir de la sala de espera",
    "mic-button": "Silenciar",
    "mic-button/pressed": "Activar micrófono",
    "camera-button": "Apagar cámara",
    "camera-button/pressed": "Encender cámara",
    "switch-camera-button": "Cambiar cámara",
    "settings-button": "Ajustes",
    "end-button": "Terminar para todos",
    "leave-button": "Salir",
  },
};

/**
 * The label of control `id` in `language` (English if not offered), for its pressed state.
 * @param {string} id
 * @param {{language: string, pressed?: boolean}} how
 */
export function controlLabel(id, { language, pressed = false }) {
  const words = CONTROL_LABELS[/** @type {"en"|"es"} */ (language)] ?? CONTROL_LABELS.en;
  return (pressed && words[`${id}/pressed`]) || words[id];
}

/**
 * Write every control's label in the document's language (`<html lang>`), toggles as
 * they stand now.
 * @param {Document} doc
 */
export function applyControlLabels(doc) {
  const language = doc.documentElement.lang;
  for (const id of Object.keys(CONTROL_LABELS.en)) {
    if (id.includes("/")) continue;
    const element = doc.getElementById(id);
    if (!element) continue;
    const pressed = element.getAttribute("aria-pressed") === "true";
    element.textContent = controlLabel(id, { language, pressed });
  }
}

// @ts-check
// The page's words in its language: the same catalogues the server's templates use
// (web/static/messages/<lang>.json, bundled into the page), so a string shown before and
// after the script runs reads the same. The page's language is <html lang> (the server
// chose it: ?lang=, the switch's cookie, the browser's preference; server/i18n.py).

import en from "./messages/en.json" with { type: "json" };
import es from "./messages/es.json" with { type: "json" };

/** @type {Record<string, Record<string, string>>} */
const CATALOGUES = { en, es };
export const LANGUAGES = Object.keys(CATALOGUES);
export const COOKIE = "mtm_lang";

/** The page's language, when it is one offered; else English. */
export function pageLanguage() {
  const lang = typeof document === "undefined" ? "en" : document.documentElement.lang;
  return LANGUAGES.includes(lang) ? lang : "en";
}

/**
 * The message `key` in `language` (English where it has none), `{name}` filled in.
 * @param {string} key
 * @param {Record<string, string|number>} [values]
 * @param {string} [language]
 */
export function t(key, values = {}, language = pageLanguage()) {
  const text = CATALOGUES[language]?.[key] ?? CATALOGUES.en[key];
  if (text === undefined) throw new Error(`no message ${key}`);
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Whether `key` has a message. @param {string} key */
export function has(key) {
  return key in CATALOGUES.en;
}

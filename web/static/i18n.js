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

/**
 * The message `key.one` or `key.other`, by `count` (both languages tell one from more
 * alike), `{count}` filled in with the rest of `values`.
 * @param {string} key
 * @param {number} count
 * @param {Record<string, string|number>} [values]
 * @param {string} [language]
 */
export function tCount(key, count, values = {}, language = pageLanguage()) {
  return t(`${key}.${count === 1 ? "one" : "other"}`, { ...values, count }, language);
}

/** Whether `key` has a message. @param {string} key */
export function has(key) {
  return key in CATALOGUES.en;
}

/**
 * What to show for a refusal from the server (`{code, message}`, docs/protocol.md). The
 * server writes its messages in English, precise to the case ("dose can be at most 200
 * characters"): an English page shows them. A page in another language shows the
 * catalogue's `server.<code>` (a sentence for the kind of refusal), else `fallback`.
 * @param {{code?: string, message?: string} | null | undefined} error
 * @param {string} fallback   the catalogue's words for when there is nothing better
 * @param {string} [language]
 */
export function serverMessage(error, fallback, language = pageLanguage()) {
  if (language === "en" && error?.message) return error.message;
  const key = `server.${error?.code}`;
  if (error?.code && has(key)) return t(key, {}, language);
  return fallback;
}

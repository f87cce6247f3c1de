// @ts-check
// The example portal's script (see host.html). It needs nothing but the SDK, loaded from the
// server the join link points at; a portal that knows its consult server imports it
// directly: import { createFrame } from "https://consult.example.org/sdk/mtm-consult.js".

const EVENTS = [
  "ready", "state", "joined", "participant-joined", "participant-left", "participant-waiting",
  "medication-changed", "recommendation-decided", "consult-ended", "error",
];

const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const log = /** @type {HTMLOListElement} */ (byId("log"));
const waitingList = /** @type {HTMLUListElement} */ (byId("waiting"));
const linkInput = /** @type {HTMLInputElement} */ (byId("link"));
/** @type {import("../static/sdk/mtm-consult").ConsultFrame | null} */
let call = null;

byId("link-form").addEventListener("submit", (event) => {
  event.preventDefault();
  open(linkInput.value);
});

// host.html#link=<join link>[&accent=%230b5cad&panel=0&logo=0&lang=es]
const fromHash = new URLSearchParams(location.hash.slice(1));
const linkInHash = fromHash.get("link");
if (linkInHash) {
  linkInput.value = linkInHash;
  open(linkInHash);
}

/** @param {string} link */
async function open(link) {
  call?.destroy();
  let sdk;
  try {
    sdk = await import(new URL("/sdk/mtm-consult.js", link).href);
  } catch (error) {
    record("error", { code: "sdk_unavailable", message: String(error) });
    return;
  }
  /** @type {import("../static/sdk/mtm-consult").Theme} */
  const theme = {};
  if (fromHash.has("accent")) theme.accent = String(fromHash.get("accent"));
  if (fromHash.has("panel")) theme.panel = fromHash.get("panel") !== "0";
  if (fromHash.has("logo")) theme.logo = fromHash.get("logo") !== "0";
  const language = /** @type {"en" | "es" | undefined} */ (fromHash.get("lang") ?? undefined);
  try {
    call = sdk.createFrame(byId("call"), { url: link, theme, language });
  } catch (error) {
    record("error", { code: "invalid_options", message: String(error) });
    return;
  }
  const frame = /** @type {import("../static/sdk/mtm-consult").ConsultFrame} */ (call);
  // For your browser console (and this example's tests): the frame's controller.
  Object.assign(window, { consultFrame: frame });
  for (const name of EVENTS) frame.on(/** @type {any} */ (name), (data) => record(name, data));
  frame.on("participant-waiting", ({ waiting }) => showWaiting(waiting));
  frame.on("joined", () => showWaiting([]));
}

/** @param {{id: string, role: string, display_name: string}[]} people */
function showWaiting(people) {
  byId("waiting-empty").hidden = people.length > 0;
  waitingList.replaceChildren(...people.map((person) => {
    const item = document.createElement("li");
    item.dataset.testid = "host-waiting-person";
    const name = document.createElement("span");
    name.textContent = `${person.display_name || "Someone"} (${person.role})`;
    const admit = button("Admit", () => call?.admit(person.id));
    admit.dataset.testid = "host-admit";
    const deny = button("Deny", () => call?.deny(person.id));
    deny.dataset.testid = "host-deny";
    item.append(name, " ", admit, " ", deny);
    return item;
  }));
}

/**
 * @param {string} text
 * @param {() => Promise<unknown> | undefined} action
 */
function button(text, action) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  node.addEventListener("click", async () => {
    node.disabled = true;
    try {
      await action();
    } catch {
      // Refused: the `error` event is in the log.
    } finally {
      node.disabled = false;
    }
  });
  return node;
}

/** A toggle button of the controls: aria-pressed says its state. */
function toggle(/** @type {string} */ id, /** @type {(pressed: boolean) => Promise<unknown> | undefined} */ action) {
  const node = byId(id);
  node.addEventListener("click", async () => {
    const pressed = node.getAttribute("aria-pressed") !== "true";
    try {
      await action(pressed);
      node.setAttribute("aria-pressed", String(pressed));
    } catch {
      // Refused: the `error` event is in the log.
    }
  });
}

toggle("mute", (pressed) => call?.setMuted(pressed));
toggle("camera", (pressed) => call?.setCamera(!pressed));
toggle("panel", (pressed) => (pressed ? call?.hidePanel() : call?.showPanel()));
byId("language").addEventListener("change", (event) =>
  call?.setLanguage(/** @type {any} */ (event.target).value).catch(() => {}));
byId("leave").addEventListener("click", () => call?.leave().catch(() => {}));

/** Add an event to the log (newest last), as text only. @param {string} name @param {unknown} data */
function record(name, data) {
  const item = document.createElement("li");
  item.dataset.event = name;
  item.dataset.testid = "host-event";
  const label = document.createElement("strong");
  label.textContent = name;
  const detail = document.createElement("code");
  detail.textContent = JSON.stringify(data);
  item.append(label, " ", detail);
  log.append(item);
  item.scrollIntoView({ block: "nearest" });
}

// @ts-check
// Small DOM helpers for the medication panel. Text only ever goes in through textContent,
// text nodes, attributes or form values: never innerHTML (the CSP and the data both demand it).

let lastId = 0;

/**
 * A document-unique id for label/aria wiring.
 * @param {string} [prefix]
 */
export function uid(prefix = "mp") {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

const PROPERTIES = new Set(["hidden", "disabled", "checked", "value", "required", "multiple"]);

/**
 * h("button", {class: "x", type: "button", "data-testid": "y", onclick: fn}, "text", child)
 * Strings among the children become text nodes. `text` sets textContent.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | number | null | undefined | false | (Node | string | null | undefined | false)[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * Set text only when it changed (keeps screen readers and selection calm).
 * @param {Node} el @param {unknown} text
 */
export function setText(el, text) {
  const value = String(text ?? "");
  if (el.textContent !== value) el.textContent = value;
}

/**
 * Set, change or remove an attribute (null, undefined and false remove it; true is "").
 * @param {Element} el @param {string} name @param {unknown} value
 */
export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
    return;
  }
  const text = value === true ? "" : String(value);
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

/** @param {HTMLElement} el @param {boolean} visible */
export function show(el, visible) {
  if (el.hidden === visible) el.hidden = !visible;
}

/**
 * Make `container`'s children exactly `nodes`, in order, moving only the ones out of place
 * (a moved node loses focus, so nodes already in order are left alone).
 * @param {Node} container @param {Node[]} nodes
 */
export function syncChildren(container, nodes) {
  let ref = container.firstChild;
  for (const node of nodes) {
    if (node === ref) {
      ref = ref.nextSibling;
      continue;
    }
    container.insertBefore(node, ref);
  }
  while (ref) {
    const next = ref.nextSibling;
    ref.remove();
    ref = next;
  }
}

/**
 * A <select> of [value, label] pairs; null is the empty-string option.
 * @param {any[][]} options   [value, label] pairs
 * @param {string | null | undefined} current
 * @param {Record<string, any>} [props]
 */
export function selectOf(options, current, props = {}) {
  const select = h("select", props);
  for (const [value, label] of options) {
    select.append(h("option", { value: value ?? "", text: label, selected: (value ?? "") === (current ?? "") }));
  }
  return select;
}

/**
 * A labelled form control: returns {wrap, control, label}.
 * @template {HTMLElement} C
 * @param {string} labelText
 * @param {C} control
 * @param {{hint?: string}} [options]
 */
export function labelled(labelText, control, { hint } = {}) {
  if (!control.id) control.id = uid("mp-input");
  const label = h("label", { for: control.id, class: "mp-label", text: labelText });
  const wrap = h("div", { class: "mp-control" }, label, control);
  if (hint) {
    const hintEl = h("p", { class: "mp-hint", id: uid("mp-hint"), text: hint });
    control.setAttribute("aria-describedby", hintEl.id);
    wrap.append(hintEl);
  }
  return { wrap, control, label };
}

/**
 * A time as HH:MM:SS (local), with the full date and time for a title.
 * @param {string | null | undefined} iso
 */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return { short: String(iso ?? ""), full: String(iso ?? "") };
  return {
    short: date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }),
    full: date.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }),
  };
}

// @ts-check
// The join acknowledgement's `settings` for each role, made by the server's own code
// (models/panel.py `schema()`, models/roles.py `is_allowed`), so the tests never hold a copy
// of a field rule. Runs the project's Python: MTM_PYTHON, else ../.venv/bin/python.

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const PYTHON = process.env.MTM_PYTHON || `${ROOT}.venv/bin/python`;
const SCRIPT = `
import json
from models import panel
from models.roles import Action, Role, is_allowed
print(json.dumps({
    role.value: {
        "panel_schema": panel.schema(),
        "may": {action.value: is_allowed(role, action) for action in Action},
    }
    for role in Role
}))
`;

/** @typedef {{panel_schema: Record<string, any>, may: Record<string, boolean>}} Settings */

/** @type {Record<string, Settings> | null} */
let cached = null;

/**
 * @param {"pharmacist"|"clinician"|"patient"} role
 * @returns {Settings}
 */
export function settingsFor(role) {
  cached ??= JSON.parse(execFileSync(PYTHON, ["-c", SCRIPT], { cwd: ROOT, encoding: "utf8" }));
  return structuredClone(cached[role]);
}

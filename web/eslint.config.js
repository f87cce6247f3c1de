// @ts-check
// ESLint (flat config) for the browser client, its tests and the tooling in web/.
// `./run.sh lint` runs it (`npx eslint .` in web/).
import js from "@eslint/js";
import globals from "globals";

export default [
  // build/: the bundles esbuild makes from static/ (server/bundle.py).
  { ignores: ["node_modules/**", "build/**"] },
  js.configs.recommended,
  {
    files: ["static/**/*.js", "examples/**/*.js"],
    languageOptions: { ecmaVersion: 2025, sourceType: "module", globals: { ...globals.browser } },
  },
  {
    files: ["test/**/*.js", "*.js"],
    languageOptions: { ecmaVersion: 2025, sourceType: "module", globals: { ...globals.node } },
  },
  {
    rules: {
      // `catch {}` without a binding is how the code says "ignored on purpose".
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "prefer-const": "error",
      "no-var": "error",
    },
  },
];

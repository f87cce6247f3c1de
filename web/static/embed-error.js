// @ts-check
// An embed page that cannot show the call (expired link, ended consult, a bad theme
// parameter): it tells the host page why, with an `error` event, once the host says hello.
// No command can work here; each is refused with `unavailable`.
import { EmbedBridge } from "./embed-bridge.js";

const boot = JSON.parse(document.getElementById("boot")?.textContent ?? "{}");
const { allowed_origins: allowedOrigins = [], error } = boot.embed ?? {};
const bridge = new EmbedBridge({
  allowedOrigins,
  handlers: {},
  describe: () => ({ participant_id: null, role: null, state: "error", version: 1 }),
});
bridge.emit("error", { code: error?.code ?? "embed_error", message: error?.message ?? "" });

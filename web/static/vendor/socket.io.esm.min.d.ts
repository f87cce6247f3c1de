// Types for the socket.io client the server serves here (installed by npm into
// node_modules at setup; see server/pages.py): the same module's declarations.
export { io } from "socket.io-client";
export type { Socket } from "socket.io-client";

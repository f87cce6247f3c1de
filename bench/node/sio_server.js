#!/usr/bin/env node
// The peer for the capacity benchmark (and a relay-only floor for fan-out): a minimal
// Socket.IO 4 server holding the same rooms as ours, with the same events and nothing
// else. No database, no validation, no audit: what a bare Node relay costs.
//
//   PORT=<port> HOST=127.0.0.1 PING_INTERVAL_MS=25000 node sio_server.js
//
// auth.token is "<room>:<member>"; `join` enters the room and acknowledges with the
// roster; `mutate` gets the room's next seq, is acknowledged, and is broadcast to the room
// (the author included) as `panel-event`, like ours.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 0);
const host = process.env.HOST || "127.0.0.1";
const pingInterval = Number(process.env.PING_INTERVAL_MS || 25000);

const httpServer = http.createServer((request, response) => {
  response.writeHead(200, { "Content-Type": "text/plain" });
  response.end("ok");
});
const io = new Server(httpServer, {
  transports: ["websocket"],
  pingInterval,
  pingTimeout: 20000,
  maxHttpBufferSize: 4 * 65536,
});
const seqs = new Map();

io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (typeof token !== "string" || !token.includes(":")) {
    const error = new Error("missing_token");
    error.data = { code: "missing_token", message: "Connect with auth {token}." };
    return next(error);
  }
  const [room, member] = token.split(":");
  socket.data.room = room;
  socket.data.id = `${room}:${member}`;
  next();
});

io.on("connection", (socket) => {
  const { room, id } = socket.data;
  socket.on("join", async (_payload, ack) => {
    await socket.join(room);
    const others = await io.in(room).fetchSockets();
    socket.to(room).emit("participant-joined", { participant: { id } });
    if (typeof ack === "function") {
      ack({
        ok: true,
        self: { id },
        roster: others.filter((s) => s.id !== socket.id).map((s) => ({ id: s.data.id })),
        panel: { seq: seqs.get(room) || 0, entities: [] },
      });
    }
  });
  socket.on("mutate", (mutation, ack) => {
    const seq = (seqs.get(room) || 0) + 1;
    seqs.set(room, seq);
    const event = {
      seq,
      actor: { id },
      op: mutation.op,
      entity_id: mutation.entity_id,
      field: mutation.field,
      new: mutation.value,
      mutation_id: mutation.mutation_id,
      outcome: "applied",
    };
    if (typeof ack === "function") ack({ ok: true, seq, event });
    io.to(room).emit("panel-event", { event, entity: null });
  });
  socket.on("disconnect", () => {
    socket.to(room).emit("participant-left", { participant_id: id, reason: "disconnected" });
  });
});

httpServer.listen(port, host, () => {
  console.log(`socket.io peer listening on ${host}:${httpServer.address().port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));

// The original backend zapgate is compared with, as first described: Express 4 + socket.io 4,
// messages kept in an in-memory array, no authentication, no persistence. Written for the
// benchmark from that description (not from its code); `make bench` runs it on the same pinned
// core as zapgate, so every figure is a ratio measured side by side.
//
//   POST /whatsapp/send      {number, message} -> kept in memory, 200 {success, id, ...}
//   GET  /whatsapp/messages  every message kept, newest first
//   POST /inbound            {from, message}   -> socket.io event `message` to every client
//   GET  /ready              200 once listening
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");
const express = require("express");
const { Server } = require("socket.io");

const portFlag = process.argv.indexOf("--port");
const port = Number(portFlag > 0 ? process.argv[portFlag + 1] : process.env.PORT || 3000);

const app = express();
app.use(express.json());
const server = http.createServer(app);
const io = new Server(server, { cors: { origin: "*" } });
const messages = [];

app.get("/ready", (_req, res) => res.json({ ready: true }));

app.post("/whatsapp/send", (req, res) => {
  const { number, message } = req.body || {};
  if (!number || !message) {
    return res.status(400).json({ success: false, error: "number and message are required" });
  }
  const entry = {
    id: crypto.randomUUID(),
    number: String(number),
    message: String(message),
    timestamp: Date.now(),
  };
  messages.push(entry);
  return res.json({ success: true, id: entry.id, status: "sent", message: entry.message });
});

app.get("/whatsapp/messages", (_req, res) => res.json([...messages].reverse()));

app.post("/inbound", (req, res) => {
  const { from, message } = req.body || {};
  const entry = {
    id: crypto.randomUUID(),
    from: String(from),
    body: String(message),
    text: String(message),
    timestamp: Date.now(),
  };
  messages.push(entry);
  io.emit("message", entry);
  res.json({ success: true, id: entry.id });
});

server.listen(port, "127.0.0.1");

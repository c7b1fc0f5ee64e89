// The fan-out workload's clients and load, in one Node process on the load core: N Socket.IO
// clients (websocket transport) listen to `message`; inbound messages are POSTed to the server,
// each carrying its send time, and every socket's receipt is timed.
//
//   node fanout.js --url http://127.0.0.1:PORT --path /inbound --style original|zapgate
//                  [--clients 100] [--duration 10] [--concurrency 50]
//                  [--rate 500] [--phases max,paced] [--client light|socketio]
//
// `light` clients (the default) speak Engine.IO 4 / Socket.IO 5 over `ws` themselves (open,
// connect with auth, ping/pong) and look only at `message` packets: one core of such clients
// takes several times the events/s of one core of socket.io-client, which itself saturated the
// load core before either server did. `socketio` runs the real socket.io-client instead.
//
// The API key, if any, comes from the environment (BENCH_TOKEN).
// Phases run in order on the same sockets: `max` keeps --concurrency POSTs in flight for
// --duration seconds; `paced` sends --rate messages/s for --duration seconds, timing each
// message from its scheduled send time (so a server that falls behind shows it in latency).
// Each phase waits until every socket has every message (or nothing moved for 15 s).
// Marks `{"mark": "start"|"end", "phase"}` go to stderr as they happen (the driver samples the
// server's CPU on them); the figures are one JSON document on stdout.
"use strict";

const http = require("node:http");
const { performance } = require("node:perf_hooks");
const { io } = require("socket.io-client");
const WebSocket = require("ws");

function flags(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const args = flags(process.argv);
args.token = process.env.BENCH_TOKEN; // a key in argv would show in ps
const url = new URL(args.url);
const CLIENTS = Number(args.clients || 100);
const DURATION_MS = Number(args.duration || 10) * 1000;
const CONCURRENCY = Number(args.concurrency || 50);
const RATE = Number(args.rate || 500);
const PHASES = (args.phases || "max,paced").split(",");
const STALL_MS = 15000;
const WARMUP_MESSAGES = 200;
const MAX_IN_FLIGHT = 1000;

const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
const state = { expect: new Map(), latencies: [], received: 0, lastReceipt: 0, progress: 0, failed: 0 };

function mark(kind, phase) {
  process.stderr.write(JSON.stringify({ mark: kind, phase }) + "\n");
}

function body(text) {
  const from = "5511988887777";
  return JSON.stringify(args.style === "original" ? { from, message: text } : { from, text });
}

function post(text) {
  return new Promise((resolve) => {
    const data = body(text);
    const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(data) };
    if (args.token) headers.authorization = `Bearer ${args.token}`;
    const req = http.request(
      { host: url.hostname, port: url.port, path: args.path, method: "POST", agent, headers },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode >= 200 && res.statusCode < 300 ? null : `HTTP ${res.statusCode}`));
      },
    );
    req.on("error", (err) => resolve(String(err)));
    req.end(data);
  });
}

let nextId = 0;
const errors = [];

// One message: its id and scheduled time travel in the text; receipts are matched on them.
async function sendOne(scheduled) {
  const id = ++nextId;
  state.expect.set(id, CLIENTS);
  const error = await post(`b:${id}:${scheduled}`);
  if (error) {
    state.expect.delete(id);
    state.failed += 1;
    if (errors.length < 5) errors.push(error);
    return false;
  }
  return true;
}

function onMessage(message) {
  const text = message && (message.text || message.body);
  if (typeof text === "string" && text.startsWith("b:")) receipt(text);
}

// `b:<id>:<scheduled ms>`: one more socket has message <id>.
function receipt(text) {
  const [, id, scheduled] = text.split(":");
  const left = state.expect.get(Number(id));
  if (left === undefined) return;
  const now = performance.now();
  state.latencies.push(now - Number(scheduled));
  state.received += 1;
  state.lastReceipt = now;
  state.progress = now;
  if (left <= 1) state.expect.delete(Number(id));
  else state.expect.set(Number(id), left - 1);
}

const MESSAGE_PACKET = '42["message",';
const TEXT_FIELD = '"text":"';

// One light client: resolves once connected; counts the `message` packets it gets.
function lightClient(auth) {
  return new Promise((resolve, reject) => {
    const base = args.url.replace(/^http/, "ws");
    const ws = new WebSocket(`${base}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
    ws.on("error", reject);
    ws.on("message", (data) => {
      const packet = data.toString();
      if (packet.startsWith(MESSAGE_PACKET)) {
        const at = packet.indexOf(TEXT_FIELD);
        const start = at + TEXT_FIELD.length;
        if (at >= 0 && packet.startsWith("b:", start)) receipt(packet.slice(start, packet.indexOf('"', start)));
      } else if (packet === "2") ws.send("3");
      else if (packet.startsWith("0{")) ws.send("40" + (auth ? JSON.stringify(auth) : ""));
      else if (packet.startsWith("40")) resolve(ws);
      else if (packet.startsWith("44")) reject(new Error(`connect_error: ${packet}`));
    });
  });
}

function connectAll() {
  const auth = args.token ? { token: args.token } : undefined;
  if ((args.client || "light") === "light") {
    return Promise.all(Array.from({ length: CLIENTS }, () => lightClient(auth)));
  }
  const sockets = [];
  const ready = [];
  for (let i = 0; i < CLIENTS; i++) {
    const socket = io(args.url, { transports: ["websocket"], auth, forceNew: true, reconnection: false });
    socket.on("message", onMessage);
    ready.push(new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    }));
    sockets.push(socket);
  }
  return Promise.all(ready).then(() => sockets);
}

function settled() {
  return new Promise((resolve) => {
    const check = () => {
      if (state.expect.size === 0) return resolve(true);
      if (performance.now() - state.progress > STALL_MS) return resolve(false);
      setTimeout(check, 5);
    };
    state.progress = performance.now();
    check();
  });
}

function percentile(sorted, pct) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((pct / 100) * sorted.length) - 1)];
}

function reset() {
  state.latencies = [];
  state.received = 0;
  state.lastReceipt = 0;
  state.failed = 0;
}

async function flood(deadline, limit) {
  let sent = 0;
  const worker = async () => {
    while (performance.now() < deadline && sent < limit) {
      sent += 1;
      await sendOne(performance.now());
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return sent;
}

async function paced(started, deadline) {
  let sent = 0;
  let inFlight = 0;
  let late = 0;
  const pending = [];
  while (performance.now() < deadline) {
    const now = performance.now();
    const due = Math.floor(((now - started) / 1000) * RATE);
    while (sent < due) {
      const scheduled = started + (sent * 1000) / RATE;
      sent += 1;
      if (inFlight >= MAX_IN_FLIGHT) { late += 1; continue; }
      inFlight += 1;
      pending.push(sendOne(scheduled).finally(() => { inFlight -= 1; }));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return { sent, late };
}

async function phase(name) {
  reset();
  mark("start", name);
  const started = performance.now();
  const deadline = started + DURATION_MS;
  let sent;
  let late = 0;
  if (name === "max") sent = await flood(deadline, Infinity);
  else ({ sent, late } = await paced(started, deadline));
  const sentDone = performance.now();
  const complete = await settled();
  mark("end", name);
  const elapsed = (Math.max(state.lastReceipt, sentDone) - started) / 1000;
  const sorted = Float64Array.from(state.latencies).sort();
  return {
    phase: name,
    messages: sent,
    receipts: state.received,
    expected_receipts: (sent - late - state.failed) * CLIENTS,
    complete,
    late,
    failed: state.failed,
    seconds: elapsed,
    messages_per_s: sent / elapsed,
    events_per_s: state.received / elapsed,
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
    max_ms: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

async function main() {
  const sockets = await connectAll();
  await flood(Infinity, WARMUP_MESSAGES);
  if (!(await settled())) throw new Error("warm-up messages did not all arrive");
  const results = [];
  for (const name of PHASES) results.push(await phase(name));
  for (const socket of sockets) socket.close();
  agent.destroy();
  process.stdout.write(JSON.stringify({ clients: CLIENTS, errors, phases: results }) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`fanout: ${err.stack || err}\n`);
    process.exit(1);
  },
);

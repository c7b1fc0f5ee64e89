// The cluster fan-out workload's clients and load (bench/cluster.py), in one Node process: N
// light Socket.IO clients (Engine.IO 4 / Socket.IO 5 over `ws`, as in fanout.js) spread
// round-robin over the nodes' URLs; inbound messages are POSTed through one node (the session's
// owner, which writes them); every client's receipt of each `message.received` event is timed
// twice: from the event's commit (its envelope's `timestamp`, the server's clock: same machine)
// and from the POST's (scheduled) send time.
//
//   node cluster_fanout.js --urls http://127.0.0.1:A,http://127.0.0.1:B --post http://127.0.0.1:A
//                          --path /api/v1/sessions/default/simulate/inbound
//                          [--clients 100] [--duration 4] [--concurrency 50] [--rate 200]
//                          [--phases max,paced]
//
// The API key comes from the environment (BENCH_TOKEN). Phases run in order on the same
// sockets: `max` keeps --concurrency POSTs in flight for --duration seconds; `paced` sends
// --rate messages/s. Each phase waits until every socket has every message (or nothing moved
// for 15 s). Latencies are also kept apart for the clients on the writing node (`same`) and on
// the others (`other`: their events came through the cross-node event tail). The figures are
// one JSON document on stdout.
"use strict";

const http = require("node:http");
const { performance } = require("node:perf_hooks");
const WebSocket = require("ws");

function flags(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const args = flags(process.argv);
const token = process.env.BENCH_TOKEN;
const urls = args.urls.split(",");
const postUrl = new URL(args.post);
const CLIENTS = Number(args.clients || 100);
const DURATION_MS = Number(args.duration || 4) * 1000;
const CONCURRENCY = Number(args.concurrency || 50);
const RATE = Number(args.rate || 200);
const PHASES = (args.phases || "max,paced").split(",");
const STALL_MS = 15000;
const WARMUP_MESSAGES = 100;
const MAX_IN_FLIGHT = 1000;
const EVENT_PACKET = '42["event",';
const RECEIVED = '"type":"message.received"';
const TIMESTAMP_FIELD = '"timestamp":"';
const TEXT_FIELD = '"text":"b:';

const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
const errors = [];
let state;

function reset() {
  state = {
    expect: new Map(),
    commit: { all: [], same: [], other: [] },
    post: [],
    received: 0,
    lastReceipt: 0,
    progress: performance.now(),
    failed: 0,
  };
}

function post(text) {
  return new Promise((resolve) => {
    const data = JSON.stringify({ from: "5511988887777", text });
    const headers = {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(data),
      authorization: `Bearer ${token}`,
    };
    const req = http.request(
      { host: postUrl.hostname, port: postUrl.port, path: args.path, method: "POST", agent, headers },
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

// One message: its id and scheduled time (performance.now) travel in the text.
async function sendOne(scheduled) {
  const id = ++nextId;
  state.expect.set(id, CLIENTS);
  const error = await post(`b:${id}:${scheduled}`);
  if (error) {
    state.expect.delete(id);
    state.failed += 1;
    if (errors.length < 5) errors.push(error);
  }
}

// An `event` packet of a `message.received` whose text is `b:<id>:<scheduled>`.
function receipt(packet, side) {
  if (!packet.startsWith(EVENT_PACKET) || packet.indexOf(RECEIVED) < 0) return;
  const at = packet.indexOf(TEXT_FIELD);
  if (at < 0) return;
  const start = at + TEXT_FIELD.length;
  const [id, scheduled] = packet.slice(start, packet.indexOf('"', start)).split(":");
  const left = state.expect.get(Number(id));
  if (left === undefined) return;
  const now = performance.now();
  const stamp = packet.indexOf(TIMESTAMP_FIELD) + TIMESTAMP_FIELD.length;
  const committed = Date.parse(packet.slice(stamp, stamp + 24));
  const lag = Date.now() - committed;
  state.commit.all.push(lag);
  state.commit[side].push(lag);
  state.post.push(now - Number(scheduled));
  state.received += 1;
  state.lastReceipt = now;
  state.progress = now;
  if (left <= 1) state.expect.delete(Number(id));
  else state.expect.set(Number(id), left - 1);
}

function lightClient(url, side) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, {
      perMessageDeflate: false,
    });
    ws.on("error", reject);
    ws.on("message", (data) => {
      const packet = data.toString();
      if (packet.startsWith("42")) receipt(packet, side);
      else if (packet === "2") ws.send("3");
      else if (packet.startsWith("0{")) ws.send("40" + JSON.stringify({ token }));
      else if (packet.startsWith("40")) resolve(ws);
      else if (packet.startsWith("44")) reject(new Error(`connect_error: ${packet}`));
    });
  });
}

function connectAll() {
  return Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => {
      const url = urls[i % urls.length];
      return lightClient(url, url === args.post ? "same" : "other");
    }),
  );
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

function percentile(values, pct) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((pct / 100) * sorted.length) - 1)];
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
  return { sent, late: 0 };
}

async function paced(started, deadline) {
  let sent = 0;
  let inFlight = 0;
  let late = 0;
  const pending = [];
  while (performance.now() < deadline) {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    while (sent < due) {
      const scheduled = started + (sent * 1000) / RATE;
      sent += 1;
      if (inFlight >= MAX_IN_FLIGHT) {
        late += 1;
        continue;
      }
      inFlight += 1;
      pending.push(sendOne(scheduled).finally(() => { inFlight -= 1; }));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return { sent, late };
}

function cpuSeconds() {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1e6;
}

async function phase(name) {
  reset();
  const cpu = cpuSeconds();
  const started = performance.now();
  const deadline = started + DURATION_MS;
  const { sent, late } = name === "max" ? await flood(deadline, Infinity) : await paced(started, deadline);
  const sentDone = performance.now();
  const complete = await settled();
  const seconds = (Math.max(state.lastReceipt, sentDone) - started) / 1000;
  const { commit } = state;
  return {
    phase: name,
    messages: sent,
    receipts: state.received,
    expected_receipts: (sent - late - state.failed) * CLIENTS,
    complete,
    late,
    failed: state.failed,
    seconds,
    events_per_s: state.received / seconds,
    commit_p50_ms: percentile(commit.all, 50),
    commit_p99_ms: percentile(commit.all, 99),
    same_p50_ms: percentile(commit.same, 50),
    same_p99_ms: percentile(commit.same, 99),
    other_p50_ms: percentile(commit.other, 50),
    other_p99_ms: percentile(commit.other, 99),
    post_p50_ms: percentile(state.post, 50),
    post_p99_ms: percentile(state.post, 99),
    client_busy: (cpuSeconds() - cpu) / seconds,
  };
}

async function main() {
  const sockets = await connectAll();
  reset();
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
    process.stderr.write(`cluster_fanout: ${err.stack || err}\n`);
    process.exit(1);
  },
);

// Test harness: drives the real socket.io-client v4 against a zapgate server.
//
// Usage: ZG_CLIENT_OPTS='{"auth": {...}, "events": [...]}' node client.mjs <url>
//
// Options (all optional): auth, events (names to report; all if absent),
// exit_after (exit 0 after this many reported events), timeout_ms (default
// 10000; then print {"kind":"timeout"} and exit 3), transports (default
// ["websocket"]), path, query, extra_headers (sent with the handshake, e.g.
// Origin).
//
// stdout: one JSON object per line (connect, connect_error, event, ack,
// disconnect, timeout, error).
// stdin: JSON lines {"emit": name, "args": [...]} or {"close": true}.
//
// stdin EOF is ignored (timeout_ms bounds the run).
//
// Exit codes: 0 close / exit_after / disconnect, 1 bad usage,
// 2 connect_error, 3 timeout.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node client.mjs <url>\n");
  process.exit(1);
}

let opts;
try {
  opts = JSON.parse(process.env.ZG_CLIENT_OPTS || "{}");
} catch (err) {
  process.stderr.write(`invalid ZG_CLIENT_OPTS: ${err.message}\n`);
  process.exit(1);
}

const listed = Array.isArray(opts.events) ? new Set(opts.events) : null;
const exitAfter = Number.isInteger(opts.exit_after) ? opts.exit_after : null;
let received = 0;
let eventsDone = false;
let finishing = false;

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Exit only once stdout has been flushed.
function finish(code, obj) {
  if (finishing) return;
  finishing = true;
  const line = obj === undefined ? "" : JSON.stringify(obj) + "\n";
  process.stdout.write(line, () => process.exit(code));
}

const timer = setTimeout(
  () => finish(3, { kind: "timeout" }),
  opts.timeout_ms ?? 10000,
);

const ioOpts = {
  auth: opts.auth ?? {},
  transports: opts.transports ?? ["websocket"],
  reconnection: false,
};
if (opts.path !== undefined) ioOpts.path = opts.path;
if (opts.query !== undefined) ioOpts.query = opts.query;
if (opts.extra_headers !== undefined) ioOpts.extraHeaders = opts.extra_headers;

const socket = io(url, ioOpts);

socket.on("connect", () => {
  if (!finishing) print({ kind: "connect", id: socket.id });
});

socket.on("connect_error", (err) => {
  finish(2, {
    kind: "connect_error",
    message: err?.message ?? String(err),
    data: err?.data ?? null,
  });
});

socket.on("disconnect", (reason) => {
  // reconnection is off, so nothing more can happen after this.
  finish(0, { kind: "disconnect", reason });
});

socket.onAny((name, ...args) => {
  // A server emit that requests an ack gets an empty ack; the callback
  // itself is not serialisable, so it is dropped from args.
  if (typeof args.at(-1) === "function") args.pop()();
  if (finishing || eventsDone || (listed && !listed.has(name))) return;
  print({ kind: "event", name, args });
  received += 1;
  if (exitAfter !== null && received >= exitAfter) {
    // Defer so a pending "connect" (fired after buffered events) still prints.
    eventsDone = true;
    clearTimeout(timer);
    setImmediate(() => {
      socket.disconnect();
      finish(0);
    });
  }
});

const rl = createInterface({ input: process.stdin });

rl.on("line", (raw) => {
  if (!raw.trim() || finishing) return;
  let cmd;
  try {
    cmd = JSON.parse(raw);
  } catch (err) {
    print({ kind: "error", message: `bad stdin line: ${err.message}` });
    return;
  }
  if (cmd.close) {
    socket.disconnect(); // emits disconnect("io client disconnect") -> exit 0
    finish(0);
  } else if (typeof cmd.emit === "string") {
    const name = cmd.emit;
    socket.emit(name, ...(cmd.args ?? []), (...args) => {
      if (!finishing) print({ kind: "ack", name, args });
    });
  } else {
    print({ kind: "error", message: `unknown command: ${raw}` });
  }
});

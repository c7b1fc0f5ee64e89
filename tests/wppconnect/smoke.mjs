// End-to-end check of zapgate's WPPConnect bridge against real Chromium, driven over
// stdin/stdout exactly like the Python side does (new process group, JSON lines).
//
//   node tests/wppconnect/smoke.mjs [--runs N] [--only fake|offline|kill|sigterm|eof|linkcode|restore] [--chromium PATH]
//
// Scenarios:
//   fake     start with the fake WhatsApp page: qr -> scan -> connected -> send_text (acks 2, 3)
//            -> send_file (image, document, voice, stickers) -> location, contact, react -> receive
//            (text, an image with its bytes, a file too large) -> disconnect/reconnect
//            -> get_host_device -> close (exit 0)
//   offline  start without a fake page (no network): start errors ERR_NAME_NOT_RESOLVED, fatal,
//            exit 1
//   kill     start with the fake page, then SIGKILL the bridge: Chromium must not outlive it
//   sigterm  logged in; logout -> UNPAIRED, new QR, scan again; heartbeat; SIGTERM the group -> exit 0
//   eof      the same, ended by closing stdin -> exit 0
//   linkcode start with a phoneNumber: link_code event (no qr) -> scan -> connected -> close
//   restore  scan, close; start again with the same tokenDir: isLogged, no qr, connected
// After each: no Chromium process using this run's profile directory is left.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const BRIDGE = join(ROOT, 'zapgate', 'engines', 'wppconnect', 'bridge', 'bridge.mjs');
const FAKE_PAGE = join(HERE, 'fake_whatsapp.html');
const ARGS = [
  '--no-sandbox', '--headless=new', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage',
];
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PEER = '5511988887777@c.us';
const WEBP = 'data:image/webp;base64,UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==';
const GIF = 'data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==';

const options = { runs: 1, only: null, chromium: '/usr/bin/chromium', verbose: false };
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  if (arg === '--runs') options.runs = Number(process.argv[++i]);
  else if (arg === '--only') options.only = process.argv[++i];
  else if (arg === '--chromium') options.chromium = process.argv[++i];
  else if (arg === '--verbose' || arg === '-v') options.verbose = true;
  else throw new Error(`unknown argument ${arg}`);
}

function sleep(ms) {
  return new Promise((done) => setTimeout(done, ms));
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

class Bridge {
  constructor(label) {
    this.label = label;
    this.t0 = Date.now();
    this.proc = spawn(process.execPath, [BRIDGE], {
      cwd: dirname(BRIDGE),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // like Python's start_new_session=True
    });
    this.nextId = 1;
    this.pending = new Map();
    this.events = [];
    this.waiters = [];
    this.stderr = [];
    this.badLines = [];
    this.exited = new Promise((done) => this.proc.on('exit', (code, signal) => done({ code, signal })));
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.onLine(line));
    createInterface({ input: this.proc.stderr }).on('line', (line) => {
      this.stderr.push(line);
      if (options.verbose) console.error(`  [${label} stderr] ${line}`);
    });
  }

  ms() {
    return Date.now() - this.t0;
  }

  onLine(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      this.badLines.push(line);
      return;
    }
    if ('id' in message) {
      const pending = this.pending.get(message.id);
      if (pending) {
        this.pending.delete(message.id);
        pending(message);
      }
      return;
    }
    message.at = this.ms();
    this.events.push(message);
    if (options.verbose && message.event !== 'heartbeat') {
      console.error(`  [${this.label} ${message.at} ms] event ${JSON.stringify(message).slice(0, 200)}`);
    }
    for (const waiter of [...this.waiters]) waiter();
  }

  request(method, params = {}, timeout = 60000) {
    const id = this.nextId++;
    this.proc.stdin.write(JSON.stringify({ id, method, params }) + '\n');
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`${method} timed out`)), timeout);
      this.pending.set(id, (message) => {
        clearTimeout(timer);
        done(message);
      });
    });
  }

  async call(method, params, timeout) {
    const message = await this.request(method, params, timeout);
    if (message.error) throw new Error(`${method} failed: ${JSON.stringify(message.error)}`);
    return message.result;
  }

  waitFor(predicate, what, timeout = 30000) {
    return new Promise((done, fail) => {
      const check = () => {
        const found = this.events.find(predicate);
        if (found) {
          this.waiters = this.waiters.filter((w) => w !== check);
          clearTimeout(timer);
          done(found);
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        fail(new Error(`timed out waiting for ${what}; events: ${this.summary()}`));
      }, timeout);
      this.waiters.push(check);
      check();
    });
  }

  summary() {
    return this.events.filter((e) => e.event !== 'heartbeat')
      .map((e) => `${e.event}${e.data?.status ? `:${e.data.status}` : ''}${e.data?.state ? `:${e.data.state}` : ''}@${e.at}`)
      .join(' ');
  }

  async cleanup() {
    this.killGroup('SIGKILL');
    await Promise.race([this.exited, sleep(5000)]);
    const pid = this.events.find((e) => e.event === 'browser')?.data.pid;
    if (pid) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(50);
  }

  killGroup(signal) {
    try {
      process.kill(-this.proc.pid, signal);
    } catch {
      /* gone */
    }
  }
}

function chromiumUsing(dir) {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function noChromiumLeft(dir) {
  for (let i = 0; i < 20; i++) {
    if (!chromiumUsing(dir).length) return;
    await sleep(100);
  }
  const left = chromiumUsing(dir);
  assert(!left.length, `Chromium processes left for ${dir}: ${left.join(' ')}`);
}

async function scenarioFake(run) {
  const tokenDir = mkdtempSync(join(tmpdir(), 'zapgate-wpp-smoke-'));
  const bridge = new Bridge(`fake#${run}`);
  const timings = {};
  try {
    const starting = bridge.request('start', {
      session: `smoke${run}`, tokenDir, executablePath: options.chromium, browserArgs: ARGS,
      headless: true, fakePage: FAKE_PAGE, phoneNumber: null,
    }, 120000);
    const browserEvent = await bridge.waitFor((e) => e.event === 'browser', 'browser event');
    assert(Number.isInteger(browserEvent.data.pid), 'browser event has a pid');
    const qr = await bridge.waitFor((e) => e.event === 'qr', 'qr event');
    timings.qr = qr.at;
    assert(typeof qr.data.raw === 'string' && qr.data.raw.startsWith('2@'), `qr raw: ${qr.data.raw}`);
    assert(qr.data.attempt === 1, `qr attempt ${qr.data.attempt}`);
    const notLogged = bridge.events.findIndex((e) => e.event === 'status_find' && e.data.status === 'notLogged');
    assert(notLogged >= 0 && notLogged < bridge.events.indexOf(qr), 'qr comes once the library waits (after notLogged)');

    const refreshed = await bridge.call('fake', { fn: 'refreshQr', args: [] });
    const qr2 = await bridge.waitFor((e) => e.event === 'qr' && e.data.attempt === 2, 'refreshed qr');
    assert(qr2.data.raw === refreshed && refreshed !== qr.data.raw, 'the refreshed qr is new');

    const scannedAt = bridge.ms();
    assert((await bridge.call('fake', { fn: 'scan', args: [] })) === true, 'scan returns true');
    const answer = await starting;
    assert(!answer.error, `start answered an error: ${JSON.stringify(answer.error)}`);
    assert(answer.result?.connected === true, `start result ${JSON.stringify(answer.result)}`);
    timings.connected = bridge.ms();
    timings.scanToConnected = timings.connected - scannedAt;
    await bridge.waitFor((e) => e.event === 'status_find' && e.data.status === 'qrReadSuccess', 'qrReadSuccess');
    await bridge.waitFor((e) => e.event === 'status_find' && e.data.status === 'inChat', 'inChat');
    await bridge.waitFor((e) => e.event === 'state' && e.data.state === 'CONNECTED', 'state CONNECTED');

    assert((await bridge.call('ping')) === 'pong', 'ping');
    assert((await bridge.call('fake', { fn: 'autoAck', args: [true] })) === true, 'autoAck on');

    const sentAt = bridge.ms();
    const text = await bridge.call('send_text', { to: PEER, text: 'olá, mundo' });
    timings.sendText = bridge.ms() - sentAt;
    assert(/^true_5511988887777@c\.us_3EB0[0-9A-F]{16}$/.test(text.id), `send_text id ${text.id}`);
    await bridge.waitFor((e) => e.event === 'ack' && e.data.id === text.id && e.data.ack === 2, 'ack 2');
    const read = await bridge.waitFor((e) => e.event === 'ack' && e.data.id === text.id && e.data.ack === 3, 'ack 3');
    assert(read.data.to === PEER, `ack to ${read.data.to}`);
    await bridge.waitFor((e) => e.event === 'any_message' && e.data.id === text.id && e.data.fromMe, 'any_message (own)');

    const reply = await bridge.call('send_text', { to: PEER, text: 'a reply', quotedId: text.id });
    const file = await bridge.call('send_file', {
      to: PEER, base64: PNG, filename: 'dot.png', caption: 'a dot', kind: 'image',
    });
    assert(/^true_.*_3EB0/.test(file.id), `send_file id ${file.id}`);
    const doc = await bridge.call('send_file', { to: PEER, base64: PNG, filename: 'dot.png', kind: 'file' });
    const voice = await bridge.call('send_file', {
      to: PEER, base64: 'data:audio/ogg;base64,T2dnUwACAAAAAAAAAAA=', filename: 'v.ogg', kind: 'voice',
    });
    const place = await bridge.call('send_location', { to: PEER, latitude: -23.55, longitude: -46.63, title: 'SP' });
    const card = await bridge.call('send_contact', { to: PEER, contactId: '5511977776666@c.us', name: 'Ana' });
    assert(place.id && card.id && doc.id && voice.id && reply.id, 'other sends return ids');
    const reaction = await bridge.call('react', { messageId: text.id, emoji: '👍' });
    assert(/^reaction_[0-9A-F]{20}$/.test(reaction.id), `react answers a made-up id: ${reaction.id}`);
    const webp = await bridge.call('send_file', { to: PEER, base64: WEBP, kind: 'sticker', quotedId: text.id });
    const converted = await bridge.call('send_file', { to: PEER, base64: PNG, kind: 'sticker' });
    const animated = await bridge.call('send_file', { to: PEER, base64: GIF, kind: 'sticker' });

    const sent = await bridge.call('fake', { fn: 'sent', args: [] });
    const byId = Object.fromEntries(sent.filter((s) => s.id).map((s) => [s.id, s]));
    assert(byId[text.id]?.type === 'chat' && byId[text.id].body === 'olá, mundo', 'sent text recorded');
    assert(byId[reply.id]?.quotedMsgId === text.id, 'reply quotes');
    assert(byId[file.id]?.type === 'image' && byId[file.id].filename === 'dot.png' && byId[file.id].caption === 'a dot', 'image recorded');
    assert(byId[doc.id]?.type === 'document', `file kind -> document (${byId[doc.id]?.type})`);
    assert(byId[voice.id]?.type === 'ptt', `voice -> ptt (${byId[voice.id]?.type})`);
    assert(byId[place.id]?.type === 'location' && byId[place.id].lat === -23.55, 'location recorded');
    assert(byId[card.id]?.type === 'vcard', 'vcard recorded');
    assert(sent.some((s) => s.type === 'reaction' && s.msgId === text.id && s.reaction === '👍'), 'reaction recorded');
    assert(byId[webp.id]?.type === 'sticker' && byId[webp.id].data === WEBP.split(',')[1], 'a WebP sticker is sent as it is');
    assert(byId[webp.id].quotedMsgId === text.id, 'a sticker can quote');
    assert(byId[converted.id]?.type === 'sticker' && byId[converted.id].mimetype === 'image/webp', 'a PNG sticker becomes a WebP (sharp)');
    assert(byId[animated.id]?.type === 'sticker' && byId[animated.id].mimetype === 'image/webp', 'a GIF sticker becomes a WebP (sharp)');

    // errors: permanent for bad input, transient-free
    const badTo = await bridge.request('send_text', { to: 'not-a-number', text: 'x' });
    assert(badTo.error && badTo.error.transient === false, `bad chat id error ${JSON.stringify(badTo.error)}`);
    const badKind = await bridge.request('send_file', { to: PEER, base64: PNG, filename: 'x', kind: 'hologram' });
    assert(badKind.error && badKind.error.transient === false, 'bad kind is permanent');
    const unknown = await bridge.request('frobnicate', {});
    assert(unknown.error && unknown.error.transient === false, 'unknown method is permanent');

    const incomingId = await bridge.call('fake', { fn: 'receive', args: [{ from: PEER, body: 'oi!' }] });
    const message = await bridge.waitFor((e) => e.event === 'message' && e.data.id === incomingId, 'message event');
    assert(message.data.from === PEER && message.data.body === 'oi!' && message.data.fromMe === false, `message ${JSON.stringify(message.data)}`);
    assert(message.data.to === '5511999999999@c.us' && message.data.type === 'chat', 'message to/type');
    assert(Math.abs(message.data.timestamp - Date.now() / 1000) < 60, 'message timestamp in seconds');

    const photoId = await bridge.call('fake', { fn: 'receive', args: [{
      from: PEER, type: 'image', data: PNG.split(',')[1], mimetype: 'image/png', caption: 'look', filename: 'p.png' }] });
    const photo = await bridge.waitFor((e) => e.event === 'message' && e.data.id === photoId, 'image message event');
    assert(photo.data.media?.data === PNG.split(',')[1] && photo.data.body === 'look', `inbound image ${JSON.stringify(photo.data)}`);
    const hugeId = await bridge.call('fake', { fn: 'receive', args: [{
      from: PEER, type: 'document', data: PNG.split(',')[1], size: 1e12 }] });
    const huge = await bridge.waitFor((e) => e.event === 'message' && e.data.id === hugeId, 'huge message event');
    assert(!huge.data.media && huge.data.mediaMissing === 'too_large', `a too large file is left out ${JSON.stringify(huge.data)}`);

    await bridge.call('fake', { fn: 'ack', args: [reply.id, 4] });
    await bridge.waitFor((e) => e.event === 'ack' && e.data.id === reply.id && e.data.ack === 4, 'fake ack 4');

    await bridge.call('fake', { fn: 'react', args: [text.id, '❤️'] });
    await bridge.waitFor((e) => e.event === 'reaction' && e.data.msgId === text.id && e.data.reactionText === '❤️', 'reaction event');
    await bridge.call('fake', { fn: 'revoke', args: [incomingId] });
    await bridge.waitFor((e) => e.event === 'revoked' && e.data.refId === incomingId, 'revoked event');
    await bridge.call('fake', { fn: 'call', args: [{ from: PEER, isVideo: true }] });
    await bridge.waitFor((e) => e.event === 'incoming_call' && e.data.peerJid === PEER && e.data.isVideo, 'incoming_call event');

    const disconnectedAt = bridge.events.length;
    assert((await bridge.call('fake', { fn: 'disconnect', args: [] })) === 'TIMEOUT', 'disconnect');
    await bridge.waitFor((e) => bridge.events.indexOf(e) >= disconnectedAt && e.event === 'state' && e.data.state === 'TIMEOUT', 'state TIMEOUT');
    const offline = await bridge.request('send_text', { to: PEER, text: 'x' });
    assert(offline.error?.transient === true, `send while disconnected: ${JSON.stringify(offline.error)}`);
    await bridge.call('fake', { fn: 'reconnect', args: [] });
    await bridge.waitFor((e) => bridge.events.indexOf(e) >= disconnectedAt && e.event === 'state' && e.data.state === 'CONNECTED', 'state CONNECTED again');

    const device = await bridge.call('get_host_device');
    assert(device.id === '5511999999999@c.us' && device.wid?.user === '5511999999999', `host device ${JSON.stringify(device)}`);
    const exists = await bridge.call('check_number_status', { id: PEER });
    assert(exists.numberExists === true && exists.id?._serialized === PEER, `number status ${JSON.stringify(exists)}`);

    const heartbeats = bridge.events.filter((e) => e.event === 'heartbeat').length;
    const closedAt = bridge.ms();
    assert(JSON.stringify(await bridge.call('close', {}, 15000)) === '{}', 'close answers {}');
    const { code, signal } = await bridge.exited;
    timings.close = bridge.ms() - closedAt;
    assert(code === 0, `exit code ${code} signal ${signal}`);
    assert(!bridge.badLines.length, `non-protocol stdout lines: ${bridge.badLines.slice(0, 3).join(' | ')}`);
    await noChromiumLeft(tokenDir);
    timings.heartbeats = heartbeats;
    return timings;
  } catch (error) {
    console.error(`  stderr tail:\n    ${bridge.stderr.slice(-25).join('\n    ')}`);
    throw error;
  } finally {
    await bridge.cleanup();
    rmSync(tokenDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

async function scenarioOffline(run) {
  const tokenDir = mkdtempSync(join(tmpdir(), 'zapgate-wpp-smoke-'));
  const bridge = new Bridge(`offline#${run}`);
  try {
    const answer = await bridge.request('start', {
      session: `offline${run}`, tokenDir, executablePath: options.chromium, browserArgs: ARGS,
      headless: true, fakePage: null, phoneNumber: null,
    }, 60000);
    const took = bridge.ms();
    assert(answer.error, `start should fail offline, got ${JSON.stringify(answer)}`);
    assert(/ERR_NAME_NOT_RESOLVED/.test(answer.error.message), `error message: ${answer.error.message}`);
    assert(answer.error.transient === true, 'a network error is transient');
    const fatal = await bridge.waitFor((e) => e.event === 'fatal', 'fatal event', 10000);
    assert(/ERR_NAME_NOT_RESOLVED/.test(fatal.data.reason), `fatal reason ${fatal.data.reason}`);
    const { code } = await bridge.exited;
    assert(code === 1, `exit code ${code}`);
    assert(!bridge.badLines.length, `non-protocol stdout lines: ${bridge.badLines.slice(0, 3).join(' | ')}`);
    await noChromiumLeft(tokenDir);
    return { startError: took, exited: bridge.ms() };
  } catch (error) {
    console.error(`  stderr tail:\n    ${bridge.stderr.slice(-25).join('\n    ')}`);
    throw error;
  } finally {
    await bridge.cleanup();
    rmSync(tokenDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

async function scenarioKill(run) {
  const tokenDir = mkdtempSync(join(tmpdir(), 'zapgate-wpp-smoke-'));
  const bridge = new Bridge(`kill#${run}`);
  try {
    bridge.request('start', {
      session: `kill${run}`, tokenDir, executablePath: options.chromium, browserArgs: ARGS,
      headless: true, fakePage: FAKE_PAGE, phoneNumber: null,
    }, 60000).catch(() => null);
    await bridge.waitFor((e) => e.event === 'qr', 'qr event');
    assert(chromiumUsing(tokenDir).length > 0, 'Chromium is running');
    process.kill(bridge.proc.pid, 'SIGKILL'); // only the bridge, not its group
    await bridge.exited;
    const killedAt = Date.now();
    await noChromiumLeft(tokenDir);
    return { chromiumGoneAfter: Date.now() - killedAt };
  } finally {
    await bridge.cleanup();
    rmSync(tokenDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

async function startScanned(bridge, tokenDir, session) {
  const starting = bridge.request('start', {
    session, tokenDir, executablePath: options.chromium, browserArgs: ARGS,
    headless: true, fakePage: FAKE_PAGE, phoneNumber: null,
  }, 120000);
  await bridge.waitFor((e) => e.event === 'qr', 'qr event');
  await bridge.call('fake', { fn: 'scan', args: [] });
  const answer = await starting;
  assert(answer.result?.connected === true, `start answered ${JSON.stringify(answer)}`);
}

// logout from the phone -> UNPAIRED, a new QR, scan again; a heartbeat; then `how` ends it
async function scenarioLifecycle(run, how) {
  const tokenDir = mkdtempSync(join(tmpdir(), 'zapgate-wpp-smoke-'));
  const bridge = new Bridge(`${how}#${run}`);
  try {
    await startScanned(bridge, tokenDir, `life${run}`);
    const mark = bridge.events.length;
    const after = (predicate) => (e) => bridge.events.indexOf(e) >= mark && predicate(e);
    assert(JSON.stringify(await bridge.call('logout')) === '{}', 'logout answers {}');
    await bridge.waitFor(after((e) => e.event === 'state' && e.data.state === 'UNPAIRED'), 'state UNPAIRED');
    await bridge.waitFor(after((e) => e.event === 'status_find' && e.data.status === 'disconnectedMobile'), 'disconnectedMobile');
    const qr = await bridge.waitFor(after((e) => e.event === 'qr'), 'a new qr after logout');
    assert(qr.data.attempt >= 2, `qr attempt after logout ${qr.data.attempt}`);
    const early = await bridge.request('send_text', { to: PEER, text: 'x' });
    assert(early.error && early.error.transient === true, `sending while logged out fails, transient: ${JSON.stringify(early.error)}`);
    await bridge.call('fake', { fn: 'scan', args: [] }); // at once: the qr event means "scan now"
    await bridge.waitFor(after((e) => e.event === 'status_find' && e.data.status === 'notLogged'), 'notLogged again');
    await bridge.waitFor(after((e) => e.event === 'status_find' && e.data.status === 'qrReadSuccess'), 'qrReadSuccess again');
    await bridge.waitFor(after((e) => e.event === 'state' && e.data.state === 'CONNECTED'), 'CONNECTED again');
    const again = await bridge.call('send_text', { to: PEER, text: 'back' });
    assert(again.id, 'send after re-login');
    await bridge.waitFor((e) => e.event === 'heartbeat', 'a heartbeat', 7000);
    const endedAt = Date.now();
    if (how === 'sigterm') bridge.killGroup('SIGTERM');
    else bridge.proc.stdin.end();
    const { code, signal } = await bridge.exited;
    assert(code === 0, `exit after ${how}: code ${code} signal ${signal}`);
    await noChromiumLeft(tokenDir);
    assert(!bridge.badLines.length, `non-protocol stdout lines: ${bridge.badLines.slice(0, 3).join(' | ')}`);
    return { exitAfter: Date.now() - endedAt };
  } catch (error) {
    console.error(`  stderr tail:\n    ${bridge.stderr.slice(-25).join('\n    ')}`);
    throw error;
  } finally {
    await bridge.cleanup();
    rmSync(tokenDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

// pairing by code: start with a phoneNumber -> link_code event -> scan -> connected -> close
async function scenarioLinkCode(run) {
  const tokenDir = mkdtempSync(join(tmpdir(), 'zapgate-wpp-smoke-'));
  const bridge = new Bridge(`linkcode#${run}`);
  try {
    const starting = bridge.request('start', {
      session: `code${run}`, tokenDir, executablePath: options.chromium, browserArgs: ARGS,
      headless: true, fakePage: FAKE_PAGE, phoneNumber: '+55 11 99999-9999',
    }, 60000);
    const code = await bridge.waitFor((e) => e.event === 'link_code', 'link_code event');
    assert(/^[0-9A-F]{4}-[0-9A-F]{4}$/.test(code.data.code), `link code ${code.data.code}`);
    assert(!bridge.events.some((e) => e.event === 'qr'), 'no qr when pairing by code');
    await bridge.call('fake', { fn: 'scan', args: [] });
    const answer = await starting;
    assert(answer.result?.connected === true, `start answered ${JSON.stringify(answer)}`);
    await bridge.call('close', {}, 15000);
    const { code: exitCode } = await bridge.exited;
    assert(exitCode === 0, `exit code ${exitCode}`);
    await noChromiumLeft(tokenDir);
    return { linkCode: code.at, connected: bridge.ms() };
  } catch (error) {
    console.error(`  stderr tail:\n    ${bridge.stderr.slice(-25).join('\n    ')}`);
    throw error;
  } finally {
    await bridge.cleanup();
    rmSync(tokenDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

// a saved login: start, scan, close; start again with the same tokenDir -> isLogged, no qr
async function scenarioRestore(run) {
  const tokenDir = mkdtempSync(join(tmpdir(), 'zapgate-wpp-smoke-'));
  let bridge = new Bridge(`restore#${run}a`);
  try {
    await startScanned(bridge, tokenDir, `restore${run}`);
    await bridge.call('close', {}, 15000);
    assert((await bridge.exited).code === 0, 'first run exits 0');
    await noChromiumLeft(tokenDir);
    bridge = new Bridge(`restore#${run}b`);
    const answer = await bridge.request('start', {
      session: `restore${run}`, tokenDir, executablePath: options.chromium, browserArgs: ARGS,
      headless: true, fakePage: FAKE_PAGE, phoneNumber: null,
    }, 60000);
    assert(answer.result?.connected === true, `restart answered ${JSON.stringify(answer)}`);
    const took = bridge.ms();
    assert(bridge.events.some((e) => e.event === 'status_find' && e.data.status === 'isLogged'), 'isLogged on restart');
    assert(!bridge.events.some((e) => e.event === 'qr'), 'no qr on restart');
    const sent = await bridge.call('send_text', { to: PEER, text: 'still here' });
    assert(sent.id, 'send after restore');
    await bridge.call('close', {}, 15000);
    assert((await bridge.exited).code === 0, 'second run exits 0');
    await noChromiumLeft(tokenDir);
    return { restartToConnected: took };
  } catch (error) {
    console.error(`  stderr tail:\n    ${bridge.stderr.slice(-25).join('\n    ')}`);
    throw error;
  } finally {
    await bridge.cleanup();
    rmSync(tokenDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
}

const scenarios = {
  fake: scenarioFake,
  offline: scenarioOffline,
  kill: scenarioKill,
  sigterm: (run) => scenarioLifecycle(run, 'sigterm'),
  eof: (run) => scenarioLifecycle(run, 'eof'),
  linkcode: scenarioLinkCode,
  restore: scenarioRestore,
};
let failed = 0;
for (let run = 1; run <= options.runs; run++) {
  for (const [name, scenario] of Object.entries(scenarios)) {
    if (options.only && options.only !== name) continue;
    const started = Date.now();
    try {
      const timings = await scenario(run);
      console.log(`ok   ${name} #${run} ${Date.now() - started} ms ${JSON.stringify(timings)}`);
    } catch (error) {
      failed += 1;
      console.log(`FAIL ${name} #${run} ${Date.now() - started} ms: ${error.message}`);
    }
  }
}
console.log(failed ? `${failed} failed` : 'all passed');
process.exit(failed ? 1 : 0);

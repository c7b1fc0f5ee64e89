// zapgate <-> WPPConnect bridge: one WhatsApp Web session per process.
//
// Newline-delimited JSON: requests on stdin, answers and events on stdout (see ../PROTOCOL.md).
// stdout carries protocol lines only; everything else (the library's logs, console output)
// goes to stderr.

// -- stdout is ours alone: set up before the library is loaded ------------------------------
const writeOut = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, encoding, callback) =>
  process.stderr.write(chunk, encoding, callback);
for (const level of ['log', 'info', 'warn', 'debug', 'trace']) {
  console[level] = (...args) => console.error(...args);
}

import { createRequire } from 'node:module';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const wppconnect = require('@wppconnect-team/wppconnect');
// the library's own copies, so the Browser we hand it comes from the puppeteer it uses
const libRequire = createRequire(require.resolve('@wppconnect-team/wppconnect'));
const puppeteer = libRequire('puppeteer');
const puppeteerExtra = libRequire('puppeteer-extra');
const winston = libRequire('winston');

const HEARTBEAT_MS = 5000;
const BROWSER_CLOSE_GRACE_MS = 3000;
const WHATSAPP_URL = 'https://web.whatsapp.com/';
// what the page hands us is bounded before it is passed on (the page is not trusted)
const TEXT_LIMIT = 65536;
const NAME_LIMIT = 255;
const VCARDS_KEPT = 10;
const DEFAULT_MAX_MEDIA_BYTES = 45 * 1024 * 1024;
const DOWNLOAD_TIMEOUT_MS = 60000;

// -- output ----------------------------------------------------------------------------------

function send(message) {
  let line;
  try {
    line = JSON.stringify(message);
  } catch (error) {
    line = JSON.stringify({ ...message, result: undefined, data: undefined,
      error: { message: `unserializable: ${error.message}`, transient: false } });
  }
  writeOut(line + '\n');
}

function emit(event, data = {}) {
  send({ event, data });
}

function log(...args) {
  console.error('[bridge]', ...args);
}

// the library's winston logger: plain text on stderr (its default writes to stdout, coloured)
const LOG_LEVEL = process.env.ZAPGATE_WPP_LOG_LEVEL || 'info';
wppconnect.defaultLogger.configure({
  level: LOG_LEVEL,
  levels: winston.config.npm.levels,
  format: winston.format.combine(
    winston.format((info) => {
      const where = [info.session, info.type].filter(Boolean).join(':');
      delete info.session;
      delete info.type;
      if (where) info.message = `[${where}] ${info.message}`;
      return info;
    })(),
    winston.format.simple(),
  ),
  transports: [
    new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) }),
  ],
});

// -- errors ----------------------------------------------------------------------------------

class BridgeError extends Error {
  constructor(message, { transient = false, code } = {}) {
    super(message);
    this.transient = transient;
    this.code = code;
  }
}

const TRANSIENT = [
  /timed? ?out/i, /timeout/i, /net::ERR_/, /ERR_(NAME|INTERNET|CONNECTION|NETWORK|TIMED)/,
  /Target closed/i, /Session closed/i, /Protocol error/i, /Execution context was destroyed/i,
  /detached/i, /not connected/i, /disconnected/i, /Connection closed/i, /socket hang up/i,
  /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ENOTFOUND/, /offline/i, /not logged/i,
  /WPP is not defined|WAPI is not defined|__fake is (not defined|undefined)/,
  /Cannot read properties of undefined \(reading '(chat|conn|whatsapp)'\)/,
];

function describe(error) {
  if (error instanceof BridgeError) {
    return { message: error.message, transient: error.transient, ...(error.code ? { code: error.code } : {}) };
  }
  let message;
  let code;
  if (error instanceof Error) {
    message = error.message;
    code = error.code;
  } else if (error && typeof error === 'object') {
    // the library throws plain objects too: {erro: true, to, text} / {error, code, message}
    message = error.text || error.message || JSON.stringify(error);
    code = error.code;
  } else {
    message = String(error);
  }
  message = String(message || 'unknown error').split('\n')[0];
  const transient = TRANSIENT.some((pattern) => pattern.test(message));
  return { message, transient, ...(code ? { code: String(code) } : {}) };
}

function bad(message) {
  return new BridgeError(message, { transient: false, code: 'bad_request' });
}

// -- the session -----------------------------------------------------------------------------

const state = {
  started: false,
  client: null,       // the wppconnect Whatsapp object, once create() resolved
  browser: null,      // the puppeteer Browser (ours with a fake page, else the library's)
  page: null,
  fake: false,
  closing: false,
  shuttingDown: null,
  me: null,           // our own WhatsApp id, once logged in
  maxMediaBytes: DEFAULT_MAX_MEDIA_BYTES,
};

// the library launches Chromium through puppeteer-extra: keep hold of what it launches so the
// browser can be closed when create() fails (the library leaves it running)
const extraLaunch = puppeteerExtra.launch.bind(puppeteerExtra);
puppeteerExtra.launch = async (...args) => {
  const browser = await extraLaunch(...args);
  adoptBrowser(browser);
  return browser;
};

function adoptBrowser(browser) {
  state.browser = browser;
  const pid = browser.process()?.pid;
  if (pid) emit('browser', { pid });
  browser.on('disconnected', () => {
    if (!state.closing && state.browser === browser) {
      shutdown(1, 'the browser closed');
    }
  });
}

// a launch that leaves shutdown to us: no puppeteer signal handlers, and Chromium talks over a
// pipe so it ends when this process does, however it ends
function launchOptions(params, profileDir) {
  return {
    executablePath: params.executablePath || undefined,
    headless: params.headless === false ? false : true,
    args: browserArgs(params),
    userDataDir: profileDir,
    pipe: true,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    defaultViewport: { width: 1280, height: 800 },
  };
}

function browserArgs(params) {
  return Array.isArray(params.browserArgs) ? params.browserArgs.map(String) : [];
}

async function openFakePage(params, profileDir) {
  let html;
  try {
    html = readFileSync(params.fakePage, 'utf8');
  } catch (error) {
    throw new BridgeError(`cannot read the fake page ${params.fakePage}: ${error.message}`);
  }
  const browser = await puppeteer.launch(launchOptions(params, profileDir));
  adoptBrowser(browser);
  const pages = await browser.pages();
  const page = pages.length ? pages[0] : await browser.newPage();
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    if (request.isInterceptResolutionHandled()) return;
    const url = request.url();
    if (url === WHATSAPP_URL && request.isNavigationRequest()) {
      request.respond({ status: 200, contentType: 'text/html; charset=utf-8', body: html })
        .catch(() => null);
    } else if (url.startsWith(WHATSAPP_URL)) {
      request.respond({ status: 404, contentType: 'text/plain', body: '' }).catch(() => null);
    } else {
      log(`fake page: aborted ${request.method()} ${url.slice(0, 120)}`);
      request.abort('blockedbyclient').catch(() => null);
    }
  });
  page.on('console', (message) => {
    if (/^Failed to load resource/.test(message.text())) return;
    if (message.type() === 'error' || message.type() === 'warn') {
      log(`page ${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => log(`page error: ${error.message}`));
  return { browser, page };
}

async function start(params) {
  if (state.started) throw bad('the session was already started');
  if (!params || typeof params.session !== 'string' || !params.session) {
    throw bad('start needs a session name');
  }
  if (typeof params.tokenDir !== 'string' || !params.tokenDir) throw bad('start needs a tokenDir');
  const maxMediaBytes = params.maxMediaBytes ?? DEFAULT_MAX_MEDIA_BYTES;
  if (!Number.isSafeInteger(maxMediaBytes) || maxMediaBytes < 0) {
    throw bad('maxMediaBytes must be a whole number of bytes');
  }
  state.started = true;
  state.maxMediaBytes = maxMediaBytes;
  state.fake = Boolean(params.fakePage);
  const profileDir = join(params.tokenDir, 'profile');
  mkdirSync(profileDir, { recursive: true, mode: 0o700 });

  const options = {
    session: params.session,
    folderNameToken: params.tokenDir,
    headless: params.headless === false ? false : true,
    useChrome: false,
    browserArgs: browserArgs(params),
    puppeteerOptions: launchOptions(params, profileDir),
    updatesLog: false,
    disableWelcome: true,
    logQR: false,
    autoClose: 0,
    waitForLogin: true,
    logger: wppconnect.defaultLogger,
    catchQR: (base64Image, asciiQR, attempt, urlCode) => {
      loginEvent('qr', { raw: urlCode, attempt });
    },
    statusFind: (status) => {
      // closing on purpose makes the library report browserClose: not news to the caller
      if (state.closing) return;
      emit('status_find', { status });
      loginStatus(status);
    },
    catchLinkCode: (code) => {
      loginEvent('link_code', { code });
    },
  };
  if (typeof params.phoneNumber === 'string' && params.phoneNumber) {
    options.phoneNumber = params.phoneNumber.replace(/\D/g, '');
  }
  if (state.fake) {
    const { browser, page } = await openFakePage(params, profileDir);
    state.page = page;
    options.browser = browser;
    options.page = page;
    // no pinned WhatsApp version: its request handler would answer the document itself
    options.whatsappVersion = null;
  }

  const client = await wppconnect.create(options);
  if (state.closing) throw new BridgeError('the bridge is closing', { transient: true });
  state.client = client;
  state.page = client.page;
  state.me = wid(await client.getWid().catch(() => null)) || null;
  listen(client);
  const current = await client.getConnectionState().catch(() => null);
  if (current) emit('state', { state: current });
  return { connected: true };
}

// -- events ----------------------------------------------------------------------------------

// A QR (or link code) is shown as soon as WhatsApp Web draws it, but wppconnect only notices a
// scan once waitForLogin() reports `notLogged` and polls; a login that lands before that makes
// the library give up ("Phone not connected"), and after a logout it waits 2 s before polling
// again. So `qr` / `link_code` are passed on only while the library waits for the scan: held
// (latest of each) until `notLogged`, dropped once logged in.
const login = { waiting: false, held: new Map() };
const LOGGED_IN = new Set(['qrReadSuccess', 'isLogged', 'inChat', 'qrReadFail', 'qrReadError',
  'phoneNotConnected', 'autocloseCalled', 'browserClose', 'serverClose']);

function loginEvent(event, data) {
  if (state.closing) return;
  if (login.waiting) emit(event, data);
  else login.held.set(event, data);
}

function loginStatus(status) {
  if (status === 'notLogged') {
    login.waiting = true;
    for (const [event, data] of login.held) emit(event, data);
    login.held.clear();
  } else if (LOGGED_IN.has(status)) {
    login.waiting = false;
    login.held.clear();
  }
}

function wid(value) {
  if (value == null) return value;
  if (typeof value === 'string') return value;
  if (typeof value === 'object') {
    if (typeof value._serialized === 'string') return value._serialized;
    if (value.user && value.server) return `${value.user}@${value.server}`;
  }
  return String(value);
}

const TEXT_TYPES = new Set(['chat']);
const MEDIA_TYPES = new Set(['image', 'video', 'ptv', 'audio', 'ptt', 'document', 'sticker']);
const CONTACT_TYPES = new Set(['vcard', 'multi_vcard']);

function bounded(value, limit = TEXT_LIMIT) {
  return typeof value === 'string' ? value.slice(0, limit) : null;
}

function finite(value) {
  const number = typeof value === 'string' || typeof value === 'number' ? Number(value) : NaN;
  return Number.isFinite(number) ? number : null;
}

// wa-js sendLocationMessage writes `loc` as "name\naddress" (or just one of them)
function place(loc) {
  const text = bounded(loc, 4096);
  if (!text) return { name: null, address: null };
  const cut = text.indexOf('\n');
  if (cut < 0) return { name: text, address: null };
  return { name: text.slice(0, cut) || null, address: text.slice(cut + 1) || null };
}

function vcardsOf(msg, type) {
  if (type === 'vcard') {
    return [{ name: bounded(msg.vcardFormattedName, NAME_LIMIT), vcard: bounded(msg.body) }];
  }
  const list = Array.isArray(msg.vcardList) ? msg.vcardList.slice(0, VCARDS_KEPT) : [];
  return list.map((item) => ({ name: bounded(item?.displayName, NAME_LIMIT), vcard: bounded(item?.vcard) }));
}

// a message as the library serialized it, without its media bytes
function messageData(msg) {
  const type = typeof msg.type === 'string' ? msg.type : 'chat';
  const body = TEXT_TYPES.has(type) ? bounded(msg.body ?? msg.content ?? '') : bounded(msg.caption);
  const data = {
    id: wid(msg.id),
    from: wid(msg.from),
    to: wid(msg.to),
    body,
    type,
    timestamp: finite(msg.timestamp ?? msg.t) ?? 0,
    fromMe: Boolean(msg.fromMe ?? msg.id?.fromMe),
  };
  if (msg.quotedMsgId) data.quotedMsgId = wid(msg.quotedMsgId);
  if (MEDIA_TYPES.has(type)) {
    data.mimetype = bounded(msg.mimetype, NAME_LIMIT);
    data.filename = bounded(msg.filename, NAME_LIMIT);
  }
  if (type === 'location') {
    data.location = { latitude: finite(msg.lat), longitude: finite(msg.lng), ...place(msg.loc) };
  }
  if (CONTACT_TYPES.has(type)) data.vcards = vcardsOf(msg, type);
  return data;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new BridgeError(`${what} timed out`, { transient: true })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// the decoded size of base64 text, counted from the text itself
function decodedSize(base64) {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return Math.floor(base64.length * 3 / 4) - padding;
}

// An inbound media message gets its bytes (the library's downloadMedia: a data URI), unless
// they are larger than maxMediaBytes: then `mediaMissing` says why and there is no `media`.
async function withMedia(data, msg) {
  if (!MEDIA_TYPES.has(data.type)) return data;
  const limit = state.maxMediaBytes;
  const declared = finite(msg.size);
  if (declared !== null && declared > limit) {
    data.mediaMissing = 'too_large';
    return data;
  }
  let uri;
  try {
    uri = await withTimeout(connected().downloadMedia(data.id), DOWNLOAD_TIMEOUT_MS, 'downloadMedia');
  } catch (error) {
    log(`downloadMedia ${data.id} failed: ${describe(error).message}`);
    data.mediaMissing = 'unavailable';
    return data;
  }
  const head = typeof uri === 'string' ? /^data:([^;,]*)((?:;[^;,]*)*);base64,/.exec(uri.slice(0, 512)) : null;
  if (!head) {
    data.mediaMissing = 'unavailable';
    return data;
  }
  const base64 = uri.slice(head[0].length);
  if (decodedSize(base64) > limit) {
    data.mediaMissing = 'too_large';
    return data;
  }
  data.media = {
    data: base64,
    mimetype: data.mimetype || bounded(head[1], NAME_LIMIT) || 'application/octet-stream',
    filename: data.filename,
  };
  return data;
}

// inbound messages are reported in the order they arrived, each with its media
let inboundQueue = Promise.resolve();

function reportInbound(msg) {
  const data = messageData(msg);
  inboundQueue = inboundQueue
    .then(() => withMedia(data, msg))
    .then((full) => emit('message', full))
    .catch((error) => log(`inbound message ${data.id} failed: ${error.stack || error}`));
}

function reactionData(data) {
  const id = wid(data.id);
  const sender = wid(data.sender);
  return {
    id,
    msgId: wid(data.msgId),
    reactionText: bounded(data.reactionText, 64) ?? '',
    sender,
    to: state.me,
    timestamp: finite(data.timestamp) ?? 0,
    fromMe: String(id || '').startsWith('true_') || (Boolean(state.me) && sender === state.me),
  };
}

function guarded(name, fn) {
  return (...args) => {
    try {
      fn(...args);
    } catch (error) {
      log(`${name} listener failed: ${error.stack || error}`);
    }
  };
}

function listen(client) {
  client.onMessage(guarded('onMessage', (msg) => reportInbound(msg)));
  client.onAnyMessage(guarded('onAnyMessage', (msg) => emit('any_message', messageData(msg))));
  client.onAck(guarded('onAck', (ack) => {
    emit('ack', { id: wid(ack.id), ack: Number(ack.ack), to: wid(ack.to) });
  }));
  client.onStateChange(guarded('onStateChange', (value) => emit('state', { state: String(value) })));
  client.onRevokedMessage(guarded('onRevokedMessage', (data) => {
    emit('revoked', { id: wid(data.id), from: wid(data.from), refId: wid(data.refId) });
  }));
  client.onReactionMessage(guarded('onReactionMessage', (data) => emit('reaction', reactionData(data))));
  client.onIncomingCall(guarded('onIncomingCall', (call) => {
    emit('incoming_call', { id: call.id, peerJid: wid(call.peerJid), isVideo: Boolean(call.isVideo),
      offerTime: call.offerTime });
  }));
}

// -- methods ---------------------------------------------------------------------------------

function connected() {
  if (!state.client) {
    throw new BridgeError('WhatsApp Web is not connected', { transient: true, code: 'not_connected' });
  }
  return state.client;
}

function need(params, name, type = 'string') {
  const value = params?.[name];
  if (typeof value !== type || (type === 'string' && !value)) {
    throw bad(`${name} is required`);
  }
  return value;
}

function idOf(result, what) {
  const id = wid(result?.id);
  if (!id) throw new BridgeError(`${what}: WhatsApp Web gave no message id`, { transient: false, code: 'no_id' });
  return { id };
}

// zapgate's kinds; `file` is the old word for a document
const FILE_KINDS = new Set(['document', 'file', 'image', 'video', 'audio', 'voice', 'sticker']);
// sendImageAsSticker converts these with sharp (a 512x512 WebP); a WebP is sent as it is
const STICKER_SOURCES = new Set(['image/png', 'image/jpeg', 'image/jpg']);
const DATA_URI = /^data:([a-zA-Z0-9]+\/[a-zA-Z0-9-.+]+)(?:;[^;,]*)*;base64,/;

function optional(params, name) {
  const value = params?.[name];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw bad(`${name} must be a string`);
  return value;
}

function quoted(params) {
  return optional(params, 'quotedId');
}

async function sendFile(params) {
  const to = need(params, 'to');
  const base64 = need(params, 'base64');
  const head = DATA_URI.exec(base64.slice(0, 512));
  if (!head) throw bad('base64 must be a data URI (data:<mime>;base64,...)');
  const mimetype = head[1].toLowerCase();
  const caption = optional(params, 'caption');
  const quotedMsg = quoted(params);
  const kind = params.kind || 'document';
  if (!FILE_KINDS.has(kind)) {
    throw new BridgeError(`unsupported file kind ${JSON.stringify(kind)}`, { code: 'unsupported' });
  }
  const filename = optional(params, 'filename') || kind;
  const client = connected();
  let result;
  if (kind === 'image') {
    result = await client.sendImageFromBase64(to, base64, filename, caption, quotedMsg);
  } else if (kind === 'voice') {
    result = await client.sendPttFromBase64(to, base64, filename, caption, quotedMsg);
  } else if (kind === 'sticker') {
    result = await sendSticker(client, to, base64, mimetype, quotedMsg);
  } else {
    const type = kind === 'file' ? 'document' : kind;
    const options = { type, filename, caption, quotedMsg };
    if (type === 'audio') options.isPtt = false;
    result = await client.sendFile(to, base64, options);
  }
  return idOf(result, 'send_file');
}

async function sendSticker(client, to, base64, mimetype, quotedMsg) {
  if (mimetype === 'image/webp') {
    return client.sendFile(to, base64, { type: 'sticker', quotedMsg });
  }
  if (mimetype === 'image/gif') {
    return client.sendImageAsStickerGif(to, base64, { quotedMsg });
  }
  if (STICKER_SOURCES.has(mimetype)) {
    return client.sendImageAsSticker(to, base64, { quotedMsg });
  }
  throw bad(`a sticker must be a WebP, PNG, JPEG or GIF image, not ${mimetype}`);
}

async function sendContact(params) {
  const to = need(params, 'to');
  const contactId = need(params, 'contactId');
  const name = optional(params, 'name');
  const quotedMsg = quoted(params);
  const client = connected();
  if (!quotedMsg) return idOf(await client.sendContactVcard(to, contactId, name), 'send_contact');
  // the library's sendContactVcard takes no send options: the same wa-js call, with a reply
  const result = await client.page.evaluate(
    async ({ to, contact, options }) => {
      const sent = await WPP.chat.sendVCardContactMessage(to, contact, options);
      return { id: sent.id, ack: sent.ack };
    },
    { to, contact: { id: contactId, name }, options: { quotedMsg, waitForAck: true } },
  );
  return idOf(result, 'send_contact');
}

const methods = {
  ping: async () => 'pong',

  start,

  send_text: async (params) => {
    const to = need(params, 'to');
    const text = need(params, 'text');
    const client = connected();
    const options = {};
    const quotedMsg = quoted(params);
    if (quotedMsg) options.quotedMsg = quotedMsg;
    if (params.linkPreview === true) options.linkPreview = true;
    return idOf(await client.sendText(to, text, options), 'send_text');
  },

  send_file: sendFile,

  send_location: async (params) => {
    const to = need(params, 'to');
    const lat = finite(params?.latitude);
    const lng = finite(params?.longitude);
    if (lat === null || lng === null || Math.abs(lat) > 90 || Math.abs(lng) > 180) {
      throw bad('latitude and longitude must be numbers within range');
    }
    const options = { lat, lng };
    const name = optional(params, 'name') ?? optional(params, 'title');
    const address = optional(params, 'address');
    const quotedMsg = quoted(params);
    if (name) options.name = name;
    if (address) options.address = address;
    if (quotedMsg) options.quotedMsg = quotedMsg;
    const result = await connected().sendLocation(to, options);
    return idOf(result, 'send_location');
  },

  send_contact: sendContact,

  // a reaction is no message of its own to the library: the answer's id is made up here
  react: async (params) => {
    const messageId = need(params, 'messageId');
    const emoji = params?.emoji ?? '';
    if (typeof emoji !== 'string') throw bad('emoji must be a string');
    const client = connected();
    await client.sendReactionToMessage(messageId, emoji === '' ? false : emoji);
    return { id: `reaction_${randomBytes(10).toString('hex').toUpperCase()}` };
  },

  get_host_device: async () => connected().getHostDevice(),

  check_number_status: async (params) => {
    const id = need(params, 'id');
    return connected().checkNumberStatus(id);
  },

  logout: async () => {
    await connected().logout();
    return {};
  },

  fake: async (params) => {
    if (!state.fake) {
      throw new BridgeError('fake needs a session started with fakePage', { code: 'unsupported' });
    }
    const fn = need(params, 'fn');
    const args = Array.isArray(params.args) ? params.args : [];
    const page = state.page;
    if (!page) throw new BridgeError('the fake page is not open yet', { transient: true, code: 'not_ready' });
    return page.evaluate((fn, args) => {
      if (!window.__fake) throw new Error('window.__fake is undefined (the fake page is not loaded yet)');
      if (typeof window.__fake[fn] !== 'function') throw new Error(`no fake hook ${fn}`);
      return window.__fake[fn](...args);
    }, fn, args);
  },
};

async function handle(request) {
  const { id, method, params } = request;
  const fn = Object.prototype.hasOwnProperty.call(methods, method) ? methods[method] : null;
  try {
    if (method === 'close') {
      await closeBrowser();
      send({ id, result: {} });
      await exit(0);
      return;
    }
    if (!fn) {
      throw new BridgeError(`unknown method ${JSON.stringify(method)}`, { code: 'unsupported' });
    }
    const result = await fn(params || {});
    send({ id, result: result === undefined ? null : result });
  } catch (error) {
    const described = describe(error);
    send({ id, error: described });
    const badStart = error instanceof BridgeError && error.code === 'bad_request';
    if (method === 'start' && !badStart && !state.closing) {
      await shutdown(1, described.message);
    }
  }
}

// -- lifetime --------------------------------------------------------------------------------

async function closeBrowser() {
  state.closing = true;
  const browser = state.browser;
  if (!browser) return;
  const proc = browser.process();
  await Promise.race([
    browser.close().catch(() => null),
    new Promise((resolve) => setTimeout(resolve, BROWSER_CLOSE_GRACE_MS)),
  ]);
  killBrowser(proc);
}

function killBrowser(proc) {
  // puppeteer starts Chromium as the leader of its own process group: end the whole group
  const pid = proc?.pid;
  // once Node has seen it exit, the pid may belong to someone else
  if (!pid || proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

async function exit(code) {
  clearInterval(heartbeat);
  await new Promise((resolve) => writeOut('', resolve));
  process.exit(code);
}

function shutdown(code, reason) {
  if (state.shuttingDown) return state.shuttingDown;
  state.shuttingDown = (async () => {
    if (code !== 0 && reason) emit('fatal', { reason });
    await closeBrowser();
    await exit(code);
  })();
  return state.shuttingDown;
}

process.on('exit', () => killBrowser(state.browser?.process()));
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('SIGHUP', () => shutdown(0));
process.on('uncaughtException', (error) => {
  log(`uncaught: ${error.stack || error}`);
  shutdown(1, `bridge crashed: ${error.message}`);
});

const heartbeat = setInterval(() => emit('heartbeat'), HEARTBEAT_MS);

const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  if (!line.trim()) return;
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    log(`not a JSON line: ${line.slice(0, 200)}`);
    return;
  }
  if (!request || typeof request !== 'object' || request.id === undefined) {
    log(`not a request: ${line.slice(0, 200)}`);
    return;
  }
  handle(request);
});
input.on('close', () => shutdown(0));

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
const LOOKUP_TIMEOUT_MS = 10000;    // a LID sender's phone number, looked up before reporting
const CONTACTS_KEPT = 5000;
const GROUPS_KEPT = 500;
const PARTICIPANTS_KEPT = 1024;
const PARTICIPANTS_CHANGED = 256;   // at most this many ids in one group change
const POLL_OPTIONS_KEPT = 12;
const POLL_OPTION_LIMIT = 100;
const URL_LIMIT = 2048;

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

// wa-js throws WPPError (an Error with a code), but an error crossing page.evaluate keeps only
// its message: the codes zapgate acts on, read back from wa-js's messages
const WPP_CODES = [
  [/^Chat not found for /, 'chat_not_found'],
  [/^Chat \S+ is not a group$/, 'not_a_group'],
  [/^GroupId \S+ not exists$/, 'group_not_exist'],
  [/^You are not admin in /, 'group_you_are_not_admin'],
  [/^Call \S+ not found$/, 'call_not_found'],
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
  code ??= WPP_CODES.find(([pattern]) => pattern.test(message))?.[1];
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
  if (type === 'poll_creation') data.poll = pollOf(msg);
  return data;
}

// a poll as WhatsApp Web's message has it: pollName, pollOptions [{localId, name}], and
// pollSelectableOptionsCount (0: any number of options)
function pollOf(msg) {
  const options = Array.isArray(msg.pollOptions) ? msg.pollOptions.slice(0, POLL_OPTIONS_KEPT) : [];
  return {
    name: bounded(msg.pollName, NAME_LIMIT) ?? '',
    options: options.map((option) => bounded(option?.name, POLL_OPTION_LIMIT)).filter((name) => name),
    selectableCount: finite(msg.pollSelectableOptionsCount) ?? 1,
  };
}

// -- ids -------------------------------------------------------------------------------------

const USER_ID = /^[0-9]{5,20}@(c\.us|lid)$/;
const GROUP_ID = /^[0-9]{5,30}(-[0-9]{5,20})?@g\.us$/;

// a person's chat id (`<number>@c.us` or `<digits>@lid`), without a device part; else null
function userId(value) {
  const id = wid(value);
  if (typeof id !== 'string') return null;
  const plain = id.replace(/:[0-9]+@/, '@').replace(/@s\.whatsapp\.net$/, '@c.us');
  return USER_ID.test(plain) ? plain : null;
}

function groupId(value) {
  const id = wid(value);
  return typeof id === 'string' && GROUP_ID.test(id) ? id : null;
}

// the phone number of a LID (or the LID of a number) as WhatsApp Web knows it: the library's
// getPnLidEntry (for a LID it reads WhatsApp Web's own LID map, no server query)
async function pnLidEntry(client, id) {
  const entry = await withTimeout(client.getPnLidEntry(id), LOOKUP_TIMEOUT_MS, 'getPnLidEntry');
  const contact = entry?.contact || {};
  return {
    lid: userId(entry?.lid),
    phone: userId(entry?.phoneNumber),
    name: bounded(contact.name || contact.pushname || contact.verifiedName || null, NAME_LIMIT),
  };
}

// an inbound message from a LID names the sender's phone number when WhatsApp Web knows it
async function withPhone(data) {
  if (!String(data.from || '').endsWith('@lid')) return data;
  try {
    const { phone } = await pnLidEntry(connected(), data.from);
    if (phone && phone.endsWith('@c.us')) data.fromPhone = phone.split('@')[0];
  } catch (error) {
    log(`the phone number of ${data.from} is unknown: ${describe(error).message}`);
  }
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
    .then(withPhone)
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
    emit('incoming_call', { id: bounded(call.id, NAME_LIMIT), peerJid: userId(call.sender) || userId(call.peerJid),
      isVideo: Boolean(call.isVideo), isGroup: Boolean(call.isGroup), offerTime: finite(call.offerTime) ?? 0 });
  }));
  client.onMessageEdit(guarded('onMessageEdit', (event) => {
    const msg = event?.msg;
    if (!msg) return;
    const type = typeof msg.type === 'string' ? msg.type : 'chat';
    emit('edited', {
      id: wid(msg.id) || bounded(event.id),
      chat: wid(event.chat),
      text: TEXT_TYPES.has(type) ? bounded(msg.body ?? msg.content ?? '') : bounded(msg.caption),
      fromMe: Boolean(msg.fromMe ?? msg.id?.fromMe),
      timestamp: finite(msg.latestEditSenderTimestampMs) ?? (finite(msg.t ?? msg.timestamp) ?? 0) * 1000,
    });
  }));
  client.onPollResponse(guarded('onPollResponse', (vote) => reportVote(vote)));
}

// wa-js hands the chosen options as a sparse array of the poll's options ({localId, name}) by
// local id; a bare local id is looked up in the poll message
async function voteData(vote) {
  const picked = Array.isArray(vote.selectedOptions) ? vote.selectedOptions.slice(0, 64) : [];
  let options = null;
  const names = [];
  for (const option of picked) {
    if (option && typeof option === 'object' && typeof option.name === 'string') {
      names.push(option.name);
    } else if (typeof option === 'number') {
      options ??= await pollOptions(wid(vote.msgId));
      const found = options.find((candidate) => candidate?.localId === option);
      if (found && typeof found.name === 'string') names.push(found.name);
    }
  }
  return {
    msgId: wid(vote.msgId),
    chatId: wid(vote.chatId),
    sender: userId(vote.sender),
    selected: names.slice(0, POLL_OPTIONS_KEPT).map((name) => name.slice(0, POLL_OPTION_LIMIT)),
    timestampMs: finite(vote.timestamp) ?? 0,
  };
}

async function pollOptions(id) {
  try {
    const msg = await withTimeout(connected().getMessageById(id), LOOKUP_TIMEOUT_MS, 'getMessageById');
    return Array.isArray(msg?.pollOptions) ? msg.pollOptions.slice(0, 64) : [];
  } catch (error) {
    log(`poll ${id} not found: ${describe(error).message}`);
    return [];
  }
}

function reportVote(vote) {
  inboundQueue = inboundQueue
    .then(() => voteData(vote))
    .then((data) => { if (data.msgId && data.sender) emit('poll_vote', data); })
    .catch((error) => log(`poll vote failed: ${error.stack || error}`));
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

// -- the directory: contacts, numbers, LIDs, groups, read receipts ----------------------------

function limitOf(params, most) {
  const limit = params?.limit ?? most;
  if (!Number.isSafeInteger(limit) || limit < 1) throw bad('limit must be a positive whole number');
  return Math.min(limit, most);
}

function ids(params, name) {
  const list = params?.[name];
  if (!Array.isArray(list) || list.length === 0 || list.length > PARTICIPANTS_CHANGED) {
    throw bad(`${name} must list 1-${PARTICIPANTS_CHANGED} ids`);
  }
  return list.map((id) => {
    const user = typeof id === 'string' && USER_ID.test(id) ? id : null;
    if (!user) throw bad(`${name}: ${JSON.stringify(String(id).slice(0, 40))} is not <number>@c.us or <digits>@lid`);
    return user;
  });
}

function needGroup(params) {
  const id = groupId(need(params, 'groupId'));
  if (!id) throw bad('groupId must be a group id (...@g.us)');
  return id;
}

// the address book (the library's getAllContacts: every contact WhatsApp Web holds, of which
// the account's own are `isMyContact`); each with its counterpart id from WhatsApp Web's LID map
async function contacts(params) {
  const limit = limitOf(params, CONTACTS_KEPT);
  const client = connected();
  const all = await client.getAllContacts();
  const people = [];
  for (const contact of Array.isArray(all) ? all : []) {
    if (people.length >= limit) break;
    const id = contact?.isMyContact === true ? userId(contact.id) : null;
    if (!id) continue;
    const name = contact.name || contact.formattedName || contact.pushname || null;
    people.push({ id, name: bounded(name, NAME_LIMIT) });
  }
  const counterparts = await client.page.evaluate((list) => list.map((id) => {
    // WhatsApp Web's own cache of LID <-> phone number pairs: no server query
    try {
      const f = WPP.whatsapp.functions;
      const w = WPP.whatsapp.WidFactory.createWid(id);
      const other = id.endsWith('@lid') ? f.getPhoneNumber?.(w) : f.getCurrentLid?.(w);
      return other ? String(other._serialized || other) : null;
    } catch (error) {
      return null;
    }
  }), people.map((person) => person.id));
  return people.map((person, index) => {
    const other = userId(Array.isArray(counterparts) ? counterparts[index] : null);
    const lid = person.id.endsWith('@lid') ? person.id : other?.endsWith('@lid') ? other : null;
    const phone = person.id.endsWith('@c.us') ? person.id : other?.endsWith('@c.us') ? other : null;
    return { phone, lid, name: person.name };
  });
}

// who a number or LID is: a number by the library's checkNumberStatus (its canonical id, e.g. a
// Brazilian number with or without the ninth digit), then getPnLidEntry for the other id
async function lookup(params) {
  const id = userId(need(params, 'id'));
  if (!id) throw bad('id must be <number>@c.us or <digits>@lid');
  const client = connected();
  if (id.endsWith('@lid')) {
    const entry = await pnLidEntry(client, id);
    if (!entry.phone) return null;
    return { phone: entry.phone, lid: id, name: entry.name, exists: true };
  }
  const status = await client.checkNumberStatus(id);
  if (!status || status.numberExists !== true) return { phone: id, lid: null, name: null, exists: false };
  const canonical = userId(status.id) || id;
  let entry = { lid: null, name: null };
  try {
    entry = await pnLidEntry(client, canonical);
  } catch (error) {
    log(`no LID for ${canonical}: ${describe(error).message}`);
  }
  return { phone: canonical, lid: entry.lid, name: entry.name, exists: true };
}

async function profilePicture(params) {
  const id = userId(need(params, 'id'));
  if (!id) throw bad('id must be <number>@c.us or <digits>@lid');
  const picture = await connected().getProfilePicFromServer(id);
  const url = [picture?.imgFull, picture?.eurl, picture?.img]
    .find((candidate) => typeof candidate === 'string' && candidate.startsWith('https://'));
  return { url: url && url.length <= URL_LIMIT ? url : null };
}

// a serialized group chat (the library's WAPI._serializeChatObj) in the protocol's words
function groupOf(chat) {
  const id = groupId(chat?.id);
  const meta = chat?.groupMetadata;
  if (!id || !meta || typeof meta !== 'object') return null;
  const participants = [];
  for (const member of Array.isArray(meta.participants) ? meta.participants : []) {
    if (participants.length >= PARTICIPANTS_KEPT) break;
    const who = userId(member?.id);
    if (who) {
      participants.push({ id: who, admin: Boolean(member.isAdmin || member.isSuperAdmin),
        owner: Boolean(member.isSuperAdmin) });
    }
  }
  const name = meta.subject ?? chat.name ?? chat.formattedTitle;
  return { id, name: bounded(typeof name === 'string' ? name : '', NAME_LIMIT), owner: userId(meta.owner),
    creation: finite(meta.creation) ?? 0, participants };
}

function isMember(group) {
  return Boolean(state.me) && group.participants.some((member) => member.id === state.me);
}

function groupNotFound(id) {
  return new BridgeError(`the account is not in group ${id}`, { code: 'group_not_found' });
}

// one group the account is in (the library's getChatById; a group whose metadata WhatsApp Web
// has not loaded yet is loaded by getGroupMembersIds, which also says when it is no group)
async function groupInfo(client, id) {
  let group = groupOf(await client.getChatById(id));
  if (!group) {
    await client.getGroupMembersIds(id);
    group = groupOf(await client.getChatById(id));
  }
  if (!group || !isMember(group)) throw groupNotFound(id);
  return group;
}

async function groups(params) {
  const limit = limitOf(params, GROUPS_KEPT);
  const chats = await connected().getAllGroups(false);
  const found = [];
  for (const chat of Array.isArray(chats) ? chats : []) {
    if (found.length >= limit) break;
    const group = groupOf(chat);
    if (group && isMember(group)) found.push(group);
  }
  return found;
}

// the participants not on WhatsApp (checkNumberStatus), or LIDs nobody knows; the others by
// their canonical ids
async function reachable(client, participants) {
  const canonical = [];
  const missing = [];
  for (const id of participants) {
    const person = await lookup({ id });
    if (person && person.exists) {
      canonical.push(id.endsWith('@lid') ? id : person.phone);
    } else {
      missing.push(id);
    }
  }
  if (missing.length) {
    throw new BridgeError(`not on WhatsApp: ${missing.map((id) => id.split('@')[0]).join(', ')}`,
      { code: 'not_on_whatsapp' });
  }
  return [...new Set(canonical)];
}

async function createGroup(params) {
  const name = need(params, 'name');
  if (name.length > 100) throw bad('name must be at most 100 characters');
  const participants = ids(params, 'participants');
  const client = connected();
  const members = await reachable(client, participants);
  const created = await client.createGroup(name, members);
  const id = groupId(created?.gid);
  if (!id) throw new BridgeError('createGroup: WhatsApp Web gave no group id', { code: 'no_id' });
  return groupInfo(client, id);
}

// which of `wanted` are members of `group`, matched by either id (a group may list LIDs):
// a map of each such id to the id the group lists
async function membersAmong(client, group, wanted) {
  const present = new Set(group.participants.map((member) => member.id));
  const found = new Map();
  for (const id of wanted) {
    if (present.has(id)) {
      found.set(id, id);
      continue;
    }
    const entry = await pnLidEntry(client, id).catch(() => ({}));
    const other = id.endsWith('@lid') ? entry.phone : entry.lid;
    if (other && present.has(other)) found.set(id, other);
  }
  return found;
}

async function addParticipants(params) {
  const id = needGroup(params);
  const wanted = ids(params, 'participants');
  const client = connected();
  const group = await groupInfo(client, id);
  const members = await reachable(client, wanted);
  const already = await membersAmong(client, group, members);
  const fresh = members.filter((member) => !already.has(member));
  if (fresh.length === 0) return group;
  const result = await client.addParticipant(id, fresh);
  for (const [who, answer] of Object.entries(result && typeof result === 'object' ? result : {})) {
    const code = finite(answer?.code);
    if (code !== null && code >= 400) log(`adding ${who.slice(0, 40)} to ${id}: code ${code}`);
  }
  return groupInfo(client, id);
}

async function removeParticipants(params) {
  const id = needGroup(params);
  const wanted = ids(params, 'participants');
  const client = connected();
  const group = await groupInfo(client, id);
  const members = [...new Set((await membersAmong(client, group, wanted)).values())];
  if (state.me && (members.includes(state.me) || wanted.includes(state.me))) {
    throw new BridgeError('the account cannot remove itself: leave the group instead', { code: 'not_allowed' });
  }
  if (members.length === 0) return group;
  await client.removeParticipant(id, members);
  return groupInfo(client, id);
}

async function leaveGroup(params) {
  const id = needGroup(params);
  const client = connected();
  await groupInfo(client, id);
  await client.leaveGroup(id);
  return {};
}

// -- acting on messages and chats ------------------------------------------------------------

const PRESENCE = {
  typing: (client, chat) => client.startTyping(chat),
  recording: (client, chat) => client.startRecording(chat),
  paused: (client, chat) => client.stopTyping(chat),   // wa-js markIsPaused ends either
};

async function sendPoll(params) {
  const to = need(params, 'to');
  const name = need(params, 'name');
  const options = params?.options;
  if (!Array.isArray(options) || options.length < 2 || options.length > POLL_OPTIONS_KEPT
    || !options.every((option) => typeof option === 'string' && option && option.length <= POLL_OPTION_LIMIT)
    || new Set(options).size !== options.length) {
    throw bad(`options must be 2-${POLL_OPTIONS_KEPT} different texts of 1-${POLL_OPTION_LIMIT} characters`);
  }
  const selectableCount = params?.selectableCount ?? 1;
  if (!Number.isSafeInteger(selectableCount) || selectableCount < 0 || selectableCount > options.length) {
    throw bad('selectableCount must be 0 (any) up to the number of options');
  }
  const sendOptions = { selectableCount };
  const quotedMsg = quoted(params);
  if (quotedMsg) sendOptions.quotedMsg = quotedMsg;
  return idOf(await connected().sendPollMessage(to, name, options, sendOptions), 'send_poll');
}

// the library's deleteMessage(chat, id, onlyLocal=false) drops wa-js's answer, and wa-js
// deletes only locally what it may not revoke: the same wa-js call, with its answer checked
async function revokeMessage(params) {
  const chatId = need(params, 'chatId');
  const id = need(params, 'id');
  const result = await connected().page.evaluate(async ({ chatId, id }) => {
    const answer = await WPP.chat.deleteMessage(chatId, id, true, true);
    const one = Array.isArray(answer) ? answer[0] : answer;
    return { isRevoked: Boolean(one?.isRevoked), isSentByMe: Boolean(one?.isSentByMe) };
  }, { chatId, id });
  if (!result?.isRevoked) {
    throw new BridgeError('WhatsApp Web did not delete the message for everyone (not sent by this account, or gone already)',
      { code: 'not_revoked' });
  }
  return {};
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

  send_poll: sendPoll,

  edit_message: async (params) => {
    const id = need(params, 'id');
    const text = need(params, 'text');
    // the library reads the message back and throws unless its text is the new one
    const result = await connected().editMessage(id, text);
    return { id: wid(result?.id) || id };
  },

  revoke_message: revokeMessage,

  presence: async (params) => {
    const chatId = need(params, 'chatId');
    const show = Object.prototype.hasOwnProperty.call(PRESENCE, params.state) ? PRESENCE[params.state] : null;
    if (!show) throw bad('state must be typing, recording or paused');
    await show(connected(), chatId);
    return {};
  },

  // an id always: the library's rejectCall without one rejects every call
  reject_call: async (params) => {
    const id = need(params, 'id');
    return { rejected: Boolean(await connected().rejectCall(id)) };
  },

  contacts,
  lookup,
  profile_picture: profilePicture,
  groups,
  group: async (params) => groupInfo(connected(), needGroup(params)),
  create_group: createGroup,
  add_participants: addParticipants,
  remove_participants: removeParticipants,
  leave_group: leaveGroup,

  mark_read: async (params) => {
    await connected().sendSeen(need(params, 'chatId'));
    return {};
  },

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

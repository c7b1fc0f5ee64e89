// The REST API and the live event stream, with the key this tab signed in with.
// The key lives in sessionStorage (this tab only, gone when it closes), never in a URL.

const STORE = 'zapgate.key';

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => sessionStorage.getItem(STORE),
  set: (value) => sessionStorage.setItem(STORE, value),
  clear: () => sessionStorage.removeItem(STORE),
};

/** Called when the key is refused (revoked, expired): the app signs out. */
export const refused = new EventTarget();

function headers(extra) {
  return { Authorization: `Bearer ${key.get()}`, Accept: 'application/json', ...extra };
}

/** A JSON call; resolves to the body (null for 204), rejects with an ApiError. */
export async function call(method, path, body) {
  const init = { method, headers: headers(), cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: 'bad_response', detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    if (response.status === 401) refused.dispatchEvent(new Event('refused'));
    throw new ApiError(response.status, data && data.error, data && data.detail);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);

/** Path segments, encoded. */
export const path = (...parts) => parts.map(encodeURIComponent).join('/');

function parse(block) {
  const frame = { id: null, data: [] };
  for (const line of block.split('\n')) {
    if (line.startsWith('id:')) frame.id = line.slice(3).trim();
    else if (line.startsWith('data:')) frame.data.push(line.slice(5).trimStart());
  }
  if (frame.id === null || !frame.data.length) return null;
  return JSON.parse(frame.data.join('\n'));
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

/**
 * Follow the event log after `after` (Server-Sent Events read with fetch, so the key goes in a
 * header, not the URL). On a dropped connection it comes back with backoff and resumes after the
 * last event it gave: nothing is missed, nothing repeated.
 */
export async function follow(after, onEvent, onState, signal) {
  let last = after;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const response = await fetch(`/api/v1/events?after=${last}`, {
        headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', signal,
      });
      if (response.status === 401) {
        refused.dispatchEvent(new Event('refused'));
        return;
      }
      if (!response.ok) throw new ApiError(response.status);
      onState(true);
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, '\n');
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const event = parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (event && event.seq > last) {
            last = event.seq;
            onEvent(event);
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    onState(false);
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 5000);
  }
}

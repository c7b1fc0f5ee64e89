// One event stream per tab, shared by every page: pages subscribe while they are shown.
import { useCallback, useEffect, useRef, useState } from './htm-preact.module.js';
import { follow } from './api.js';

const hub = new EventTarget();
const RATE_WINDOW_MS = 60000;
const KEPT = 500;
const recent = [];
const seen = { in: [], out: [] };
let connected = false;

/** Start following the log after `after`; returns the function that stops it. */
export function start(after) {
  recent.length = 0; // what another key saw in this tab is not this one's to see
  seen.in.length = 0;
  seen.out.length = 0;
  const control = new AbortController();
  follow(after, publish, (on) => {
    connected = on;
    hub.dispatchEvent(new CustomEvent('state', { detail: on }));
  }, control.signal);
  return () => control.abort();
}

function publish(event) {
  const now = Date.now();
  if (event.type === 'message.received') seen.in.push(now);
  if (event.type === 'message.sent') seen.out.push(now);
  recent.unshift(event);
  if (recent.length > KEPT) recent.pop();
  hub.dispatchEvent(new CustomEvent('event', { detail: event }));
}

/** The newest events this tab has seen (at most 500), newest first. */
export const seenEvents = () => recent.slice();

/** Messages received and sent in the last minute (as this tab saw them). */
export function perMinute() {
  const since = Date.now() - RATE_WINDOW_MS;
  for (const list of [seen.in, seen.out]) {
    while (list.length && list[0] < since) list.shift();
  }
  return { in: seen.in.length, out: seen.out.length };
}

/** Call `handler(event)` for every live event while the component is shown. */
export function useLive(handler) {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => {
    const listener = (e) => latest.current(e.detail);
    hub.addEventListener('event', listener);
    return () => hub.removeEventListener('event', listener);
  }, []);
}

/** Whether the stream is connected now. */
export function useConnected() {
  const [on, setOn] = useState(connected);
  useEffect(() => {
    const listener = (e) => setOn(e.detail);
    hub.addEventListener('state', listener);
    return () => hub.removeEventListener('state', listener);
  }, []);
  return on;
}

/** Run `work` now and every `ms` while shown (a poll for what has no event). */
export function useEvery(ms, work) {
  const latest = useRef(work);
  latest.current = work;
  useEffect(() => {
    latest.current();
    const timer = setInterval(() => latest.current(), ms);
    return () => clearInterval(timer);
  }, [ms]);
}

/** `work`, run at most once per `ms` however often it is asked for (the last ask is kept). */
export function useThrottled(ms, work) {
  const state = useRef({ work, timer: null, last: 0 });
  state.current.work = work;
  useEffect(() => () => clearTimeout(state.current.timer), []);
  return useCallback(() => {
    const s = state.current;
    if (s.timer) return;
    const wait = Math.max(0, s.last + ms - Date.now());
    s.timer = setTimeout(() => {
      s.timer = null;
      s.last = Date.now();
      s.work();
    }, wait);
  }, [ms]);
}

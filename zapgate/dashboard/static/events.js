// The live event monitor: filter by type and session, pause, jump to a seq (a replay from the
// log), and after a reconnect the stream resumes where it stopped.
import { html, useState } from './htm-preact.module.js';
import { get } from './api.js';
import { seenEvents, useLive } from './live.js';
import { Problem } from './ui.js';

const KEEP = 500;
const TYPES = ['session.status', 'session.qr', 'session.health', 'message.received',
  'message.queued', 'message.sent', 'message.status', 'message.edited', 'message.revoked',
  'message.poll_vote', 'call.received', 'webhook.disabled'];

function summary(event) {
  const p = event.payload || {};
  if (event.type.startsWith('message.')) {
    return [p.direction, p.status, p.from && `from ${p.from}`, p.to && `to ${p.to}`, p.text]
      .filter(Boolean).join(' · ');
  }
  if (event.type === 'session.qr') return 'a new QR code';
  return JSON.stringify(p).slice(0, 160);
}

export function Events() {
  const [events, setEvents] = useState(seenEvents);
  const [held, setHeld] = useState([]);
  const [paused, setPaused] = useState(false);
  const [type, setType] = useState('');
  const [session, setSession] = useState('');
  const [seq, setSeq] = useState('');
  const [error, setError] = useState(null);
  useLive((event) => {
    if (paused) setHeld((list) => [event, ...list].slice(0, KEEP));
    else setEvents((list) => [event, ...list].slice(0, KEEP));
  });
  const resume = () => {
    setEvents((list) => [...held, ...list].slice(0, KEEP));
    setHeld([]);
    setPaused(false);
  };
  const jump = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const after = Math.max(0, Number(seq) - 1);
      const page = await get(`/api/v1/events?after=${after}&limit=200`);
      setEvents(page.data.reverse());
    } catch (failure) {
      setError(failure);
    }
  };
  const shown = events.filter((e) => (!type || e.type === type) && (!session || e.session === session));
  return html`<h2>Events</h2>
    <form class="row card" onSubmit=${jump} aria-label="Event filters">
      <label>Type <select value=${type} onChange=${(e) => setType(e.target.value)}>
        <option value="">all</option>${TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
      <label>Session <input value=${session} onInput=${(e) => setSession(e.target.value)} /></label>
      <label>From seq <input type="number" min="1" value=${seq} onInput=${(e) => setSeq(e.target.value)} /></label>
      <button type="submit" disabled=${!seq}>Jump</button>
      ${paused ? html`<button type="button" onClick=${resume}>Resume (${held.length} new)</button>`
        : html`<button type="button" onClick=${() => setPaused(true)}>Pause</button>`}
    </form>
    <${Problem} error=${error} />
    <table aria-label="Events">
      <thead><tr><th>seq</th><th>time</th><th>type</th><th>session</th><th>channel</th><th>what</th></tr></thead>
      <tbody>${shown.map((e) => html`<tr key=${e.seq}>
        <td>${e.seq}</td><td>${new Date(e.timestamp).toLocaleTimeString()}</td>
        <td class="mono">${e.type}</td><td>${e.session || ''}</td><td>${e.channel || ''}</td>
        <td>${summary(e)}</td></tr>`)}
      </tbody>
    </table>
    ${!shown.length && html`<p class="muted">Waiting for events…</p>`}`;
}

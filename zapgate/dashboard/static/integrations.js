// Integrations (admins): event sinks (RabbitMQ, NATS, Redis) and each session's Chatwoot mirror
// and bot, with their backlogs and deliveries; a sink paused, resumed, replayed or removed; a
// bot's chats that a human took over, given back to the bot.
import { html, useState } from './htm-preact.module.js';
import { call, get, path, post } from './api.js';
import { useEvery } from './live.js';
import { Action, Confirmed, Problem, Status, seconds, when } from './ui.js';
import { Deliveries } from './webhooks.js';

const sinkAt = (id) => `/api/v1/sinks/${path(id)}`;
const integrationAt = (shown) =>
  `/api/v1/sessions/${path(shown.session)}/integrations/${path(shown.kind)}`;

function target(sink) {
  if (!sink) return '';
  if (sink.type === 'rabbitmq') return `exchange ${sink.exchange} · routing key ${sink.routing_key}`;
  if (sink.type === 'nats') return `stream ${sink.stream} · subject ${sink.subject}`;
  return `stream ${sink.stream} · about ${sink.maxlen} entries`;
}

function Figures({ shown }) {
  const lag = shown.pending ? seconds(shown.lag_seconds) : '0 s';
  return html`<p>${`Pending ${shown.pending} · failed ${shown.failed} · lag ${lag}`}</p>`;
}

function Sink({ shown, sink, onChanged }) {
  const [open, setOpen] = useState(false);
  const [since, setSince] = useState('');
  const [replayed, setReplayed] = useState(null);
  const at = sinkAt(shown.id);
  return html`<article class="card" aria-label=${`Sink ${shown.kind} ${shown.url}`}>
    <div class="row spread">
      <h3 class="mono">${shown.kind} · ${shown.url}</h3>
      <${Status} value=${shown.active ? 'active' : 'disabled'} />
    </div>
    <p class="muted">${[shown.id, target(sink), `events: ${sink && sink.events.length ? sink.events.join(', ') : 'all'}`,
      shown.disabled_reason].filter(Boolean).join(' · ')}</p>
    <${Figures} shown=${shown} />
    <p class="row">
      <button type="button" aria-expanded=${open} onClick=${() => setOpen(!open)}>
        ${open ? 'Hide deliveries' : 'Deliveries'}</button>
      <${Action} label=${shown.active ? 'Pause' : 'Resume'} action=${async () => {
        await call('PATCH', at, { active: !shown.active });
        onChanged();
      }} />
      <${Confirmed} label="Delete" action=${async () => { await call('DELETE', at); onChanged(); }} />
    </p>
    <div class="row">
      <label>Publish again events since <input type="datetime-local" value=${since}
        onInput=${(e) => setSince(e.target.value)} /></label>
      <${Action} label="Replay" disabled=${!since} action=${async () => {
        setReplayed((await post(`${at}/replay`, { since: new Date(since).toISOString() })).replayed);
        onChanged();
      }} />
      ${replayed !== null && html`<span role="status">${replayed} queued again</span>`}
    </div>
    ${open && html`<${Deliveries} hook=${shown} at=${at} onChanged=${onChanged} />`}
  </article>`;
}

function TakenOver({ shown }) {
  const [chats, setChats] = useState(null);
  const [error, setError] = useState(null);
  const at = integrationAt(shown);
  const load = () => get(`${at}/chats`).then((p) => (setChats(p.data), setError(null)), setError);
  useEvery(3000, load);
  if (!chats || (!chats.length && !error)) return null;
  return html`<div>
    <${Problem} error=${error} />
    <table aria-label=${`Chats taken over from the bot of ${shown.session}`}>
      <thead><tr><th>chat (a human answers)</th><th>since</th><th></th></tr></thead>
      <tbody>${chats.map((c) => html`<tr key=${c.chat}>
        <td class="mono">${c.chat}</td><td>${when(c.paused_at)}</td>
        <td><${Action} label="Give back to the bot" action=${async () => {
          await post(`${at}/chats/${path(c.chat)}/resume`);
          await load();
        }} /></td></tr>`)}</tbody>
    </table>
  </div>`;
}

function Integration({ shown, onChanged }) {
  const [open, setOpen] = useState(false);
  const at = integrationAt(shown);
  const name = shown.kind === 'bot' ? 'Bot' : 'Chatwoot';
  return html`<article class="card" aria-label=${`${name} of ${shown.session}`}>
    <div class="row spread">
      <h3>${name} of session <span class="mono">${shown.session}</span></h3>
      <${Status} value=${shown.active ? 'active' : 'disabled'} />
    </div>
    <p class="muted mono">${shown.url}${shown.disabled_reason && ` · ${shown.disabled_reason}`}</p>
    <${Figures} shown=${shown} />
    <p class="row">
      <button type="button" aria-expanded=${open} onClick=${() => setOpen(!open)}>
        ${open ? 'Hide deliveries' : 'Deliveries'}</button>
      <${Confirmed} label="Delete" action=${async () => { await call('DELETE', at); onChanged(); }} />
    </p>
    ${shown.kind === 'bot' && html`<${TakenOver} shown=${shown} />`}
    ${open && html`<${Deliveries} hook=${shown} at=${at} retry=${false} onChanged=${onChanged} />`}
  </article>`;
}

export function Integrations() {
  const [shown, setShown] = useState(null);
  const [sinks, setSinks] = useState({});
  const [error, setError] = useState(null);
  const load = async () => {
    try {
      const [overview, list] = await Promise.all([get('/api/v1/overview'), get('/api/v1/sinks')]);
      setShown(overview.integrations || []);
      setSinks(Object.fromEntries(list.map((s) => [s.id, s])));
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  };
  useEvery(3000, load);
  const all = shown || [];
  const sessionBound = all.filter((s) => s.session !== null);
  const brokers = all.filter((s) => s.session === null);
  return html`<h2>Integrations</h2>
    <${Problem} error=${error} />
    ${shown === null && !error && html`<p role="status">Loading…</p>`}
    <h3>Event sinks</h3>
    ${brokers.map((s) => html`<${Sink} key=${s.id} shown=${s} sink=${sinks[s.id]} onChanged=${load} />`)}
    ${shown && !brokers.length && html`<p class="muted">No sinks: <code>POST /api/v1/sinks</code> adds one.</p>`}
    <h3>Chatwoot and bots</h3>
    ${sessionBound.map((s) => html`<${Integration} key=${s.id} shown=${s} onChanged=${load} />`)}
    ${shown && !sessionBound.length && html`<p class="muted">None: <code>PUT /api/v1/sessions/{session}/integrations/chatwoot</code> or <code>.../bot</code> adds one.</p>`}`;
}

// Webhooks (admins): subscriptions with their backlog, each one's deliveries with attempts and
// the receiver's answers, retry, replay since a time, pause/resume, rotate the secret.
import { html, useState } from './htm-preact.module.js';
import { call, get, path, post } from './api.js';
import { useEvery } from './live.js';
import { Action, Confirmed, Problem, Status, seconds, when } from './ui.js';

const base = (id) => `/api/v1/webhooks/${path(id)}`;

function Attempts({ delivery }) {
  const last = delivery.attempt_log[delivery.attempt_log.length - 1];
  if (!last) return html`<span class="muted">none yet</span>`;
  const answer = last.response_body || last.response || last.error || '';
  return html`<span>${delivery.attempts} · last ${last.status_code ?? '–'}
    ${answer && html`<br /><small class="mono">${String(answer).slice(0, 160)}</small>`}</span>`;
}

/** A subscription's deliveries (webhook, sink or integration) under `at`; with `retry`, a
 * delivery that ended can be tried again. */
export function Deliveries({ hook, at, retry = true, onChanged }) {
  const [page, setPage] = useState(null);
  const [status, setStatus] = useState('');
  const [error, setError] = useState(null);
  const load = () => get(`${at}/deliveries?limit=50${status ? `&status=${status}` : ''}`)
    .then((p) => (setPage(p.data), setError(null)), setError);
  useEvery(2000, load);
  return html`<div>
    <div class="row">
      <label>Deliveries <select value=${status} onChange=${(e) => { setStatus(e.target.value); setPage(null); }}>
        <option value="">all</option><option value="pending">pending</option>
        <option value="succeeded">succeeded</option><option value="failed">failed</option>
      </select></label>
    </div>
    <${Problem} error=${error} />
    <table aria-label=${`Deliveries of ${hook.id}`}>
      <thead><tr><th>event</th><th>session</th><th>status</th><th>attempts</th><th>error</th><th></th></tr></thead>
      <tbody>${(page || []).map((d) => html`<tr key=${d.id} aria-label=${`delivery ${d.id}`}>
        <td>${d.event_seq}</td><td>${d.session || ''}</td><td><${Status} value=${d.status} /></td>
        <td><${Attempts} delivery=${d} /></td><td>${d.last_error || ''}</td>
        <td>${retry && d.status !== 'pending' && html`<${Action} label="Retry" action=${async () => {
          await post(`${at}/deliveries/${path(d.id)}/retry`);
          await load();
          onChanged();
        }} />`}</td></tr>`)}</tbody>
    </table>
    ${page && !page.length && html`<p class="muted">No deliveries.</p>`}
  </div>`;
}

function Hook({ hook, figures, onChanged }) {
  const [open, setOpen] = useState(false);
  const [secret, setSecret] = useState(null);
  const [since, setSince] = useState('');
  const [replayed, setReplayed] = useState(null);
  return html`<article class="card" aria-label=${`Webhook ${hook.url}`}>
    <div class="row spread">
      <h3 class="mono">${hook.url}</h3>
      <${Status} value=${hook.active ? 'active' : 'disabled'} />
    </div>
    <p class="muted">${hook.id} · events: ${hook.events.length ? hook.events.join(', ') : 'all'}
      ${hook.disabled_reason && ` · ${hook.disabled_reason}`}</p>
    ${figures && html`<p>Pending ${figures.pending} · failed ${figures.failed}
      · lag ${figures.pending ? seconds(figures.lag_seconds) : '0 s'}</p>`}
    <p class="row">
      <button type="button" aria-expanded=${open} onClick=${() => setOpen(!open)}>
        ${open ? 'Hide deliveries' : 'Deliveries'}</button>
      <${Action} label=${hook.active ? 'Pause' : 'Resume'} action=${async () => {
        await call('PATCH', base(hook.id), { active: !hook.active });
        onChanged();
      }} />
      <${Action} label="Rotate secret" action=${async () => setSecret((await post(`${base(hook.id)}/rotate-secret`)).secret)} />
      <${Confirmed} label="Delete" action=${async () => { await call('DELETE', base(hook.id)); onChanged(); }} />
    </p>
    ${secret && html`<p role="status">New secret, shown only now: <span class="mono">${secret}</span></p>`}
    <div class="row">
      <label>Replay events since <input type="datetime-local" value=${since}
        onInput=${(e) => setSince(e.target.value)} /></label>
      <${Action} label="Replay" disabled=${!since} action=${async () => {
        const body = { since: new Date(since).toISOString() };
        setReplayed((await post(`${base(hook.id)}/replay`, body)).replayed);
        onChanged();
      }} />
      ${replayed !== null && html`<span role="status">${replayed} queued again</span>`}
    </div>
    ${open && html`<${Deliveries} hook=${hook} at=${base(hook.id)} onChanged=${onChanged} />`}
  </article>`;
}

function Subscribe({ onCreated }) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState('');
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const list = events.split(',').map((s) => s.trim()).filter(Boolean);
      setCreated(await post('/api/v1/webhooks', { url, events: list }));
      setUrl('');
      onCreated();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="card" onSubmit=${submit} aria-label="New webhook">
    <h2>New webhook</h2>
    <div class="row">
      <label class="grow">URL <input type="url" required value=${url} onInput=${(e) => setUrl(e.target.value)} /></label>
      <label class="grow">Events (comma-separated; empty: all)
        <input value=${events} onInput=${(e) => setEvents(e.target.value)} /></label>
    </div>
    <${Problem} error=${error} />
    <p><button class="primary" type="submit">Subscribe</button></p>
    ${created && html`<p role="status">Secret of ${created.id}, shown only now:
      <span class="mono">${created.secret}</span></p>`}
  </form>`;
}

export function Webhooks() {
  const [hooks, setHooks] = useState(null);
  const [figures, setFigures] = useState({});
  const [error, setError] = useState(null);
  const load = async () => {
    try {
      const [list, overview] = await Promise.all([get('/api/v1/webhooks'), get('/api/v1/overview')]);
      setHooks(list);
      setFigures(Object.fromEntries((overview.webhooks || []).map((f) => [f.id, f])));
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  };
  useEvery(3000, load);
  return html`<h2>Webhooks</h2>
    <${Problem} error=${error} />
    ${hooks === null && !error && html`<p role="status">Loading…</p>`}
    ${(hooks || []).map((h) => html`<${Hook} key=${h.id} hook=${h} figures=${figures[h.id]} onChanged=${load} />`)}
    ${hooks && !hooks.length && html`<p>No webhooks yet.</p>`}
    <${Subscribe} onCreated=${load} />`;
}

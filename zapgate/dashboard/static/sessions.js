// Sessions: live status and health, the QR (refreshed by session.qr events), pairing codes,
// start/stop/restart/logout/delete and creating a session.
import { html, useEffect, useState } from './htm-preact.module.js';
import { call, get, path, post } from './api.js';
import { useEvery, useLive, useThrottled } from './live.js';
import { Action, Confirmed, Problem, Status, seconds } from './ui.js';
import { Figures } from './metrics.js';

const ENGINES = ['simulator', 'wppconnect', 'cloudapi', 'telegram', 'sms'];
const base = (name) => `/api/v1/sessions/${path(name)}`;

function Qr({ session, tick }) {
  const [image, setImage] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let current = true;
    get(`${base(session)}/qr`).then(
      (qr) => current && (setImage(qr.image), setError(null)),
      (failure) => current && setError(failure),
    );
    return () => { current = false; };
  }, [session, tick]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!image) return html`<p role="status">Waiting for the QR…</p>`;
  return html`<img class="qr" src=${image} alt=${`QR code for ${session}`} />`;
}

function Pairing({ session }) {
  const [phone, setPhone] = useState('');
  const [code, setCode] = useState(null);
  return html`<div class="row">
    <label>Phone for a pairing code
      <input inputmode="tel" value=${phone} onInput=${(e) => setPhone(e.target.value)} /></label>
    <${Action} label="Get pairing code" disabled=${!phone}
      action=${async () => setCode((await post(`${base(session)}/pair`, { phone })).code)} />
    ${code && html`<p>Type <b class="mono" aria-label="pairing code">${code}</b> on the phone.</p>`}
  </div>`;
}

function SessionCard({ session, figures, qrTick, can, onChanged }) {
  const act = (verb) => async () => onChanged(await post(`${base(session.name)}/${verb}`));
  const running = !['STOPPED', 'FAILED'].includes(session.status);
  const me = session.me || {};
  return html`<article class="card" aria-label=${`Session ${session.name}`}>
    <div class="row spread">
      <h3>${session.name}</h3>
      <${Status} value=${session.status} />
    </div>
    <p class="muted">
      ${session.channel} · ${session.engine}${session.health ? ` · health ${session.health}` : ''}
      ${me.id ? html` · <span class="mono">${me.id}</span>` : ''}${me.pushname ? ` (${me.pushname})` : ''}
    </p>
    ${session.reason && html`<p class="muted">${session.reason}</p>`}
    <p class="muted">Queued: ${figures ? figures.queued : 0}${figures && figures.queued
      ? ` (oldest ${seconds(figures.oldest_queued_seconds)})` : ''}</p>
    ${can.admin && session.status === 'SCAN_QR_CODE' && html`
      <${Qr} session=${session.name} tick=${qrTick} />
      ${session.capabilities.includes('pairing_code') && html`<${Pairing} session=${session.name} />`}
      ${session.engine === 'simulator' && html`<p><${Action} label="Simulate scan"
        action=${() => post(`${base(session.name)}/simulate/scan`)} /></p>`}`}
    <p class="row">
      <a href=${`#/chats/${encodeURIComponent(session.name)}`}
        aria-label=${`Conversations of ${session.name}`}>Conversations</a>
      ${can.admin && html`
        ${running ? html`<${Action} label="Stop" action=${act('stop')} />`
          : html`<${Action} label="Start" action=${act('start')} />`}
        <${Action} label="Restart" action=${act('restart')} />
        <${Action} label="Log out" action=${act('logout')} />
        <${Confirmed} label="Delete" action=${async () => {
          await call('DELETE', base(session.name));
          onChanged(null, session.name);
        }} />`}
    </p>
  </article>`;
}

function CreateSession({ onCreated }) {
  const [name, setName] = useState('');
  const [engine, setEngine] = useState('simulator');
  const [config, setConfig] = useState('{}');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let parsed;
    try {
      parsed = JSON.parse(config || '{}');
    } catch {
      setError(new Error('The config is not valid JSON.'));
      return;
    }
    try {
      onCreated(await post('/api/v1/sessions', { name, engine, config: parsed }));
      setName('');
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="card" onSubmit=${submit} aria-label="New session">
    <h2>New session</h2>
    <div class="row">
      <label>Name <input required maxlength="64" value=${name}
        onInput=${(e) => setName(e.target.value)} /></label>
      <label>Engine <select value=${engine} onChange=${(e) => setEngine(e.target.value)}>
        ${ENGINES.map((id) => html`<option value=${id}>${id}</option>`)}</select></label>
    </div>
    <label>Config (JSON)
      <textarea rows="3" value=${config} onInput=${(e) => setConfig(e.target.value)}></textarea></label>
    <${Problem} error=${error} />
    <p><button class="primary" type="submit">Create session</button></p>
  </form>`;
}

export function Sessions({ can }) {
  const [sessions, setSessions] = useState(null);
  const [figures, setFigures] = useState(null);
  const [qrTicks, setQrTicks] = useState({});
  const [error, setError] = useState(null);
  const put = (changed, gone) => setSessions((list) => {
    const others = (list || []).filter((s) => s.name !== (gone || (changed && changed.name)));
    return changed ? [...others, changed].sort((a, b) => a.name.localeCompare(b.name)) : others;
  });
  const refresh = (name) => get(base(name)).then(put, (failure) => {
    if (failure.status === 404) put(null, name);
  });
  useEffect(() => {
    get('/api/v1/sessions').then(setSessions, setError);
  }, []);
  const figuresSoon = useThrottled(1000, () => get('/api/v1/overview').then(setFigures, () => {}));
  useEvery(5000, figuresSoon);
  useLive((event) => {
    if (['session.status', 'message.queued', 'message.sent'].includes(event.type)) figuresSoon();
    if (!event.type.startsWith('session.') || !event.session) return;
    if (event.type === 'session.qr') {
      setQrTicks((ticks) => ({ ...ticks, [event.session]: (ticks[event.session] || 0) + 1 }));
    }
    refresh(event.session);
  });
  const byName = Object.fromEntries(((figures && figures.sessions) || []).map((f) => [f.name, f]));
  return html`
    <h2>Sessions</h2>
    <${Figures} overview=${figures} />
    <${Problem} error=${error} />
    ${sessions === null && !error && html`<p role="status">Loading…</p>`}
    <div class="grid">
      ${(sessions || []).map((s) => html`<${SessionCard} key=${s.name} session=${s}
        figures=${byName[s.name]} qrTick=${qrTicks[s.name] || 0} can=${can} onChanged=${put} />`)}
    </div>
    ${sessions && !sessions.length && html`<p>No sessions yet.</p>`}
    ${can.admin && html`<${CreateSession} onCreated=${put} />`}`;
}

// The zapgate dashboard: sign in with an API key, then sessions, conversations, events,
// webhooks, integrations, keys and metrics, all fed live by the tenant's event stream.
import { html, render, useEffect, useState } from './htm-preact.module.js';
import { ApiError, get, key, refused } from './api.js';
import { start, useConnected } from './live.js';
import { Sessions } from './sessions.js';
import { Conversations } from './chats.js';
import { Events } from './events.js';
import { Webhooks } from './webhooks.js';
import { Integrations } from './integrations.js';
import { Keys } from './keys.js';
import { Metrics } from './metrics.js';
import { Tenants } from './tenants.js';
import { Problem } from './ui.js';

const PAGES = [
  { id: 'sessions', title: 'Sessions', view: Sessions },
  { id: 'chats', title: 'Conversations', view: Conversations },
  { id: 'events', title: 'Events', view: Events },
  { id: 'webhooks', title: 'Webhooks', view: Webhooks, needs: 'admin', whole: true },
  { id: 'integrations', title: 'Integrations', view: Integrations, needs: 'admin', whole: true },
  { id: 'keys', title: 'Keys', view: Keys, needs: 'admin', whole: true },
  { id: 'metrics', title: 'Metrics', view: Metrics },
  { id: 'tenants', title: 'Tenants', view: Tenants, needs: 'operator' },
];

function route() {
  const [page = 'sessions', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return { page, args: rest.map(decodeURIComponent) };
}

function SignIn({ problem, onSignedIn }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(problem);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    key.set(value.trim());
    try {
      onSignedIn(await get('/api/v1/whoami'));
    } catch (failure) {
      key.clear();
      setError(failure instanceof ApiError && failure.status === 401
        ? new Error('That key was not accepted.') : failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<main>
    <form class="card signin" onSubmit=${submit}>
      <h1>zapgate</h1>
      <p class="muted">Sign in with an API key of your tenant. It is kept in this tab only.</p>
      <label>API key
        <input type="password" autocomplete="off" required value=${value}
          onInput=${(e) => setValue(e.target.value)} /></label>
      <${Problem} error=${error} />
      <p><button class="primary" type="submit" disabled=${busy}>Sign in</button></p>
    </form>
  </main>`;
}

function Shell({ who, onSignOut }) {
  const [where, setWhere] = useState(route());
  const live = useConnected();
  useEffect(() => {
    const changed = () => setWhere(route());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  useEffect(() => start(who.latest_seq), [who]);
  const can = {
    admin: who.scopes.includes('admin'),
    send: who.scopes.includes('send'),
    whole: who.sessions === null,
    operator: who.scopes.includes('operator'),
  };
  const shown = PAGES.filter((p) => (!p.needs || can[p.needs]) && (!p.whole || can.whole));
  const page = shown.find((p) => p.id === where.page) || shown[0];
  const View = page.view;
  return html`
    <header class="top">
      <h1>zapgate</h1>
      <nav aria-label="Pages">
        ${shown.map((p) => html`<a href=${`#/${p.id}`}
          aria-current=${p === page ? 'page' : undefined}>${p.title}</a>`)}
      </nav>
      <div class="who">
        <span class=${`live ${live ? 'on' : 'off'}`} role="status">${live ? 'Live' : 'Reconnecting'}</span>
        <span class="mono" title="tenant / key">${who.tenant} · ${who.key_id}${can.admin ? '' : can.send ? ' (send)' : ' (read only)'}</span>
        <button type="button" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <main><${View} who=${who} can=${can} args=${where.args} /></main>`;
}

function App() {
  const [who, setWho] = useState(null);
  const [problem, setProblem] = useState(null);
  const [checking, setChecking] = useState(Boolean(key.get()));
  const signOut = (reason) => {
    key.clear();
    setWho(null);
    setProblem(reason || null);
  };
  useEffect(() => {
    const listener = () => signOut(new Error('Your key was refused: sign in again.'));
    refused.addEventListener('refused', listener);
    if (key.get()) {
      get('/api/v1/whoami').then(setWho, (failure) => signOut(failure))
        .finally(() => setChecking(false));
    }
    return () => refused.removeEventListener('refused', listener);
  }, []);
  if (checking) return html`<main><p role="status">Loading…</p></main>`;
  if (!who) return html`<${SignIn} problem=${problem} onSignedIn=${setWho} />`;
  return html`<${Shell} who=${who} onSignOut=${() => signOut()} />`;
}

render(html`<${App} />`, document.getElementById('app'));

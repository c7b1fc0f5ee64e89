// API keys of the tenant (admins): issue (the plaintext shown once), list, revoke.
import { html, useEffect, useState } from './htm-preact.module.js';
import { call, get, path, post } from './api.js';
import { Confirmed, Problem, when } from './ui.js';

const SCOPES = ['admin', 'send', 'read'];

export function Keys() {
  const [keys, setKeys] = useState(null);
  const [name, setName] = useState('');
  const [scope, setScope] = useState('read');
  const [issued, setIssued] = useState(null);
  const [error, setError] = useState(null);
  const load = () => get('/api/v1/keys').then(setKeys, setError);
  useEffect(() => { load(); }, []);
  const issue = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      setIssued(await post('/api/v1/keys', { name, scopes: [scope] }));
      setName('');
      load();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<h2>Keys</h2>
    <form class="card row" onSubmit=${issue} aria-label="New key">
      <label>Name <input required maxlength="100" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label>Scope <select value=${scope} onChange=${(e) => setScope(e.target.value)}>
        ${SCOPES.map((s) => html`<option value=${s}>${s}</option>`)}</select></label>
      <button class="primary" type="submit">Issue key</button>
    </form>
    ${issued && html`<p class="card" role="status">New key <b>${issued.name}</b>, shown only now:
      <span class="mono">${issued.key}</span></p>`}
    <${Problem} error=${error} />
    <table aria-label="Keys">
      <thead><tr><th>name</th><th>id</th><th>scopes</th><th>sessions</th><th>last used</th><th></th></tr></thead>
      <tbody>${(keys || []).map((k) => html`<tr key=${k.id}>
        <td>${k.name}</td><td class="mono">${k.id}</td><td>${k.scopes.join(', ')}</td>
        <td>${k.sessions ? k.sessions.join(', ') : 'all'}</td><td>${when(k.last_used_at)}</td>
        <td><${Confirmed} label="Revoke" action=${async () => {
          await call('DELETE', `/api/v1/keys/${path(k.id)}`);
          load();
        }} /></td></tr>`)}</tbody>
    </table>`;
}

// Tenants (the operator): create, list with their sessions and status, suspend and resume, and
// issue a first key for a tenant.
import { html, useEffect, useState } from './htm-preact.module.js';
import { get, path, post } from './api.js';
import { Action, Problem, Status, when } from './ui.js';

function Tenant({ tenant, onChanged }) {
  const [issued, setIssued] = useState(null);
  const at = `/api/v1/tenants/${path(tenant.id)}`;
  const suspended = tenant.status === 'suspended';
  return html`<tr aria-label=${`Tenant ${tenant.id}`}>
    <td class="mono">${tenant.id}</td><td>${tenant.name}</td><td><${Status} value=${tenant.status} /></td>
    <td>${tenant.sessions}</td><td>${when(tenant.created_at)}</td>
    <td class="row">
      <${Action} label=${suspended ? 'Resume' : 'Suspend'} kind=${suspended ? '' : 'danger'}
        action=${async () => onChanged(await post(`${at}/${suspended ? 'resume' : 'suspend'}`))} />
      <${Action} label="Issue admin key" disabled=${suspended} action=${async () =>
        setIssued(await post(`${at}/keys`, { name: 'dashboard', scopes: ['admin'] }))} />
      ${issued && html`<span role="status">Key, shown only now: <span class="mono">${issued.key}</span></span>`}
    </td>
  </tr>`;
}

export function Tenants() {
  const [tenants, setTenants] = useState(null);
  const [id, setId] = useState('');
  const [error, setError] = useState(null);
  const load = () => get('/api/v1/tenants?limit=200').then((page) => setTenants(page.data), setError);
  useEffect(() => { load(); }, []);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await post('/api/v1/tenants', { id });
      setId('');
      load();
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<h2>Tenants</h2>
    <form class="card row" onSubmit=${create} aria-label="New tenant">
      <label>Id <input required maxlength="64" value=${id} onInput=${(e) => setId(e.target.value)} /></label>
      <button class="primary" type="submit">Create tenant</button>
    </form>
    <${Problem} error=${error} />
    <table aria-label="Tenants">
      <thead><tr><th>id</th><th>name</th><th>status</th><th>sessions</th><th>created</th><th></th></tr></thead>
      <tbody>${(tenants || []).map((t) => html`<${Tenant} key=${t.id} tenant=${t} onChanged=${load} />`)}</tbody>
    </table>`;
}

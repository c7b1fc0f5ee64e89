// Small shared pieces: status badges, error lines, buttons that call the API.
import { html, useState } from './htm-preact.module.js';

export const Status = ({ value }) =>
  html`<span class=${`status s-${value}`}>${value}</span>`;

export const Problem = ({ error }) =>
  error ? html`<p class="error" role="alert">${error.message || String(error)}</p>` : null;

/** A button running `action` (async); disabled while it runs; its failure shown beside it. */
export function Action({ label, action, kind, disabled, title }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<span>
    <button type="button" class=${kind || ''} disabled=${busy || disabled} title=${title}
      onClick=${run}>${label}</button>
    ${error && html`<span class="error" role="alert"> ${error.message}</span>`}
  </span>`;
}

/** A destructive button that asks again before it acts (no browser dialogs). */
export function Confirmed({ label, action }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return html`<button type="button" class="danger" onClick=${() => setAsking(true)}>${label}</button>`;
  }
  return html`<span class="row">
    <${Action} label=${`Confirm ${label.toLowerCase()}`} kind="danger" action=${action} />
    <button type="button" onClick=${() => setAsking(false)}>Cancel</button>
  </span>`;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

export function seconds(value) {
  if (value === null || value === undefined) return '–';
  if (value < 120) return `${Math.round(value)} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  return `${Math.round(value / 3600)} h`;
}

// The metrics panel: messages per minute (from the live stream), outbox depth and age, webhook
// backlog and lag, connected clients (from /api/v1/overview, read every few seconds).
import { html, useState } from './htm-preact.module.js';
import { get } from './api.js';
import { perMinute, useConnected, useEvery } from './live.js';
import { Problem, seconds } from './ui.js';

const Figure = ({ label, value, hint }) =>
  html`<div class="figure" role="group" aria-label=${label}>
    <span class="muted">${label}</span><b>${value}</b>${hint && html`<small class="muted">${hint}</small>`}
  </div>`;

export function Figures({ overview }) {
  const [rate, setRate] = useState(perMinute());
  const live = useConnected();
  useEvery(1000, () => setRate(perMinute()));
  const sessions = (overview && overview.sessions) || [];
  const hooks = (overview && overview.webhooks) || [];
  const queued = sessions.reduce((sum, s) => sum + s.queued, 0);
  const oldest = Math.max(0, ...sessions.map((s) => s.oldest_queued_seconds || 0));
  const lag = Math.max(0, ...hooks.map((h) => h.lag_seconds || 0));
  const pending = hooks.reduce((sum, h) => sum + h.pending, 0);
  const failed = hooks.reduce((sum, h) => sum + h.failed, 0);
  const working = sessions.filter((s) => s.status === 'WORKING').length;
  return html`<section class="panel" aria-label="Metrics">
    <div class="figures">
      <${Figure} label="Messages in / min" value=${rate.in} />
      <${Figure} label="Messages out / min" value=${rate.out} />
      <${Figure} label="Sessions working" value=${overview ? `${working} of ${sessions.length}` : '…'} />
      <${Figure} label="Outbox depth" value=${overview ? queued : '…'}
        hint=${queued ? `oldest ${seconds(oldest)}` : null} />
      ${overview && overview.webhooks && html`
        <${Figure} label="Webhook lag" value=${pending ? seconds(lag) : '0 s'}
          hint=${`${pending} pending, ${failed} failed`} />`}
      <${Figure} label="Socket.IO clients" value=${overview ? overview.socketio_clients : '…'}
        hint=${live ? 'this tab: live' : 'this tab: reconnecting'} />
    </div>
  </section>`;
}

export function Metrics() {
  const [overview, setOverview] = useState(null);
  const [error, setError] = useState(null);
  useEvery(3000, () => get('/api/v1/overview').then((o) => (setOverview(o), setError(null)), setError));
  return html`<h2>Metrics</h2>
    <${Problem} error=${error} />
    <${Figures} overview=${overview} />
    <p class="muted">Prometheus scrapes <span class="mono">/metrics</span> (a metrics-scoped key or
      ZAPGATE_METRICS_TOKEN); a Grafana dashboard is in docs/grafana/zapgate.json.</p>`;
}

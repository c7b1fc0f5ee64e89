// Conversations of a session: its chats, a chat's history with statuses moving live, and a
// composer for text and files.
import { html, useEffect, useRef, useState } from './htm-preact.module.js';
import { get, path, post } from './api.js';
import { useLive } from './live.js';
import { Problem, Status, when } from './ui.js';

const KINDS = { image: 'image', video: 'video', audio: 'audio' };
const MAX_FILE_BYTES = 16 * 1024 * 1024;

function describe(message) {
  const words = message.text || message.caption || '';
  if (message.type === 'text') return words;
  return words ? `[${message.type}] ${words}` : `[${message.type}]`;
}

function Message({ message }) {
  return html`<li class=${message.direction} aria-label=${`message ${message.id}`}>
    <div>${describe(message)}</div>
    <small class="muted">${when(message.timestamp)} · ${message.channel}${message.segments
      ? ` · ${message.segments} ${message.encoding} segment${message.segments > 1 ? 's' : ''}` : ''} </small>
    ${message.direction === 'out' && html`<${Status} value=${message.status} />`}
    ${message.error && html`<small class="error"> ${message.error}</small>`}
    ${message.fallback_id && html`<small class="muted"> · went by SMS too (${message.fallback_id})</small>`}
    ${message.fallback_of && html`<small class="muted"> · SMS fallback of ${message.fallback_of}</small>`}
  </li>`;
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function Composer({ session, to, onSent }) {
  const [recipient, setRecipient] = useState(to || '');
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const file = useRef(null);
  useEffect(() => setRecipient(to || ''), [to]);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const chosen = file.current.files[0];
      let body = { to: recipient, type: 'text', text };
      if (chosen) {
        if (chosen.size > MAX_FILE_BYTES) throw new Error('That file is over 16 MB.');
        const major = chosen.type.split('/')[0];
        const type = KINDS[major] || 'document';
        const media = { base64: await readFile(chosen), filename: chosen.name };
        body = { to: recipient, type, media, ...(text ? { caption: text } : {}) };
      }
      onSent(await post(`/api/v1/sessions/${path(session)}/messages`, body));
      setText('');
      file.current.value = '';
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" onSubmit=${submit} aria-label="Send a message">
    <div class="row">
      <label>To <input required value=${recipient} placeholder="5511999998888"
        onInput=${(e) => setRecipient(e.target.value)} /></label>
      <label class="grow">Message <input value=${text}
        onInput=${(e) => setText(e.target.value)} /></label>
      <label>File <input type="file" ref=${file} /></label>
      <button class="primary" type="submit" disabled=${busy}>Send</button>
    </div>
    <${Problem} error=${error} />
  </form>`;
}

export function Conversations({ can, args }) {
  const [sessions, setSessions] = useState([]);
  const session = args[0] || (sessions[0] && sessions[0].name);
  const chatId = args[1] || null;
  const [chats, setChats] = useState(null);
  const [messages, setMessages] = useState([]);
  const [error, setError] = useState(null);
  const go = (name, chat) => {
    location.hash = `#/chats/${encodeURIComponent(name)}${chat ? `/${encodeURIComponent(chat)}` : ''}`;
  };
  const loadChats = () => session && get(`/api/v1/sessions/${path(session)}/chats?limit=100`)
    .then((page) => setChats(page.data), setError);
  useEffect(() => { get('/api/v1/sessions').then(setSessions, setError); }, []);
  useEffect(() => { setChats(null); loadChats(); }, [session]);
  useEffect(() => {
    setMessages([]);
    if (!session || !chatId) return;
    get(`/api/v1/sessions/${path(session)}/chats/${path(chatId)}/messages?limit=100`)
      .then((page) => setMessages(page.data.reverse()), setError);
  }, [session, chatId]);
  const upsert = (message) => setMessages((list) => {
    const at = list.findIndex((m) => m.id === message.id);
    if (at < 0) return [...list, message];
    const copy = list.slice();
    copy[at] = { ...copy[at], ...message };
    return copy;
  });
  useLive((event) => {
    if (event.session !== session || !event.type.startsWith('message.')) return;
    const message = event.payload;
    if (message && message.chat_id === chatId && message.id) upsert(message);
    if (['message.received', 'message.queued'].includes(event.type)) loadChats();
  });
  const current = (chats || []).find((c) => c.id === chatId);
  const unread = current ? current.unread_count : 0;
  useEffect(() => { // an open chat is a read chat (read receipts go where the engine sends them)
    if (!can.send || !unread) return;
    post(`/api/v1/sessions/${path(session)}/chats/${path(chatId)}/read`, {}).then(loadChats, setError);
  }, [session, chatId, unread]);
  return html`<h2>Conversations</h2>
    <div class="row">
      <label>Session <select value=${session || ''} onChange=${(e) => go(e.target.value)}>
        ${sessions.map((s) => html`<option value=${s.name}>${s.name} (${s.channel}, ${s.status})</option>`)}
      </select></label>
    </div>
    <${Problem} error=${error} />
    ${session && html`<div class="chat">
      <nav aria-label="Chats" class="card">
        ${chats === null ? html`<p role="status">Loading…</p>` : !chats.length
          ? html`<p class="muted">No chats yet.</p>` : html`<ul class="chats">
          ${chats.map((c) => html`<li><button type="button" aria-current=${c.id === chatId ? 'true' : 'false'}
            onClick=${() => go(session, c.id)}>
            <span class="mono">${c.phone || c.id}</span>${c.unread_count ? ` (${c.unread_count})` : ''}
            <br /><small class="muted">${describe(c.last_message).slice(0, 60)}</small>
          </button></li>`)}</ul>`}
      </nav>
      <section aria-label="Messages">
        ${chatId ? html`<ol class="messages">${messages.map((m) => html`<${Message} key=${m.id} message=${m} />`)}</ol>`
          : html`<p class="muted">Pick a chat, or write to a number below.</p>`}
        ${can.send && html`<${Composer} session=${session}
          to=${current ? current.phone || current.id : ''}
          onSent=${(m) => { if (m.chat_id !== chatId) go(session, m.chat_id); else upsert(m); }} />`}
      </section>
    </div>`}`;
}

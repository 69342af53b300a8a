// Website chat (web-chat channel). One WebSocket to /chat/ws, the id as a subprotocol; the server makes the
// id and the page keeps it in localStorage, so a reload or a reconnect shows the same
// conversation (the server replays the history on connect). Choices are buttons; only the latest message's buttons are active.
const texts = {
  ar: { title: 'المحادثة مع الجمعية', subtitle: 'محادثة سرية. يمكنكم طلب التحدث مع موظف في أي وقت.', forget: 'إنهاء على هذا الجهاز',
    quick_exit: 'خروج سريع', quick_exit_label: 'خروج سريع: يُغلق المحادثة فورًا ويفتح موقعًا آخر، ولا يبقى لها أثر على هذا الجهاز',
    label: 'رسالتكم', placeholder: 'اكتبوا رسالتكم…', send: 'إرسال', typing: 'يكتب…', connecting: 'جارٍ الاتصال…',
    reconnecting: 'انقطع الاتصال. جارٍ إعادة الاتصال…', you: 'أنتم', them: 'الجمعية', choices: 'اختاروا إجابة',
    empty: 'مرحبًا بكم. اكتبوا رسالتكم بالطريقة التي تناسبكم، أو اضغطوا «ابدأ المحادثة».', start: 'ابدأ المحادثة', hello: 'السلام عليكم',
    forget_confirm: 'سيُمسح أثر هذه المحادثة من هذا المتصفح (تبقى لدى الجمعية). متابعة؟', lang: 'English', lang_label: 'Switch to English', error: 'لم تصل رسالتكم، فضلًا أرسلوها مرة أخرى.',
    slow_down: 'وصلتنا رسائل كثيرة في وقت قصير، فلم تُحفظ رسالتكم الأخيرة. انتظروا دقيقة ثم أرسلوها مرة أخرى.',
    sending: 'جارٍ الإرسال…', not_sent: 'لم تُرسل بعد', resend: 'أعيدوا الإرسال', will_resend: 'لم تُحفظ بعد، وسنعيد إرسالها تلقائيًا.', refused: 'لم يُرسل',
    attach: 'إرفاق صورة أو ملف PDF', photo: 'صورة', document: 'مستند', file_type: 'يمكن إرسال الصور (JPEG أو PNG أو WebP) وملفات PDF فقط، فلم يُرسل هذا الملف.',
    file_too_large: 'حجم الملف أكبر من {mb} ميغابايت، فلم يُرسل. أرسلوا ملفًا أصغر.', file_too_big: 'حجم الملف أكبر مما نستقبله، فلم يُرسل. أرسلوا ملفًا أصغر.', file_unreadable: 'تعذّرت قراءة الملف، فلم يُرسل.',
    file_failed: 'لم يصل الملف، فضلًا أرسلوه مرة أخرى.', file_session: 'لم نتعرّف على هذه المحادثة، فنعيد الاتصال. أرسلوا الملف مرة أخرى بعد ذلك.',
    file_consent: 'نستقبل الملفات بعد موافقتكم على إشعار الخصوصية. وافقوا عليه في المحادثة، ثم أرسلوا الملف مرة أخرى.' },
  en: { title: 'Chat with the association', subtitle: 'A private conversation. You can ask for a staff member at any time.', forget: 'End on this device',
    quick_exit: 'Quick exit', quick_exit_label: 'Quick exit: closes the chat at once and opens another site, leaving no trace of it on this device',
    label: 'Your message', placeholder: 'Write your message…', send: 'Send', typing: 'typing…', connecting: 'Connecting…',
    reconnecting: 'Connection lost. Reconnecting…', you: 'You', them: 'The association', choices: 'Choose an answer',
    empty: 'Welcome. Write your message in your own words, or press "Start the conversation".', start: 'Start the conversation', hello: 'Hello',
    forget_confirm: 'This removes the conversation from this browser (the association keeps it). Continue?', lang: 'العربية', lang_label: 'التبديل إلى العربية', error: 'Your message did not arrive, please send it again.',
    slow_down: 'We received many messages in a short time, so your last one was not saved. Please wait a minute and send it again.',
    sending: 'Sending…', not_sent: 'Not sent yet', resend: 'Send again', will_resend: 'Not saved yet; it will be sent again automatically.', refused: 'Not sent',
    attach: 'Attach a photo or PDF', photo: 'Photo', document: 'Document', file_type: 'Only photos (JPEG, PNG or WebP) and PDF files can be sent, so this file was not sent.',
    file_too_large: 'The file is larger than {mb} MB, so it was not sent. Please send a smaller one.', file_too_big: 'The file is larger than we can take, so it was not sent. Please send a smaller one.', file_unreadable: 'The file could not be read, so it was not sent.',
    file_failed: 'Your file did not arrive, please send it again.', file_session: 'We could not find this conversation, so we are reconnecting. Then send the file again.',
    file_consent: 'We take files once you have agreed to the privacy notice. Agree to it in the chat, then send the file again.' },
};
// localStorage may be refused (storage blocked, some private modes): the chat still works, it
// only forgets the conversation and the language at the next load.
const local = {
  get(k) { try { return localStorage.getItem(k); } catch { return null; } },
  set(k, v) { try { localStorage.setItem(k, v); } catch { /* kept in this page only */ } },
  remove(k) { try { localStorage.removeItem(k); } catch { /* nothing kept */ } },
};
const SESSION_KEY = 'aoun.chat.session';
let lang = local.get('aoun.chat.lang') === 'en' ? 'en' : 'ar';
const $ = (id) => document.getElementById(id);
const list = $('messages'), input = $('text'), sendBtn = $('send'), attachBtn = $('attach'), fileInput = $('file'), banner = $('banner'), typing = $('typing');
let ws = null, attempt = 0, timer = null, typingTimer = null, connected = false;
// Set once the page is leaving (quick exit, "end on this device"): nothing may connect again,
// nor write the conversation's id back, in the moment before the next page replaces it.
let exiting = false;
const seen = new Set(); // message ids already shown (the server may send one twice around a reconnect)
// What the visitor sent and the server has not acknowledged yet (stored): client_id → { frame, li }.
// Shown as "sending…", sent again after a reconnect (the server drops a second copy by its
// client_id), and never silently dropped: the visitor sees what did not arrive.
// Texts waiting for their ack are also kept in this tab's sessionStorage, so that a reload (or
// a browser that restores the tab) does not lose them: shown again after the history, and sent.
// The tab's own store: two tabs of one conversation do not overwrite each other's, and the
// text is not left behind on the device once stored, erased or forgotten.
// A file waits here too, as { frame: { type: 'file', client_id }, file, li }: it goes over HTTP,
// never on the socket, and stays in this page only (a reload loses a file not yet stored).
const pending = new Map();
const PENDING_KEY = 'aoun.chat.pending';
function savePending() {
  const items = [...pending.values()].filter((p) => p.frame.type === 'text').map((p) => ({ frame: p.frame, at: p.at }));
  try {
    if (items.length) sessionStorage.setItem(PENDING_KEY, JSON.stringify(items));
    else sessionStorage.removeItem(PENDING_KEY);
  } catch { /* storage full or disabled: the in-page copy still stands */ }
}
function restorePending() {
  let items = [];
  try { items = JSON.parse(sessionStorage.getItem(PENDING_KEY) || '[]'); } catch { items = []; }
  if (!Array.isArray(items)) return;
  for (const it of items) {
    const f = it?.frame;
    if (!f || f.type !== 'text' || typeof f.text !== 'string' || !f.text || typeof f.client_id !== 'string' || !/^[0-9a-f]{1,64}$/.test(f.client_id)) continue;
    const at = Number(it.at) || Date.now() / 1000;
    const li = render({ direction: 'in', text: f.text, client_id: f.client_id, created_at: at });  // placed after the history
    setState(li, 'sending');
    pending.set(f.client_id, { frame: { type: 'text', text: f.text, client_id: f.client_id }, li, at });
  }
}
const clientId = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (x) => x.toString(16).padStart(2, '0')).join('');

function tr(k) { return texts[lang][k]; }
function applyLang() {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
  document.title = tr('title');
  document.querySelectorAll('[data-t]').forEach((el) => { el.textContent = tr(el.dataset.t); });
  document.querySelectorAll('[data-tp]').forEach((el) => { el.setAttribute(el.dataset.tp, tr(el.dataset.tp)); });
  attachBtn.title = tr('attach');
  const qx = $('quick-exit');
  qx.setAttribute('aria-label', tr('quick_exit_label')); qx.title = tr('quick_exit_label');
  const ls = $('lang-switch');
  ls.textContent = tr('lang'); ls.lang = lang === 'ar' ? 'en' : 'ar'; ls.setAttribute('aria-label', tr('lang_label'));
  list.querySelectorAll('.who').forEach((el) => { el.textContent = tr(el.dataset.who); });
}

// The server makes the session id (the first frame of every connection) and the page keeps it;
// the very first connection presents none.
function sessionId() {
  const id = local.get(SESSION_KEY);
  return id && /^[A-Za-z0-9_-]{16,64}$/.test(id) ? id : '';
}
// The conversation this tab shows. A reconnect, and a reload of this tab (its sessionStorage),
// present it again, whatever another tab has stored meanwhile: what waits here (a text, a
// photo of an ID card) goes to this conversation or nowhere. Files go to it too.
const TAB_KEY = 'aoun.chat.tab';
// Trusted only while this browser still keeps a conversation: with none kept (a quick exit or
// an end in another tab while this one was asleep or discarded), the tab's own copy would
// bring the old conversation back, and store it again.
let tabSession = (() => {
  try {
    const id = sessionStorage.getItem(TAB_KEY);
    if (id && !sessionId()) { sessionStorage.removeItem(TAB_KEY); sessionStorage.removeItem(PENDING_KEY); return ''; }
    return id && /^[A-Za-z0-9_-]{16,64}$/.test(id) ? id : '';
  } catch { return ''; }
})();

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
function fmt(ts) {
  const d = ts ? new Date(ts * 1000) : new Date();
  return new Intl.DateTimeFormat(lang === 'ar' ? 'ar-SA-u-ca-gregory-nu-latn' : 'en-GB', { timeStyle: 'short' }).format(d);
}

function render(m) {
  const out = m.direction === 'out'; // from the association (bot or staff)
  const li = el('li', `msg ${out ? 'from-them' : 'from-me'}`);
  if (m.client_id) li.dataset.clientId = m.client_id;
  const bubble = el('div', 'bubble');
  const who = el('span', 'who sr-only', tr(out ? 'them' : 'you'));
  who.dataset.who = out ? 'them' : 'you';
  bubble.append(who);
  if (m.file) {
    // "📎 name", or the kind in the page's language when the file came without a name
    const p = el('p', 'text');
    p.dir = 'auto';
    const clip = el('span', 'clip');
    clip.setAttribute('aria-hidden', 'true');
    const kind = m.file.kind === 'document' ? 'document' : 'photo';
    const name = el('span', '', m.file.name || tr(kind));
    if (!m.file.name) name.dataset.t = kind;  // follows the language switch
    p.append(clip, name);
    bubble.append(p);
  }
  if (m.text) { const p = el('p', 'text', m.text); p.dir = 'auto'; bubble.append(p); }
  const time = el('time', 'time', fmt(m.created_at));
  bubble.append(time);
  li.append(bubble);
  if (out && m.choices?.length) {
    const group = el('div', 'choices');
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', tr('choices'));
    for (const c of m.choices) {
      const b = el('button', 'choice', c.title);
      b.type = 'button'; b.dir = 'auto'; b.dataset.choiceId = c.id;
      b.addEventListener('click', () => choose(c, group));
      group.append(b);
    }
    li.append(group);
  }
  return li;
}

// A new visitor has no history: the bot speaks once they write, so offer a start button.
function emptyState() {
  if (list.querySelector('.msg') || list.querySelector('.empty-state')) return;
  const li = el('li', 'empty-state');
  li.append(el('p', '', tr('empty')));
  const b = el('button', 'choice start', tr('start'));
  b.type = 'button'; b.id = 'start';
  b.disabled = !connected;
  b.addEventListener('click', () => { if (connected) { list.querySelector('.empty-state')?.remove(); sendText(tr('hello')); } });
  li.append(b);
  list.append(li);
}

function refreshChoices() {
  const start = $('start'); if (start) start.disabled = !connected;
  const groups = [...list.querySelectorAll('.choices')];
  // a file the server refused, or has not stored (sending, failed), answers nothing: the
  // question before it is still open
  const unstoredFile = (li) => li.dataset.clientId && pending.get(li.dataset.clientId)?.frame.type === 'file';
  const lastMsg = [...list.querySelectorAll('.msg:not(.refused)')].filter((li) => !unstoredFile(li)).pop();
  groups.forEach((g) => {
    const active = g.parentElement === lastMsg;
    g.classList.toggle('stale', !active);
    g.querySelectorAll('button').forEach((b) => { b.disabled = !active || !connected; });
  });
}

function addMessage(m, scroll = true) {
  list.querySelector('.empty-state')?.remove();
  if (m.id !== undefined && m.id !== null) { if (seen.has(m.id)) return; seen.add(m.id); }
  const li = render(m);
  list.append(li);
  refreshChoices();
  if (scroll) list.scrollTop = list.scrollHeight;
  return li;
}

function addNotice(text) {
  // The alert inside the item: a role on the <li> itself would replace "listitem", and a list
  // may hold only list items.
  const li = el('li', 'notice');
  const alert = el('span', '', text);
  alert.setAttribute('role', 'alert');
  li.append(alert);
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function showTyping(on) {
  typing.hidden = !on;
  clearTimeout(typingTimer);
  if (on) typingTimer = setTimeout(() => { typing.hidden = true; }, 12000);
}

// Sends a frame now if the socket is up, and keeps it until the server acknowledges it. While
// the server asks us to wait (rate_limited), new messages queue behind the refused one, so that
// they are stored in the order they were written.
let holding = false, resendTimer = null, unstored = 0;
function post(frame, li) {
  const p = { frame, li, at: Date.now() / 1000 };
  pending.set(frame.client_id, p);
  savePending();
  if (li) setState(li, 'sending');
  if (connected && !holding) sendFrame(p);
}
function sendFrame(p) {
  p.sentAt = Date.now();
  ws.send(JSON.stringify(p.frame));
  watch();
}
function resendAll() {
  holding = false; clearTimeout(resendTimer); resendTimer = null;
  if (!connected) return;
  for (const p of pending.values()) {
    if (p.frame.type === 'file') continue;  // not a socket frame: its "send again" button uploads it
    if (p.li) setState(p.li, 'sending');
    sendFrame(p);
  }
}
function stopResending() { holding = false; clearTimeout(resendTimer); resendTimer = null; }
// A connection can die without the page being told (a carrier's NAT forgets it, a phone
// changes network): a message with no ack after ACK_WAIT ms, while nothing holds it back, ends
// this socket, and the reconnect sends it again after the history.
const ACK_WAIT = 20000;
let watchdog = null, heardAt = 0;  // heardAt: the last frame from the server
function watch() {
  if (watchdog) return;
  watchdog = setTimeout(() => {
    watchdog = null;
    const waiting = [...pending.values()].filter((p) => p.frame.type !== 'file' && p.sentAt);
    if (!connected || !waiting.length) return;
    // Measured from the later of the send and the last frame heard: a server slow to store
    // (a busy moment) still answers the frames before, and is not taken for a dead line.
    if (!holding && waiting.some((p) => Date.now() - Math.max(p.sentAt, heardAt) >= ACK_WAIT)) { const s = ws; ws = null; s?.close(); lost(); return; }
    watch();
  }, ACK_WAIT / 4);
}
// An idle page has nothing waiting for an ack, so the watchdog above never looks: a line that
// died quietly (out of coverage when the server's close came) would show "connected" while
// staff's replies wait. After PING_EVERY ms of silence the page asks (a "ping" frame, which the
// server answers "pong"); heard nothing PONG_WAIT ms later, it reconnects. Also at once when the
// page comes back into view or the device back online.
const PING_EVERY = 25000, PONG_WAIT = 10000;
let pingTimer = null, pingSentAt = 0;
function ping() {
  if (!connected || !ws) return;
  try { ws.send('{"type":"ping"}'); pingSentAt = Date.now(); } catch { /* closing: onclose reconnects */ }
}
function checkLine() {
  clearTimeout(pingTimer);
  pingTimer = setTimeout(checkLine, 5000);
  if (!connected || !ws || exiting) return;
  const now = Date.now();
  if (pingSentAt && heardAt < pingSentAt) {
    if (now - pingSentAt >= PONG_WAIT) { pingSentAt = 0; const s = ws; ws = null; s?.close(); lost(); }
    return;
  }
  pingSentAt = 0;
  if (now - heardAt >= PING_EVERY) ping();
}
function lineCheckNow() {
  if (exiting) return;
  if (connected) { if (!pingSentAt && Date.now() - heardAt > 5000) ping(); return; }
  if (timer) { clearTimeout(timer); timer = null; attempt = 0; connect(); }  // waiting to reconnect: now
}
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') lineCheckNow(); });
window.addEventListener('online', lineCheckNow);
// Each announcement is added, not put in place of the last: several replies at once (the
// privacy notice, then its question) are all read out. The last few are kept.
function announce(text) {
  const a = $('announce');
  setTimeout(() => { a.append(el('p', '', text)); while (a.childElementCount > 5) a.firstElementChild.remove(); }, 50);
}
// st: 'sending', 'failed' (may go later: `retry` makes a button), 'refused' (a file the server
// will never take), or null (stored).
function setState(li, st, retry) {
  li.classList.toggle('pending', st === 'sending');
  li.classList.toggle('failed', st === 'failed' || st === 'refused');
  li.classList.toggle('refused', st === 'refused');
  li.querySelector('.state')?.remove();
  if (!st) return;
  const span = el('span', 'state', tr({ sending: 'sending', failed: 'not_sent', refused: 'refused' }[st]));
  if (st === 'failed' && retry) {
    const b = el('button', 'resend', tr('resend'));
    b.type = 'button';
    const text = li.querySelector('.text');
    if (text) { text.id ||= `m-${Math.random().toString(36).slice(2)}`; b.setAttribute('aria-describedby', text.id); }
    b.addEventListener('click', retry);
    span.append(' ', b);
  }
  li.querySelector('.bubble').append(span);
}
function acknowledged(id) {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  savePending();
  if (p.li) setState(p.li, null);
}

function choose(c, group) {
  if (!connected) return;
  group.querySelectorAll('button').forEach((b) => { b.disabled = true; if (b.dataset.choiceId === c.id) b.classList.add('picked'); });
  const li = addMessage({ direction: 'in', text: c.title, created_at: Date.now() / 1000 });
  post({ type: 'choice', id: c.id, title: c.title, client_id: clientId() }, li);
  showTyping(true);
  input.focus();
}

function setBanner(text) { banner.hidden = !text; $('banner-text').textContent = text || ''; }

function connect() {
  if (exiting) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const id = tabSession || sessionId();
  // The id travels as a subprotocol (a header), not in the URL: proxies log URLs, and the id is
  // the key to this conversation.
  const sock = new WebSocket(`${proto}//${location.host}/chat/ws`, id ? ['aoun.chat', `session.${id}`] : ['aoun.chat']);
  ws = sock;
  // Writing is possible once the history is in: a message sent before would be stored after the
  // history was read, and never shown. Until then the banner stays.
  sock.onopen = () => {};
  sock.onmessage = (e) => {
    if (exiting) return;
    if (ws === sock) heardAt = Date.now();
    let ev; try { ev = JSON.parse(e.data); } catch { return; }
    if (ev.type === 'session' && typeof ev.session === 'string') {
      // Kept for the next load, unless another tab keeps another conversation there already
      // (two tabs opened at once): that one stays, this tab goes on with its own.
      const stored = sessionId();
      if (!stored || stored === id) local.set(SESSION_KEY, ev.session);
      tabSession = ev.session;
      try { sessionStorage.setItem(TAB_KEY, ev.session); } catch { /* this page keeps it */ }
      if (Number(ev.upload_max_bytes) > 0) maxFile = Number(ev.upload_max_bytes);
    } else if (ev.type === 'history') {
      // The list is not a live region (a screen reader would read the whole conversation out
      // again on every load and reconnect): new messages are announced one by one (#announce).
      attempt = 0; pingSentAt = 0; setBanner(null); stopResending();
      list.textContent = ''; seen.clear();
      for (const m of ev.messages || []) {
        if (m.id !== undefined && m.id !== null) seen.add(m.id);
        if (m.client_id) acknowledged(m.client_id);  // stored, though its ack was lost
        list.append(render(m));
      }
      connected = true; sendBtn.disabled = false; attachBtn.disabled = false;
      // What was not stored goes again, after the history, in the order it was written. Not a
      // button's answer: the question it answered may be past, and if it was not stored its
      // buttons are live again below.
      for (const [id, { frame, li }] of [...pending]) {
        if (frame.type === 'choice') { pending.delete(id); continue; }
        if (li) list.append(li);
      }
      savePending();
      resendAll();
      emptyState();
      refreshChoices();
      list.scrollTop = list.scrollHeight;
    } else if (ev.type === 'ack') {
      unstored = 0;
      acknowledged(ev.client_id);
    } else if (ev.type === 'ended') {
      // "end on this device" was pressed (here, in another tab, or on another device holding
      // this id): the id opens nothing any more
      endHere();
    } else if (ev.type === 'erased') {
      // "delete my data" was done: nothing of the old conversation stays on this screen, and
      // nothing written before it is sent again
      list.textContent = ''; seen.clear(); pending.clear(); savePending(); stopResending();
      emptyState();
    } else if (ev.type === 'message' && ev.message) {
      const m = { direction: 'out', ...ev.message };
      // The visitor's own (a file they sent): the bubble this page shows for it, if any, is that
      // message, now stored; one from another tab of the session is added, not announced.
      const mine = m.direction === 'in' && m.client_id ? [...list.querySelectorAll('.from-me')].find((li) => li.dataset.clientId === m.client_id) : null;
      if (mine) {
        if (m.id !== undefined && m.id !== null) seen.add(m.id);
        if (pending.has(m.client_id)) showTyping(true);  // the replies follow it
        acknowledged(m.client_id);
      } else if (m.direction === 'in') {
        addMessage(m);
      } else {
        showTyping(false);
        const shown = addMessage(m);
        if (shown && m.text) announce(`${tr('them')}: ${m.text}`);
      }
    } else if (ev.type === 'error') {
      showTyping(false);
      const p = ev.client_id ? pending.get(ev.client_id) : null;
      if (p && (ev.code === 'rate_limited' || ev.code === 'not_stored')) {
        // kept, and sent again (with whatever was written since, in order) once the server
        // takes messages again, or can store them again (5 s, doubling to a minute); one
        // notice for the whole wait. What is written meanwhile waits behind it, so that it is
        // not taken for the answer the refused one gave.
        if (p.li) setState(p.li, 'failed');
        if (!holding) addNotice(tr('will_resend'));
        holding = true;
        clearTimeout(resendTimer);
        const wait = ev.code === 'rate_limited' ? Math.max(1, Number(ev.retry_after) || 5) : Math.min(60, 5 * 2 ** unstored++);
        resendTimer = setTimeout(resendAll, wait * 1000);
      } else if (p) {
        // not stored: the visitor sends it again when they choose
        const id = ev.client_id;
        const again = () => { const q = pending.get(id); if (q && connected) { if (q.li) setState(q.li, 'sending'); sendFrame(q); } };
        if (p.li) setState(p.li, 'failed', again);
        addNotice(tr('error'));
      } else {
        // The server's messages are for developers; the visitor gets one in their language.
        addNotice(tr(ev.code === 'rate_limited' ? 'slow_down' : 'error'));
      }
    }
  };
  sock.onclose = () => { if (ws === sock) lost(); };
}
// The socket is gone (closed, or given up by the watchdog): reconnect with backoff.
function lost() {
  if (exiting) return;
  connected = false; sendBtn.disabled = true; attachBtn.disabled = true; refreshChoices(); showTyping(false); stopResending();
  const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
  attempt++;
  setBanner(tr('reconnecting'));
  clearTimeout(timer);
  timer = setTimeout(() => { timer = null; connect(); }, delay);
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || !connected) return;
  sendText(text);
  input.value = ''; autosize();
});
function sendText(text) {
  const id = clientId();
  const li = addMessage({ direction: 'in', text, client_id: id, created_at: Date.now() / 1000 });
  post({ type: 'text', text, client_id: id }, li);
  showTyping(true);
}

// A photo or a PDF goes over HTTP (POST /chat/upload, the bytes as the body), not the socket.
// The server reads the bytes and refuses anything else; the page refuses early what the server
// would refuse, so that nobody waits for a large upload to be turned down.
const FILE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/pdf'];
let maxFile = 10 * 1024 * 1024;  // the server's default, until its session frame names its own
const tooLarge = (bytes) => tr('file_too_large').replace('{mb}', String(+(bytes / 1048576).toFixed(1)));
function refusal(file) {
  // some systems name no type for a .webp: the extension then, and the server checks the bytes
  if (!FILE_TYPES.includes(file.type) && (file.type || !/\.(jpe?g|png|webp|pdf)$/i.test(file.name))) return tr('file_type');
  if (file.size > maxFile) return tooLarge(maxFile);
  if (!file.size) return tr('file_unreadable');
  return '';
}
attachBtn.addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  const file = fileInput.files[0];
  fileInput.value = '';  // choosing the same file again is a change again
  if (!file || !connected) return;
  const why = refusal(file);
  if (why) { addNotice(why); return; }
  const frame = { type: 'file', client_id: clientId() };
  const at = Date.now() / 1000;
  const kind = file.type === 'application/pdf' || /\.pdf$/i.test(file.name) ? 'document' : 'image';
  const li = addMessage({ direction: 'in', text: '', file: { kind, name: file.name }, client_id: frame.client_id, created_at: at });
  pending.set(frame.client_id, { frame, file, li, at });
  upload(frame.client_id);
});
async function upload(id) {
  const p = pending.get(id);
  if (!p) return;
  setState(p.li, 'sending');
  let res = null, body = {};
  // Given up (and offered again) when no answer comes: 30 s plus the file's time at 64 KiB/s,
  // the server's own deadline for reading it.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 30000 + (p.file.size / 65536) * 1000);
  try {
    res = await fetch('/chat/upload', { method: 'POST', body: p.file, signal: abort.signal, headers: {
      'Content-Type': p.file.type || 'application/octet-stream', 'X-Chat-Session': tabSession, 'X-Client-Id': id,
      'X-File-Name': encodeURIComponent(p.file.name) } });
    body = await res.json().catch(() => ({}));
  } catch { /* no answer: as a 503, worth trying again */ }
  clearTimeout(timer);
  if (pending.get(id) !== p) return;  // its message came over the socket first, or the data was erased
  if (res?.ok) { acknowledged(id); showTyping(true); return; }
  // The server's reason in the visitor's language (by status: a proxy in front may answer 413
  // without our JSON). What may go through later gets a button; the file stays in this page.
  // (A 400 is about the session headers, since the page never sends an empty file: worth
  // sending again after a reconnect. A 409: the privacy notice is not agreed to yet.)
  const reason = { 401: 'file_session', 409: 'file_consent', 413: 'file_too_big', 415: 'file_type', 429: 'slow_down' }[res?.status] || 'file_failed';
  if (['file_too_big', 'file_type'].includes(reason)) {
    pending.delete(id);
    setState(p.li, 'refused');
    refreshChoices();
  } else {
    setState(p.li, 'failed', () => { upload(id); input.focus(); });
    refreshChoices();
  }
  // the limit, when the answer names it (the server's own may be lower than the page's)
  addNotice(reason === 'file_too_big' && Number(body?.limit_bytes) > 0 ? tooLarge(Number(body.limit_bytes)) : tr(reason));
  if (res?.status === 401 || res?.status === 400) ws?.close();  // the reconnect brings a session id the server knows
}
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('composer').requestSubmit(); }
});
function autosize() { input.style.blockSize = 'auto'; input.style.blockSize = `${Math.min(input.scrollHeight + 2, 140)}px`; }
input.addEventListener('input', autosize);
$('lang-switch').addEventListener('click', () => { lang = lang === 'ar' ? 'en' : 'ar'; local.set('aoun.chat.lang', lang); applyLang(); });
// Stops everything that could reach the server again or store the id: timers, the socket.
function leaving() {
  exiting = true;
  connected = false;
  clearTimeout(timer); clearTimeout(resendTimer); clearTimeout(watchdog); clearTimeout(typingTimer); clearTimeout(pingTimer);
  tabSession = '';
  const s = ws; ws = null; s?.close();
}
// Ends this conversation in this tab: nothing of it stays on screen, nothing waiting is sent.
function endHere() {
  leaving();
  pending.clear();
  try { sessionStorage.removeItem(PENDING_KEY); sessionStorage.removeItem(TAB_KEY); } catch { /* nothing kept */ }
  list.textContent = '';
  location.reload();
}
// Quick exit: for someone who must hide this page at once (a person walking in). No question
// asked: the page is emptied, this browser forgets the conversation (opened again here, the
// chat starts afresh), and the tab goes to a neutral site in this page's place (Back does not
// come back to it). Nothing is sent, so nothing can delay it: the association keeps the
// conversation, and what waited here unsent is dropped.
const EXIT_URL = 'https://www.google.com/';
const EXIT_KEY = 'aoun.chat.exit';  // written and removed at once: every other chat tab leaves too
function quickExit(tellOthers) {
  leaving();
  document.body.replaceChildren();
  document.title = '';
  pending.clear();
  try { sessionStorage.clear(); } catch { /* nothing kept */ }
  // The other tabs first (before they hear the conversation's key go, which would only make
  // them reload), then every trace this page keeps on the device: the conversation, the language.
  if (tellOthers) { local.set(EXIT_KEY, String(Date.now())); local.remove(EXIT_KEY); }
  try {
    for (const k of Object.keys(localStorage)) if (k.startsWith('aoun.chat.')) localStorage.removeItem(k);
  } catch { /* storage refused: nothing was kept there */ }
  location.replace(EXIT_URL);
}
// The button is a link to the same site (index.html): without this script (an old browser, a
// file that failed to load) it still leaves.
$('quick-exit').addEventListener('click', (e) => { e.preventDefault(); quickExit(true); });
$('forget').addEventListener('click', () => {
  if (!confirm(tr('forget_confirm'))) return;
  // The server ends the id too, so that a copy of it (another device, a backup of this
  // browser) no longer opens the conversation; the request outlives the reload (keepalive).
  const id = tabSession || sessionId();
  if (id) endOnServer(id);
  // Only this tab's conversation is forgotten: another tab's, stored for the next load, stays.
  if (!sessionId() || sessionId() === id) local.remove(SESSION_KEY);
  endHere();
});
// "End on this device" in another tab ends this tab's conversation too (the same one): this
// tab must not go on showing it, nor send what waits here into the next one.
window.addEventListener('storage', (e) => {
  if (e.key === EXIT_KEY && e.newValue) { quickExit(false); return; }  // quick exit in another tab
  if (e.key !== null && e.key !== SESSION_KEY) return;  // null: the whole storage was cleared
  if (!tabSession) return;
  const now = e.key === null ? null : e.newValue;
  if (now === tabSession || (e.key !== null && e.oldValue !== tabSession)) return;
  endHere();
});

// The server ends the id too. Until it has said so (a refusal: too many requests from this
// address, a database fault), the id to end is kept in this tab and asked again at each load.
const END_KEY = 'aoun.chat.end';
function endOnServer(id) {
  try { sessionStorage.setItem(END_KEY, id); } catch { /* asked once, then */ }
  fetch('/chat/end', { method: 'POST', headers: { 'X-Chat-Session': id }, keepalive: true })
    .then((res) => {
      if (res.ok || res.status === 400) { try { if (sessionStorage.getItem(END_KEY) === id) sessionStorage.removeItem(END_KEY); } catch { /* */ } }
      else setTimeout(() => endOnServer(id), Math.max(1, Number(res.headers.get('Retry-After')) || 5) * 1000);
    })
    .catch(() => setTimeout(() => endOnServer(id), 5000));
}
try { const id = sessionStorage.getItem(END_KEY); if (id) endOnServer(id); } catch { /* */ }
// A page restored from the back-forward cache shows what it showed when left: if the
// conversation was ended or quick-exited since, it must not.
window.addEventListener('pageshow', (e) => {
  if (e.persisted && !sessionId() && (tabSession || list.querySelector('.msg'))) {
    leaving();
    list.textContent = '';
    try { sessionStorage.removeItem(TAB_KEY); sessionStorage.removeItem(PENDING_KEY); } catch { /* */ }
    location.reload();
  }
});

applyLang();
restorePending();
sendBtn.disabled = true; attachBtn.disabled = true;
setBanner(tr('connecting'));
connect();
checkLine();
input.focus();

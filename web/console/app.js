// Aoun staff console. Plain ES modules, no build step. Hash routes:
//   #/inbox[/<conversation id>]   #/cases[/<reference>]   #/dashboard   #/staff
import { h, clear, maskIds } from './dom.js';
import { t, tOr, getLang, setLang, applyLang, fmtDateTime, fmtTime, fmtAgo, fmtNumber, fmtDuration, toUnix } from './i18n.js';
import { api, session, setUnauthorizedHandler, ApiError, mediaPath } from './api.js';
import { Stream } from './stream.js';
import { barChart, columnChart, scoreMeter } from './charts.js';
import { laterStatus, mergeLoaded } from './delivery.js';

const root = document.getElementById('app');
const STEPS = ['submitted', 'collecting_info', 'evaluating', 'approved', 'rejected', 'closed'];
const CHANNELS = ['whatsapp', 'telegram', 'sms', 'webchat'];
const METHODS = ['document_check', 'interview', 'field_visit'];

const state = {
  me: null,
  stream: null,
  streamState: 'idle',
  tab: 'waiting',
  convs: new Map(),        // id -> conversation
  listsLoaded: false,
  currentId: null,
  messages: [],
  earlyStatus: new Map(),  // message id -> a message.status that came before its message
  canned: null,
  cases: new Map(),        // reference -> case (with events etc. when loaded)
  loginMessage: null,
  route: { view: 'inbox', arg: null },
};

// ---------------------------------------------------------------- utilities

function toast(text, kind = 'info') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
  region.append(el);
  while (region.children.length > 3) region.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

function errText(e) {
  if (e instanceof ApiError) return maskIds(e.message || e.code || String(e.status));
  return String(e?.message || e);
}

function confirmDialog(message, okLabel = t('common.confirm')) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-msg' },
      h('form', { method: 'dialog' },
        h('p', { id: 'dlg-msg', text: message }),
        h('div', { class: 'dialog-actions' },
          h('button', { value: 'cancel', class: 'btn', text: t('common.cancel') }),
          h('button', { value: 'ok', class: 'btn btn-primary', text: okLabel, autofocus: true }))));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue === 'ok'); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

function channelBadge(ch) {
  return h('span', { class: `badge ch ch-${ch}`, text: tOr(`channel.${ch}`, ch) });
}
function modeBadge(mode) {
  return h('span', { class: `badge mode mode-${mode}`, text: tOr(`mode.${mode}`, mode) });
}
function stepBadge(step) {
  return h('span', { class: `badge step step-${step}`, text: tOr(`step.${step}`, step) });
}
function convTitle(c) {
  return maskIds(c.display_name || c.address || `#${c.id}`);
}
function isMine(c) {
  return c && c.mode === 'staff' && c.assigned_staff && state.me && c.assigned_staff.id === state.me.id;
}
function canOverride() { return state.me && (state.me.role === 'supervisor' || state.me.role === 'admin'); }

// ---------------------------------------------------------------- session

setUnauthorizedHandler(() => {
  if (!state.me) return;
  signOutLocal('login.expired');
});

function signOutLocal(messageKey) {
  if (state.stream) state.stream.stop();
  state.stream = null; state.me = null; state.convs.clear(); state.listsLoaded = false;
  state.currentId = null; state.messages = []; state.earlyStatus.clear(); state.canned = null; state.cases.clear();
  state.loginMessage = messageKey;
  setBanner(null);
  session.clear();
  renderLogin();
}

async function boot() {
  applyLang();
  const s = session.load();
  if (!s?.token) { renderLogin(); return; }
  try {
    const me = await api.me();
    state.me = me.staff || me;
    startApp();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) { state.loginMessage = 'login.failed'; }
    session.clear();
    renderLogin();
  }
}

function renderLogin() {
  document.title = `${t('login.title')} — ${t('app.name')}`;
  clear(root);
  const err = h('p', { id: 'login-error', class: 'form-error', role: 'alert' });
  if (state.loginMessage) err.textContent = t(state.loginMessage);
  const user = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false', dir: 'ltr' });
  const pass = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, dir: 'ltr' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', text: t('login.submit') });
  const form = h('form', { class: 'login-card', 'aria-labelledby': 'login-title', novalidate: true },
    h('div', { class: 'login-brand' }, h('span', { class: 'logo', 'aria-hidden': 'true', text: 'ع' }),
      h('div', {}, h('h1', { id: 'login-title', text: t('login.title') }), h('p', { class: 'muted', text: t('login.intro') }))),
    err,
    h('div', { class: 'field' }, h('label', { for: 'login-username', text: t('login.username') }), user),
    h('div', { class: 'field' }, h('label', { for: 'login-password', text: t('login.password') }), pass),
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!user.value.trim() || !pass.value) { err.textContent = t('login.wrong'); (user.value ? pass : user).focus(); return; }
    submit.disabled = true; submit.textContent = t('login.busy');
    try {
      const res = await api.login(user.value.trim(), pass.value);
      session.save({ token: res.token, expires_at: res.expires_at });
      state.me = res.staff; state.loginMessage = null;
      if (!location.hash || location.hash === '#/' ) location.hash = '#/inbox';
      startApp();
    } catch (e) {
      submit.disabled = false; submit.textContent = t('login.submit');
      err.textContent = e.status === 429 ? t('login.locked') : e.status === 401 || e.status === 400 ? t('login.wrong') : t('login.failed');
      pass.value = ''; pass.focus();
    }
  });
  root.append(h('main', { class: 'login-page', id: 'main' },
    h('div', { class: 'login-lang' }, langButton()), form));
  (state.loginMessage ? user : user).focus();
}

function langButton() {
  return h('button', { type: 'button', class: 'btn btn-ghost lang-switch', id: 'lang-switch', lang: getLang() === 'ar' ? 'en' : 'ar',
    'aria-label': t('lang.switch_label'), text: t('lang.switch'),
    onclick: () => { setLang(getLang() === 'ar' ? 'en' : 'ar'); state.me ? renderShell() : renderLogin(); } });
}

// ---------------------------------------------------------------- app shell

function startApp() {
  renderShell();
  connectStream();
  loadLists();
  api.canned().then((r) => { state.canned = r.answers || []; }).catch(() => { state.canned = []; });
  loadChannelFaults();
}

// Channels whose provider refuses the bot's token or key: their replies are held (not lost)
// until it is fixed. Loaded at start and on reconnect, then kept by channel.status events.
function loadChannelFaults() {
  const seenEvents = state.faultEvents || 0;
  api.channelFaults().then((r) => {
    if ((state.faultEvents || 0) !== seenEvents) return;  // an event came meanwhile: it is newer
    state.faults = new Map((r.faults || []).map((f) => [f.channel, f]));
    renderFaults();
  }).catch(() => {});
}

function renderFaults() {
  const b = document.getElementById('fault-banner');
  if (!b) return;
  const faults = [...(state.faults || new Map()).values()];
  clear(b);
  b.hidden = faults.length === 0;
  for (const f of faults) {
    b.append(h('p', { text: t('banner.credentials', { channel: tOr(`channel.${f.channel}`, f.channel), time: fmtTime(f.since), error: `\u2066${f.error || ''}\u2069` }) }));  // LRI…PDI: the provider's words stay left to right
  }
}

function connectStream() {
  if (state.stream) state.stream.stop();
  state.stream = new Stream({
    token: session.load()?.token,
    onEvent: handleEvent,
    onState: ({ state: st, delay, reconnected }) => {
      state.streamState = st;
      if (st === 'reconnecting') {
        setBanner(`${t('banner.reconnecting')} (${t('banner.retry_in', { s: Math.ceil(delay / 1000) })})`);
        // A refused upgrade looks like a drop; ask the API whether the session is still valid.
        if (state.me) api.me().catch(() => {});
      } else if (st === 'open') {
        if (reconnected) { setBanner(null); toast(t('banner.reconnected')); loadLists(); refreshCurrent(); loadChannelFaults(); }
        else setBanner(null);
      }
    },
  });
  state.stream.start();
}

function setBanner(text) {
  const b = document.getElementById('conn-banner');
  if (!b) return;
  if (text) { b.hidden = false; b.querySelector('.banner-text').textContent = text; }
  else b.hidden = true;
}

function renderShell() {
  clear(root);
  const me = state.me;
  const navItems = [['inbox', 'nav.inbox'], ['cases', 'nav.cases'], ['dashboard', 'nav.dashboard']];
  if (me.role === 'admin') navItems.push(['staff', 'nav.staff']);
  root.append(
    h('a', { href: '#main', class: 'skip-link', text: t('app.skip'), onclick: (e) => { e.preventDefault(); document.getElementById('main')?.focus(); } }),
    h('div', { id: 'conn-banner', class: 'conn-banner', role: 'alert', hidden: true },
      h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { class: 'banner-text' })),
    h('div', { id: 'fault-banner', class: 'fault-banner', role: 'alert', hidden: true }),
    h('header', { class: 'topbar' },
      h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true', text: 'ع' }),
        h('span', {}, h('strong', { text: t('app.name') }), h('span', { class: 'brand-sub', text: t('app.subtitle') }))),
      h('nav', { class: 'mainnav', 'aria-label': t('nav.main') },
        h('ul', {}, navItems.map(([id, key]) => h('li', {},
          h('a', { href: `#/${id}`, id: `nav-${id}`, dataset: { view: id }, text: t(key) }),
          id === 'inbox' ? h('span', { class: 'count', id: 'nav-waiting-count', 'aria-hidden': 'true' }) : null)))),
      h('div', { class: 'userbox' },
        langButton(),
        h('button', { type: 'button', class: 'btn btn-ghost', 'aria-label': t('nav.shortcuts'), title: t('nav.shortcuts'), text: '?', onclick: showShortcuts }),
        h('span', { class: 'whoami' }, h('span', { text: me.display_name || me.username }), h('span', { class: 'role', text: tOr(`role.${me.role}`, me.role) })),
        h('button', { type: 'button', class: 'btn btn-ghost', id: 'change-password', text: t('nav.password'), onclick: changePassword }),
        h('button', { type: 'button', class: 'btn btn-ghost', id: 'signout', text: t('nav.signout'), onclick: signOut }))),
    h('main', { id: 'main', tabindex: '-1' }),
    h('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite' }));
  if (state.streamState === 'reconnecting') setBanner(t('banner.reconnecting'));
  renderFaults();
  route();
}

async function signOut() {
  try { await api.logout(); } catch { /* the session ends locally anyway */ }
  signOutLocal('login.signed_out');
}

/// The staff member's own password: the one an admin set is meant to be replaced. Their other
/// sessions end; this one stays.
function changePassword() {
  const err = h('p', { class: 'form-error', role: 'alert' });
  const input = (id, autocomplete) => h('input', { id, type: 'password', required: true, autocomplete, dir: 'ltr' });
  const cur = input('pw-current', 'current-password');
  const next = input('pw-new', 'new-password');
  const again = input('pw-again', 'new-password');
  next.minLength = 8; again.minLength = 8;
  const field = (el, key) => h('div', { class: 'field' }, h('label', { for: el.id, text: t(key) }), el);
  const form = h('form', { method: 'dialog' },
    h('h2', { id: 'pw-title', text: t('password.title') }),
    field(cur, 'password.current'), field(next, 'password.new'), field(again, 'password.again'),
    h('p', { class: 'hint', text: t('password.hint') }), err,
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => dlg.close() }),
      h('button', { type: 'submit', class: 'btn btn-primary', id: 'pw-save', text: t('password.save') })));
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'pw-title' }, form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault(); err.textContent = '';
    if (!form.reportValidity()) return;
    if (next.value !== again.value) { err.textContent = t('password.mismatch'); again.focus(); return; }
    try {
      await api.changePassword(cur.value, next.value);
      dlg.close();
      toast(t('password.changed'));
    } catch (ex) {
      // Signed out meanwhile (the password changed in another tab, the account disabled): the
      // sign-in screen is shown, and this dialog must not stay over it.
      if (ex.status === 401) { dlg.close(); return; }
      err.textContent = ex.status === 403 ? t('password.wrong') : t('common.error', { msg: errText(ex) });
    }
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  cur.focus();
}

function showShortcuts() {
  const rows = [['Alt+1 / Alt+2 / Alt+3', 'shortcuts.tabs'], ['Alt+N', 'shortcuts.next'], ['↑ / ↓', 'shortcuts.list'],
    ['Alt+R', 'shortcuts.reply'], ['Ctrl+Enter', 'shortcuts.send'], ['Esc', 'shortcuts.esc'], ['?', 'shortcuts.help']];
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'sc-title' },
    h('form', { method: 'dialog' },
      h('h2', { id: 'sc-title', text: t('shortcuts.title') }),
      h('table', { class: 'shortcuts' }, h('tbody', {}, rows.map(([k, d]) => h('tr', {}, h('th', { scope: 'row' }, h('kbd', { dir: 'ltr', text: k })), h('td', { text: t(d) }))))),
      h('div', { class: 'dialog-actions' }, h('button', { class: 'btn btn-primary', value: 'ok', text: t('common.close'), autofocus: true }))));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

window.addEventListener('hashchange', () => { if (state.me) route(); });

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const view = ['inbox', 'cases', 'dashboard', 'staff'].includes(parts[0]) ? parts[0] : 'inbox';
  return { view, arg: parts[1] || null };
}

function route() {
  const r = parseRoute();
  state.route = r;
  document.querySelectorAll('.mainnav a').forEach((a) => {
    if (a.dataset.view === r.view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  const main = document.getElementById('main');
  if (!main) return;
  if (r.view === 'inbox') renderInbox(main, r.arg ? Number(r.arg) : null);
  else if (r.view === 'cases') renderCases(main, r.arg);
  else if (r.view === 'dashboard') renderDashboard(main);
  else if (r.view === 'staff') renderStaff(main);
  document.title = `${t(`nav.${r.view}`)} — ${t('app.name')}`;
}

// ---------------------------------------------------------------- live events

function handleEvent(ev) {
  if (!ev || !ev.type) return;
  if (ev.type === 'conversation.waiting' || ev.type === 'conversation.updated') {
    const c = ev.conversation;
    if (!c) return;
    const before = JSON.stringify(state.convs.get(c.id)?.cases || []);
    upsertConv(c);
    if (c.id === state.currentId) {
      renderConvHeader();
      if (c.cases && JSON.stringify(c.cases) !== before) renderCasePane();
    }
    if (ev.type === 'conversation.waiting' && c.mode === 'waiting') {
      announce(`${t('queue.waiting')}: ${convTitle(c)}${c.priority === 1 ? ` — ${t('reason.danger')}` : ''}`);
    }
  } else if (ev.type === 'message.new') {
    const id = ev.conversation_id;
    const m = ev.message;
    const c = state.convs.get(id);
    if (c && m) {
      c.last_message_at = m.created_at;
      if (m.text) c.last_message_preview = m.text;
      renderQueueList();
    }
    if (id === state.currentId && m) addMessage(m);
  } else if (ev.type === 'conversation.merged') {
    // {conversation_id, into}: WhatsApp said the person changed number, and what they wrote
    // from the new one joined their older conversation; the folded one is gone.
    state.convs.delete(ev.conversation_id);
    renderQueueList();
    if (ev.conversation_id === state.currentId) location.hash = `#/inbox/${ev.into}`;
    else if (ev.into === state.currentId) openConversation(ev.into);  // what was written from the new number joins this transcript
  } else if (ev.type === 'channel.status') {
    // {channel, state: 'credentials_refused' | 'ok', since?, error?}
    if (!state.faults) state.faults = new Map();
    state.faultEvents = (state.faultEvents || 0) + 1;
    if (ev.state === 'ok') state.faults.delete(ev.channel); else state.faults.set(ev.channel, ev);
    renderFaults();
  } else if (ev.type === 'message.updated') {
    // a message that changed in place (a live location that moved): redrawn where it stands
    if (ev.conversation_id === state.currentId && ev.message && state.messages.some((x) => x.id === ev.message.id)) addMessage(ev.message);
  } else if (ev.type === 'message.status') {
    // delivery progress of an outgoing message: {conversation_id, message_id, delivery_status,
    // delivery_error?} from our outbox or from the provider's own status webhooks
    if (ev.conversation_id === state.currentId) {
      const m = state.messages.find((x) => x.id === ev.message_id);
      const update = { id: ev.message_id, delivery_status: ev.delivery_status, delivery_error: ev.delivery_error };
      // A fast send can report before the message itself is here (the reply's own answer, or
      // message.new, still on its way): kept, and applied when it arrives.
      if (m) addMessage(update);
      else state.earlyStatus.set(ev.message_id, update);
    }
  } else if (ev.type === 'case.updated') {
    const k = ev.case;
    if (!k?.reference) return;
    const old = state.cases.get(k.reference);
    if (old) {
      Object.assign(old, k);
      // the event may not carry events/allowed transitions; reload the full case if shown
      if (document.querySelector(`[data-case-ref="${CSS.escape(k.reference)}"]`)) reloadCase(k.reference);
    }
    if (state.route.view === 'cases' && !state.route.arg) renderCases(document.getElementById('main'), null);
  }
}

function announce(text) {
  const live = document.getElementById('sr-announce');
  if (live) { live.textContent = ''; setTimeout(() => { live.textContent = text; }, 50); }
}

function upsertConv(c) {
  const old = state.convs.get(c.id);
  state.convs.set(c.id, old ? Object.assign(old, c) : { ...c });
  renderQueueList();
}

async function loadLists() {
  try {
    const [all, waiting] = await Promise.all([api.conversations('all'), api.conversations('waiting')]);
    const seen = new Set();
    for (const c of [...(all.conversations || []), ...(waiting.conversations || [])]) { seen.add(c.id); upsertConv(c); }
    for (const id of [...state.convs.keys()]) if (!seen.has(id)) state.convs.delete(id);
    state.listsLoaded = true;
    renderQueueList();
  } catch (e) {
    if (e.status !== 401) toast(t('common.error', { msg: errText(e) }), 'error');
  }
}

function listFor(tab) {
  const all = [...state.convs.values()];
  if (tab === 'waiting') {
    return all.filter((c) => c.mode === 'waiting')
      .sort((a, b) => (a.priority ?? 9) - (b.priority ?? 9) || toUnix(a.queued_at) - toUnix(b.queued_at));
  }
  const recent = (a, b) => toUnix(b.last_message_at) - toUnix(a.last_message_at);
  if (tab === 'mine') return all.filter(isMine).sort(recent);
  return all.sort(recent);
}

// ---------------------------------------------------------------- inbox

function renderInbox(main, convId) {
  const existing = main.querySelector('.inbox');
  let inbox = existing;
  if (!inbox) {
    clear(main);
    inbox = h('div', { class: 'inbox' },
      h('section', { class: 'queue-pane', 'aria-labelledby': 'queue-heading' },
        h('h2', { id: 'queue-heading', class: 'sr-only', text: t('queue.label') }),
        h('div', { role: 'tablist', class: 'tabs', 'aria-label': t('queue.label') },
          ['waiting', 'mine', 'all'].map((tab, i) => h('button', {
            type: 'button', role: 'tab', id: `tab-${tab}`, 'aria-controls': 'queue-panel', class: 'tab',
            'aria-selected': String(state.tab === tab), tabindex: state.tab === tab ? '0' : '-1',
            onclick: () => selectTab(tab),
            onkeydown: (e) => tabKeys(e, i) },
          h('span', { text: t(`queue.${tab}`) }), h('span', { class: 'count', id: `count-${tab}` })))),
        h('div', { id: 'queue-panel', role: 'tabpanel', 'aria-labelledby': `tab-${state.tab}`, class: 'queue-panel' },
          h('ul', { id: 'queue-list', class: 'queue-list', 'aria-busy': String(!state.listsLoaded) }))),
      h('section', { class: 'conv-pane', id: 'conv-pane', 'aria-label': t('conv.transcript') }),
      h('aside', { class: 'case-pane', id: 'case-pane', 'aria-label': t('case.panel') }),
      h('div', { id: 'sr-announce', class: 'sr-only', 'aria-live': 'polite' }));
    main.append(inbox);
  }
  renderQueueList();
  if (convId !== state.currentId || !existing) openConversation(convId);
}

function selectTab(tab) {
  state.tab = tab;
  document.querySelectorAll('.tabs [role=tab]').forEach((b) => {
    const on = b.id === `tab-${tab}`;
    b.setAttribute('aria-selected', String(on)); b.tabIndex = on ? 0 : -1;
  });
  document.getElementById('queue-panel')?.setAttribute('aria-labelledby', `tab-${tab}`);
  renderQueueList();
}

function tabKeys(e, i) {
  const tabs = ['waiting', 'mine', 'all'];
  const rtl = document.documentElement.dir === 'rtl';
  let j = null;
  if (e.key === 'ArrowRight') j = rtl ? i - 1 : i + 1;
  if (e.key === 'ArrowLeft') j = rtl ? i + 1 : i - 1;
  if (e.key === 'Home') j = 0;
  if (e.key === 'End') j = 2;
  if (j === null) return;
  e.preventDefault();
  j = (j + 3) % 3;
  selectTab(tabs[j]);
  document.getElementById(`tab-${tabs[j]}`).focus();
}

function renderQueueList() {
  const ul = document.getElementById('queue-list');
  const waitingCount = listFor('waiting').length;
  const navCount = document.getElementById('nav-waiting-count');
  if (navCount) navCount.textContent = waitingCount ? fmtNumber(waitingCount) : '';
  document.title = (waitingCount ? `(${waitingCount}) ` : '') + document.title.replace(/^\(\d+\) /, '');
  if (!ul) return;
  for (const tab of ['waiting', 'mine', 'all']) {
    const el = document.getElementById(`count-${tab}`);
    if (el) el.textContent = fmtNumber(listFor(tab).length);
  }
  ul.setAttribute('aria-busy', String(!state.listsLoaded));
  const items = listFor(state.tab);
  const focusedId = document.activeElement?.closest?.('.queue-item')?.dataset.id;
  clear(ul);
  if (!state.listsLoaded) { ul.append(h('li', { class: 'empty', text: t('queue.loading') })); return; }
  if (!items.length) { ul.append(h('li', { class: 'empty', text: t(`queue.empty.${state.tab}`) })); return; }
  items.forEach((c, idx) => {
    const danger = c.priority === 1 || c.queue_reason === 'danger';
    const a = h('a', {
      href: `#/inbox/${c.id}`, class: 'queue-item' + (c.id === state.currentId ? ' current' : '') + (danger ? ' danger' : ''),
      dataset: { id: String(c.id) }, 'aria-current': c.id === state.currentId ? 'true' : null,
      onkeydown: (e) => listKeys(e, idx) },
    h('span', { class: 'qi-top' },
      h('span', { class: 'qi-name', dir: 'auto', text: convTitle(c) }),
      h('time', { class: 'qi-time', text: fmtAgo(c.mode === 'waiting' ? c.queued_at : c.last_message_at) })),
    h('span', { class: 'qi-meta' },
      channelBadge(c.channel),
      danger ? h('span', { class: 'badge danger', text: t('reason.danger') }) : (c.mode === 'waiting' && c.queue_reason ? h('span', { class: 'badge reason', text: tOr(`reason.${c.queue_reason}`, c.queue_reason) }) : null),
      state.tab === 'all' ? modeBadge(c.mode) : null,
      c.mode === 'staff' && c.assigned_staff && !isMine(c) ? h('span', { class: 'qi-held', text: t('conv.held_by', { name: c.assigned_staff.display_name }) }) : null),
    c.last_message_preview ? h('span', { class: 'qi-preview', dir: 'auto', text: maskIds(c.last_message_preview) }) : null);
    ul.append(h('li', {}, a));
  });
  if (focusedId) ul.querySelector(`.queue-item[data-id="${focusedId}"]`)?.focus();
}

function listKeys(e, idx) {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  e.preventDefault();
  const items = [...document.querySelectorAll('#queue-list .queue-item')];
  const next = items[idx + (e.key === 'ArrowDown' ? 1 : -1)];
  next?.focus();
}

async function openConversation(id) {
  state.currentId = id;
  state.messages = [];
  state.earlyStatus.clear();
  const pane = document.getElementById('conv-pane');
  const casePane = document.getElementById('case-pane');
  const inbox = document.querySelector('.inbox');
  if (!pane) return;
  inbox.classList.toggle('has-conv', !!id);
  clear(pane); clear(casePane);
  renderQueueList();
  if (!id) {
    pane.append(h('div', { class: 'placeholder' }, h('p', { text: t('conv.none') })));
    return;
  }
  pane.append(
    h('div', { class: 'conv-header', id: 'conv-header' }),
    h('div', { class: 'notice-area', id: 'conv-notice' }),
    h('ol', { class: 'transcript', id: 'transcript', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': t('conv.transcript'), tabindex: '0' },
      h('li', { class: 'empty', text: t('common.loading') })),
    composer());
  try {
    const [c, msgs] = await Promise.all([api.conversation(id), api.messages(id)]);
    if (state.currentId !== id) return;
    upsertConv(c);
    state.messages = mergeLoaded(msgs.messages || [], [], state.earlyStatus);
    renderConvHeader();
    renderTranscript();
    renderCasePane();
  } catch (e) {
    if (state.currentId !== id) return;
    clear(document.getElementById('transcript')).append(h('li', { class: 'empty', text: t('common.error', { msg: errText(e) }) }));
  }
}

async function refreshCurrent() {
  const id = state.currentId;
  if (!id) return;
  try {
    const [c, msgs] = await Promise.all([api.conversation(id), api.messages(id)]);
    if (state.currentId !== id) return;
    upsertConv(c); state.messages = mergeLoaded(msgs.messages || [], state.messages, state.earlyStatus);
    renderConvHeader(); renderTranscript();
  } catch { /* shown by other paths */ }
}

function renderConvHeader() {
  const el = document.getElementById('conv-header');
  const c = state.convs.get(state.currentId);
  if (!el || !c) return;
  clear(el);
  const mine = isMine(c);
  const actions = [];
  if (c.mode === 'waiting' || c.mode === 'bot' || c.mode === 'resolved') {
    actions.push(h('button', { type: 'button', class: 'btn btn-primary', id: 'btn-takeover', text: t('conv.takeover'), onclick: () => takeover(false) }));
  } else if (c.mode === 'staff' && !mine && canOverride()) {
    actions.push(h('button', { type: 'button', class: 'btn', id: 'btn-takeover', text: t('conv.override'), onclick: () => takeover(true) }));
  }
  if (mine) {
    actions.push(h('button', { type: 'button', class: 'btn', id: 'btn-release', text: t('conv.release'), onclick: release }));
    actions.push(h('button', { type: 'button', class: 'btn btn-success', id: 'btn-resolve', text: t('conv.resolve'), onclick: resolve }));
  }
  const holder = c.mode === 'staff' && c.assigned_staff
    ? (mine ? t('conv.held_by_you') : t('conv.held_by', { name: c.assigned_staff.display_name })) : null;
  el.append(
    h('a', { href: '#/inbox', class: 'btn btn-ghost back-link', text: `${document.documentElement.dir === 'rtl' ? '→' : '←'} ${t('conv.back')}` }),
    h('div', { class: 'conv-title' },
      h('h2', { id: 'conv-title', dir: 'auto', text: convTitle(c) }),
      h('div', { class: 'conv-meta' },
        channelBadge(c.channel),
        h('span', { class: 'address', dir: 'ltr', text: c.address || '' }),
        modeBadge(c.mode),
        c.priority === 1 || c.queue_reason === 'danger' ? h('span', { class: 'badge danger', text: t('priority.danger') }) : null,
        c.mode === 'waiting' && c.queue_reason && c.queue_reason !== 'danger' ? h('span', { class: 'badge reason', text: tOr(`reason.${c.queue_reason}`, c.queue_reason) }) : null,
        holder ? h('span', { class: 'holder', text: holder }) : null)),
    h('div', { class: 'conv-actions' }, actions));
  const notice = document.getElementById('conv-notice');
  clear(notice);
  if (c.channel === 'whatsapp' && c.window_open === false) {
    notice.append(h('p', { class: 'notice notice-warn', id: 'window-closed', text: t('conv.window_closed') }));
  }
  updateComposer();
}

async function takeover(override) {
  const id = state.currentId;
  if (override && !(await confirmDialog(t('conv.confirm_override')))) return;
  try {
    const c = await api.takeover(id, override);
    upsertConv(c); renderConvHeader(); toast(t('conv.taken'));
    document.getElementById('reply-text')?.focus();
  } catch (e) {
    if (e.status === 401) return;
    toast(t('conv.conflict', { msg: errText(e) }), 'error');
    refreshCurrent();
  }
}
async function release() {
  try { upsertConv(await api.release(state.currentId)); renderConvHeader(); toast(t('conv.released')); }
  catch (e) { if (e.status !== 401) toast(t('conv.conflict', { msg: errText(e) }), 'error'); }
}
async function resolve() {
  if (!(await confirmDialog(t('conv.confirm_resolve'), t('conv.resolve')))) return;
  try { upsertConv(await api.resolve(state.currentId)); renderConvHeader(); toast(t('conv.resolved')); }
  catch (e) { if (e.status !== 401) toast(t('conv.conflict', { msg: errText(e) }), 'error'); }
}

function renderTranscript() {
  const ol = document.getElementById('transcript');
  if (!ol) return;
  clear(ol);
  if (!state.messages.length) ol.append(h('li', { class: 'empty', text: '—' }));
  for (const m of state.messages) ol.append(messageEl(m));
  ol.scrollTop = ol.scrollHeight;
}

function addMessage(m) {
  const early = state.earlyStatus.get(m.id);
  if (early) { state.earlyStatus.delete(m.id); m = { ...m, ...laterStatus(m, early) }; }
  const i = state.messages.findIndex((x) => x.id === m.id);
  const ol = document.getElementById('transcript');
  if (i >= 0) {
    state.messages[i] = { ...state.messages[i], ...laterStatus(state.messages[i], m) };
    ol?.querySelector(`[data-msg-id="${m.id}"]`)?.replaceWith(messageEl(state.messages[i]));
    return;
  }
  state.messages.push(m);
  if (!ol) return;
  ol.querySelector('.empty')?.remove();
  const nearBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 120;
  ol.append(messageEl(m));
  if (nearBottom || m.sender === 'staff') ol.scrollTop = ol.scrollHeight;
}

// An attachment chip that downloads the file. The href names the endpoint (copy link, status
// bar, tests), but following it would lack the Bearer token, so a click fetches the bytes with
// the token (api.download) and saves them through a temporary object URL with `download`: the
// file is saved, never rendered as a page of the console's origin.
function mediaLink(path, cls, children) {
  // The visible text (kind, name, "download") is the accessible name: no aria-label that could differ.
  const a = h('a', { class: `${cls} media-link`, href: path, dataset: { mediaPath: path } },
    children, ' ', h('span', { class: 'media-dl', text: t('media.download') }));
  a.addEventListener('click', async (e) => {
    e.preventDefault();
    if (a.getAttribute('aria-busy') === 'true') return;
    a.setAttribute('aria-busy', 'true');
    try {
      const { blob, filename } = await api.download(path);
      const url = URL.createObjectURL(blob);
      const save = h('a', { href: url, download: filename, hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      if (err.status !== 401) toast(t('media.failed', { msg: errText(err) }), 'error');
    } finally {
      a.removeAttribute('aria-busy');
    }
  });
  return a;
}

// A file name as the sender chose it, without the direction controls that would make
// "invoice<RLO>fdp.exe" read as a PDF (the download's own name has them replaced too).
const noBidi = (s) => (typeof s === 'string' ? s.replace(/[\u200E\u200F\u202A-\u202E\u2066-\u2069\u061C]/g, '_') : s);

// A file's size where the provider gave it (Telegram): a file over 20 MB cannot be fetched there.
const fmtBytes = (n) => (!(Number(n) > 0) ? '' : n >= 1 << 20 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);

// What a beneficiary shared, for staff to act on: the place (a map link), the number, or the
// provider's name for a kind the bot does not handle.
function sharedDetail(m) {
  const lat = Number(m.location?.latitude), lon = Number(m.location?.longitude);
  if (m.kind === 'location' && Number.isFinite(lat) && Number.isFinite(lon)) {
    const coords = `${lat.toFixed(6)},${lon.toFixed(6)}`;
    const out = [h('p', { class: 'shared-detail' }, h('a', {
      href: `https://www.openstreetmap.org/?mlat=${lat.toFixed(6)}&mlon=${lon.toFixed(6)}#map=17/${lat.toFixed(6)}/${lon.toFixed(6)}`,
      target: '_blank', rel: 'noopener noreferrer', dir: 'ltr', class: 'map-link', text: coords }))];
    // A Telegram live location: the link follows it (message.updated); staff see when it last
    // moved and whether it is still being shared.
    const period = Number(m.location?.live_period);
    if (period > 0) {
      const start = Number(m.location.shared_at) || m.created_at;  // live_period runs from the share
      const moved = Number(m.location.updated_at) || start;
      const stopped = Number(m.location.stopped_at);
      const until = period >= 0x7FFFFFFF ? null : start + period;
      const parts = [t(stopped ? 'location.live_past' : 'location.live'), t('location.moved', { time: fmtTime(moved) })];
      if (stopped) parts.push(t('location.ended', { time: fmtTime(stopped) }));
      else if (until !== null) parts.push(t(Date.now() / 1000 < until ? 'location.until' : 'location.ended', { time: fmtTime(until) }));
      out.push(h('p', { class: 'shared-detail live-location muted', text: parts.join(' · ') }));
    }
    return out;
  }
  if (m.kind === 'contact' && m.contact?.phone) {
    return [h('p', { class: 'shared-detail', dir: 'ltr', text: String(m.contact.phone) })];
  }
  if (m.kind === 'unsupported' && m.raw_type) {
    // What it means where the console knows (a Telegram user blocking the bot), else the provider's name.
    const label = tOr(`raw.${m.raw_type}`, null);
    return [h('p', { class: 'shared-detail muted', dir: label ? 'auto' : 'ltr', text: label ?? String(m.raw_type) })];
  }
  return [];
}

function messageEl(m) {
  const out = m.direction === 'out';
  const cls = `msg ${out ? 'msg-out' : 'msg-in'} sender-${m.sender || (out ? 'bot' : 'beneficiary')}`;
  const who = m.sender === 'staff' && m.staff_name ? m.staff_name : tOr(`sender.${m.sender}`, m.sender || '');
  const body = [];
  if (m.kind === 'media' && m.media) {
    const inner = [
      h('span', { class: 'att-icon', 'aria-hidden': 'true', dir: 'ltr', text: (m.media.mime || m.media.kind || '').split('/').pop().slice(0, 4).toUpperCase() }),
      h('span', {}, h('strong', { text: tOr(`media.${m.media.kind}`, t('media.other')) }), ' ',
        h('span', { class: 'muted', dir: 'ltr', text: [maskIds(noBidi(m.media.filename)), m.media.mime, fmtBytes(m.media.size)].filter(Boolean).join(' · ') }))];
    // Only what a beneficiary sent has a copy to fetch (at its provider, or a web chat upload here).
    body.push(m.direction === 'in' && m.media.id
      ? mediaLink(mediaPath.message(m.id), 'attachment', inner)
      : h('div', { class: 'attachment' }, inner));
  } else if (m.kind === 'location' || m.kind === 'contact' || m.kind === 'unsupported') {
    body.push(h('p', { class: 'muted', text: t(`kind.${m.kind}`) }));
    body.push(...sharedDetail(m));
  }
  // Forwarded: someone else wrote it first (a threat kept as evidence, say), not the person's own words.
  if (m.forwarded) {
    const from = m.forwarded.from ? `\u2068${m.forwarded.from}\u2069` : '';
    const key = from && m.forwarded.at ? 'msg.forwarded_from_at' : from ? 'msg.forwarded_from' : m.forwarded.at ? 'msg.forwarded_at' : 'msg.forwarded';
    body.push(h('p', { class: 'shared-detail muted forwarded', text: t(key, { from, time: m.forwarded.at ? fmtDateTime(m.forwarded.at) : '' }) }));
  }
  if (m.text) body.push(h('p', { class: 'msg-text', dir: 'auto', text: maskIds(m.text) }));
  // Written from a number the person has since left (changed, or passed to someone else),
  // delivered late: filed with them, and staff see where it came from.
  if (m.written_from) body.push(h('p', { class: 'shared-detail muted written-from', text: t('msg.written_from', { from: `\u2066+${m.written_from}\u2069` }) }));
  // Written long before it came (the provider kept it through an outage): when it was written.
  if (m.written_at) body.push(h('p', { class: 'shared-detail muted written-at', text: t('msg.written_at', { time: fmtDateTime(m.written_at) }) }));
  if (m.choices?.length) {
    body.push(h('ul', { class: 'msg-choices', 'aria-label': 'choices' }, m.choices.map((ch) => h('li', { dir: 'auto', text: ch.title }))));
  }
  const status = out && m.delivery_status ? h('span', { class: `dstatus ds-${m.delivery_status}`, text: tOr(`status.${m.delivery_status}`, m.delivery_status) }) : null;
  // why a message did not arrive (the provider's reason, or the last send error), for staff
  const reason = status && m.delivery_error && (m.delivery_status === 'failed' || m.delivery_status === 'dead')
    ? h('span', { class: 'dstatus-reason', dir: 'ltr', text: m.delivery_error }) : null;
  if (m.sender === 'system') {
    return h('li', { class: 'msg msg-system', dataset: { msgId: String(m.id) } }, h('p', { dir: 'auto', text: maskIds(m.text || '') }), h('time', { text: fmtTime(m.created_at) }));
  }
  return h('li', { class: cls, dataset: { msgId: String(m.id) } },
    h('div', { class: 'bubble' },
      h('span', { class: 'who', text: who }),
      body,
      h('span', { class: 'msg-foot' }, h('time', { datetime: new Date(m.created_at * 1000).toISOString(), text: fmtTime(m.created_at) }), status, reason)));
}

function composer() {
  const ta = h('textarea', { id: 'reply-text', rows: 3, dir: 'auto', placeholder: t('reply.placeholder'), 'aria-describedby': 'reply-hint' });
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); sendReply(); }
  });
  return h('form', { class: 'composer', id: 'composer', onsubmit: (e) => { e.preventDefault(); sendReply(); } },
    h('label', { for: 'reply-text', class: 'sr-only', text: t('reply.label') }),
    h('p', { id: 'reply-hint', class: 'composer-hint' }),
    h('div', { class: 'composer-row' },
      ta,
      h('div', { class: 'composer-buttons' },
        h('button', { type: 'button', class: 'btn', id: 'btn-canned', 'aria-expanded': 'false', 'aria-controls': 'canned-panel', text: t('reply.canned'), onclick: toggleCanned }),
        h('button', { type: 'submit', class: 'btn btn-primary', id: 'btn-send', text: t('reply.send') }))),
    h('div', { id: 'canned-panel', class: 'canned-panel', hidden: true }));
}

function updateComposer() {
  const c = state.convs.get(state.currentId);
  const form = document.getElementById('composer');
  if (!form || !c) return;
  const mine = isMine(c);
  form.querySelectorAll('textarea, button').forEach((el) => { el.disabled = !mine; });
  const hint = document.getElementById('reply-hint');
  hint.textContent = mine ? '' : t('reply.need_takeover');
  hint.hidden = mine;
}

async function sendReply(textOverride) {
  const ta = document.getElementById('reply-text');
  const text = (textOverride ?? ta.value).trim();
  if (!text) { ta.focus(); return; }
  const btn = document.getElementById('btn-send');
  btn.disabled = true;
  try {
    const m = await api.send(state.currentId, text);
    if (m && m.id !== undefined) addMessage(m);
    ta.value = '';
    toast(t('reply.sent'));
  } catch (e) {
    if (e.status === 409 && e.body?.template) {
      showTemplateOffer(e.body.template, e.message);
    } else if (e.status !== 401) {
      toast(t('conv.conflict', { msg: errText(e) }), 'error');
    }
  } finally {
    btn.disabled = !isMine(state.convs.get(state.currentId));
    ta.focus();
  }
}

function showTemplateOffer(name, message) {
  const notice = document.getElementById('conv-notice');
  clear(notice);
  const c = state.convs.get(state.currentId);
  const btn = h('button', { type: 'button', class: 'btn btn-primary', id: 'btn-template', text: t('reply.template', { name }),
    onclick: async () => {
      btn.disabled = true;
      try {
        const m = await api.template(state.currentId, name, [c?.display_name ? c.display_name.split(' ')[0] : '']);
        if (m?.id !== undefined) addMessage(m);
        toast(t('reply.template_sent')); clear(notice);
      } catch (e) { btn.disabled = false; if (e.status !== 401) toast(t('conv.conflict', { msg: errText(e) }), 'error'); }
    } });
  notice.append(h('div', { class: 'notice notice-warn', role: 'alert' }, h('p', { text: message || t('conv.window_closed') }), btn));
}

function toggleCanned() {
  const panel = document.getElementById('canned-panel');
  const btn = document.getElementById('btn-canned');
  const open = panel.hidden;
  panel.hidden = !open;
  btn.setAttribute('aria-expanded', String(open));
  if (!open) { btn.focus(); return; }
  clear(panel);
  const c = state.convs.get(state.currentId);
  const lang = c?.lang || getLang();
  const search = h('input', { type: 'search', id: 'canned-search', 'aria-label': t('reply.canned_search'), placeholder: t('reply.canned_search') });
  const list = h('ul', { class: 'canned-list', id: 'canned-list' });
  const draw = () => {
    clear(list);
    const q = search.value.trim().toLowerCase();
    const answers = (state.canned || [])
      .filter((a) => !q || `${a.title} ${a.text}`.toLowerCase().includes(q))
      .sort((a, b) => (a.lang === lang ? 0 : 1) - (b.lang === lang ? 0 : 1));
    if (!answers.length) list.append(h('li', { class: 'empty', text: t('reply.canned_empty') }));
    for (const a of answers) {
      list.append(h('li', {}, h('button', { type: 'button', class: 'canned-item', dataset: { cannedId: String(a.id) },
        onclick: () => insertCanned(a) },
      h('strong', { dir: 'auto', text: a.title }), h('span', { class: 'lang-tag', text: a.lang }),
      h('span', { class: 'canned-text', dir: 'auto', text: a.text }))));
    }
  };
  search.addEventListener('input', draw);
  panel.append(search, list);
  draw();
  if (state.canned === null) api.canned().then((r) => { state.canned = r.answers || []; draw(); }).catch(() => {});
  search.focus();
}

function insertCanned(a) {
  const ta = document.getElementById('reply-text');
  ta.value = ta.value.trim() ? `${ta.value.trim()}\n\n${a.text}` : a.text;
  toggleCanned();
  ta.focus();
}

// ---------------------------------------------------------------- case panel

async function renderCasePane() {
  const pane = document.getElementById('case-pane');
  const c = state.convs.get(state.currentId);
  if (!pane || !c) return;
  clear(pane);
  pane.append(h('h2', { class: 'pane-title', text: t('case.panel') }));
  const refs = c.cases || [];
  if (!refs.length) { pane.append(h('p', { class: 'muted', text: t('case.none') })); return; }
  const holder = h('div', { class: 'case-holder' });
  if (refs.length > 1) {
    const sel = h('select', { id: 'case-select', 'aria-label': t('case.reference'), dir: 'ltr',
      onchange: () => loadCaseInto(holder, sel.value, c.id) }, refs.map((r) => h('option', { value: r, text: r })));
    sel.value = refs[refs.length - 1];
    pane.append(sel);
  }
  pane.append(holder);
  loadCaseInto(holder, refs[refs.length - 1], c.id);
}

async function loadCaseInto(holder, ref, convId) {
  clear(holder).append(h('p', { class: 'muted', text: t('common.loading') }));
  try {
    const k = await api.caseGet(ref);
    state.cases.set(ref, k);
    clear(holder).append(caseView(k, { convId }));
  } catch (e) {
    clear(holder).append(h('p', { class: 'form-error', text: t('common.error', { msg: errText(e) }) }));
  }
}

async function reloadCase(ref) {
  const el = document.querySelector(`[data-case-ref="${CSS.escape(ref)}"]`);
  if (!el) return;
  try {
    const k = await api.caseGet(ref);
    state.cases.set(ref, k);
    const fresh = document.querySelector(`[data-case-ref="${CSS.escape(ref)}"]`);
    if (fresh && !fresh.querySelector('.transition-form')) fresh.replaceWith(caseView(k, { convId: k.conversation_id }));
  } catch { /* ignore */ }
}

function stepper(step) {
  const order = ['submitted', 'collecting_info', 'evaluating', step === 'rejected' ? 'rejected' : 'approved', 'closed'];
  const at = order.indexOf(step);
  return h('ol', { class: 'stepper', 'aria-label': t('case.step') },
    order.map((s, i) => h('li', { class: i < at ? 'done' : i === at ? 'current' : 'todo', 'aria-current': i === at ? 'step' : null, text: tOr(`step.${s}`, s) })));
}

function caseView(k, { convId } = {}) {
  const dl = (pairs) => h('dl', { class: 'fields' }, pairs.filter(([, v]) => v !== undefined).map(([label, v, opts = {}]) => [
    h('dt', { text: label }), h('dd', { dir: opts.dir || 'auto', class: opts.cls || null, text: v === null || v === '' ? '—' : v })]));
  const allowed = k.allowed_transitions || [];
  const root = h('section', { class: 'case', dataset: { caseRef: k.reference }, 'aria-labelledby': `case-title-${k.reference}` },
    h('header', { class: 'case-head' },
      h('h3', { id: `case-title-${k.reference}`, dir: 'ltr', text: k.reference }), stepBadge(k.step)),
    stepper(k.step),
    h('h4', { text: t('case.fields') }),
    dl([
      [t('case.full_name'), k.full_name],
      [t('case.national_id'), k.national_id, { dir: 'ltr', cls: 'nid' }],
      [t('case.mobile'), k.mobile, { dir: 'ltr' }],
      [t('case.city'), k.city],
      [t('case.service_type'), tOr(`service.${k.service_type}`, k.service_type)],
      [t('case.description'), k.description],
      [t('case.channel'), tOr(`channel.${k.channel}`, k.channel)],
      [t('case.verification'), k.verification_method ? tOr(`method.${k.verification_method}`, k.verification_method) : null],
      [t('case.appointment'), k.appointment ? fmtDateTime(k.appointment) : null],
      [t('case.created_at'), k.created_at ? fmtDateTime(k.created_at) : null],
    ]));
  // workflow
  const wf = h('div', { class: 'workflow' }, h('h4', { text: t('case.next_steps') }));
  if (!allowed.length) wf.append(h('p', { class: 'muted', text: t('case.no_transitions') }));
  const btns = h('div', { class: 'transition-buttons' }, allowed.map((to) => h('button', {
    type: 'button', class: `btn ${to === 'rejected' ? 'btn-danger-outline' : 'btn-primary'}`, dataset: { to },
    text: t('case.move_to', { step: tOr(`step.${to}`, to) }),
    onclick: () => openTransitionForm(root, k, to, btns) })));
  wf.append(btns);
  root.append(wf);
  const cid = convId ?? k.conversation_id;
  if (cid && !['approved', 'rejected', 'closed'].includes(k.step)) {
    root.append(h('button', { type: 'button', class: 'btn btn-ghost', id: 'btn-request-docs', text: t('case.request_docs'),
      onclick: async (e) => {
        e.target.disabled = true;
        try { await api.requestDocuments(cid, k.reference); toast(t('case.docs_requested')); }
        catch (err) { if (err.status !== 401) toast(t('common.error', { msg: errText(err) }), 'error'); }
        finally { e.target.disabled = false; }
      } }));
  }
  // documents
  root.append(h('h4', { text: t('case.documents') }));
  const docs = k.documents || [];
  // A link where there is a file to fetch: a provider's media id, or a web chat upload's.
  const docLabel = (d) => [
    h('span', { text: tOr(`media.${d.media_kind}`, t('media.other')) }), ' ',
    h('span', { class: 'muted', dir: 'ltr', text: [maskIds(noBidi(d.filename)), d.mime].filter(Boolean).join(' · ') })];
  root.append(docs.length ? h('ul', { class: 'docs' }, docs.map((d) => h('li', {},
    d.media_id
      ? mediaLink(mediaPath.caseDocument(k.reference, d.id), 'doc-link', docLabel(d))
      : h('span', { class: 'doc-link' }, docLabel(d)), ' ',
    h('time', { class: 'muted', text: d.at ? fmtDateTime(d.at) : '' }))))
    : h('p', { class: 'muted', text: t('case.no_documents') }));
  // history
  root.append(h('h4', { text: t('case.history') }));
  const events = k.events || [];
  root.append(events.length ? h('ol', { class: 'history' }, [...events].reverse().map((ev) => h('li', {},
    h('div', { class: 'hist-line' },
      h('strong', { text: `${ev.from ? tOr(`step.${ev.from}`, ev.from) + ' ← ' : ''}${tOr(`step.${ev.to}`, ev.to)}`.replace(' ← ', document.documentElement.dir === 'rtl' ? ' ← ' : ' → ') }),
      h('time', { class: 'muted', text: ev.at ? fmtDateTime(ev.at) : '' })),
    ev.staff_name ? h('div', { class: 'muted', text: ev.staff_name }) : null,
    ev.note ? h('p', { class: 'hist-note', dir: 'auto', text: ev.note }) : null)))
    : h('p', { class: 'muted', text: t('case.no_history') }));
  return root;
}

function openTransitionForm(root, k, to, btns) {
  root.querySelector('.transition-form')?.remove();
  const needsMethod = to === 'collecting_info';
  const err = h('p', { class: 'form-error', role: 'alert' });
  const note = h('textarea', { id: 'transition-note', rows: 2, dir: 'auto' });
  const method = needsMethod ? h('fieldset', { class: 'methods' },
    h('legend', { text: t('case.verification') }),
    METHODS.map((m) => h('label', { class: 'radio' },
      h('input', { type: 'radio', name: 'verification_method', value: m, checked: k.verification_method === m }),
      h('span', { text: t(`method.${m}`) })))) : null;
  const appt = needsMethod ? h('input', { type: 'datetime-local', id: 'transition-appointment' }) : null;
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'transition-confirm', text: t('common.confirm') });
  const form = h('form', { class: 'transition-form', 'aria-label': t('case.move_to', { step: tOr(`step.${to}`, to) }) },
    h('p', { class: 'tf-title' }, h('strong', { text: t('case.move_to', { step: tOr(`step.${to}`, to) }) })),
    method,
    appt ? h('div', { class: 'field' }, h('label', { for: 'transition-appointment', text: t('case.appointment') }), appt) : null,
    h('div', { class: 'field' }, h('label', { for: 'transition-note', text: t('case.note') }), note),
    err,
    h('div', { class: 'form-actions' }, submit,
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => { form.remove(); btns.querySelector('button')?.focus(); } })));
  form.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); form.remove(); btns.querySelector('button')?.focus(); } });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { to, note: note.value.trim() };
    if (needsMethod) {
      const m = form.querySelector('input[name=verification_method]:checked');
      if (!m) { err.textContent = t('case.need_method'); form.querySelector('input[name=verification_method]').focus(); return; }
      body.verification_method = m.value;
      if (appt.value) body.appointment = new Date(appt.value).toISOString();
    }
    submit.disabled = true;
    try {
      await api.transition(k.reference, body);
      toast(t('case.moved', { step: tOr(`step.${to}`, to) }));
      const fresh = await api.caseGet(k.reference);
      state.cases.set(k.reference, fresh);
      const view = caseView(fresh, { convId: fresh.conversation_id });
      root.replaceWith(view);
      view.querySelector('.transition-buttons button')?.focus();
      if (state.route.view === 'cases' && !state.route.arg) renderCases(document.getElementById('main'), null);
    } catch (ex) {
      submit.disabled = false;
      if (ex.status !== 401) err.textContent = t('conv.conflict', { msg: errText(ex) });
    }
  });
  btns.after(form);
  (form.querySelector('input[type=radio]') || note).focus();
}

// ---------------------------------------------------------------- cases view

async function renderCases(main, ref) {
  clear(main);
  if (ref) {
    const holder = h('div', { class: 'case-page' },
      h('a', { href: '#/cases', class: 'btn btn-ghost', text: `${document.documentElement.dir === 'rtl' ? '→' : '←'} ${t('case.list')}` }));
    main.append(holder);
    const box = h('div', { class: 'card' });
    holder.append(box);
    loadCaseInto(box, ref, null);
    return;
  }
  const filter = h('select', { id: 'case-filter' },
    h('option', { value: '', text: t('case.all_steps') }), STEPS.map((s) => h('option', { value: s, text: t(`step.${s}`) })));
  filter.value = sessionStorage.getItem('aoun.caseFilter') || '';
  const body = h('div', { class: 'card table-wrap' }, h('p', { class: 'muted', text: t('common.loading') }));
  filter.addEventListener('change', () => { sessionStorage.setItem('aoun.caseFilter', filter.value); renderCases(main, null); });
  main.append(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', { text: t('case.list') }),
      h('div', { class: 'field inline' }, h('label', { for: 'case-filter', text: t('case.filter') }), filter)),
    body));
  try {
    const r = await api.cases(filter.value || undefined);
    clear(body);
    const cases = r.cases || [];
    if (!cases.length) { body.append(h('p', { class: 'muted', text: t('case.empty') })); return; }
    // National IDs are never shown in lists.
    body.append(h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, [t('case.reference'), t('case.full_name'), t('case.service_type'), t('case.city'), t('case.channel'), t('case.step'), t('case.created_at')]
        .map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', {}, cases.map((k) => h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: `#/cases/${encodeURIComponent(k.reference)}`, dir: 'ltr', text: k.reference })),
        h('td', { dir: 'auto', text: k.full_name || '—' }),
        h('td', { text: tOr(`service.${k.service_type}`, k.service_type || '—') }),
        h('td', { dir: 'auto', text: k.city || '—' }),
        h('td', {}, channelBadge(k.channel)),
        h('td', {}, stepBadge(k.step)),
        h('td', { text: k.created_at ? fmtDateTime(k.created_at) : '—' }))))));
  } catch (e) {
    clear(body).append(h('p', { class: 'form-error', text: t('common.error', { msg: errText(e) }) }));
  }
}

// ---------------------------------------------------------------- dashboard

function isoDay(d) { return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`; }

async function renderDashboard(main) {
  clear(main);
  const today = new Date();
  const from = h('input', { type: 'date', id: 'dash-from', value: sessionStorage.getItem('aoun.dashFrom') || isoDay(new Date(today.getTime() - 29 * 86400000)) });
  const to = h('input', { type: 'date', id: 'dash-to', value: sessionStorage.getItem('aoun.dashTo') || isoDay(today) });
  const body = h('div', { class: 'dash-body', 'aria-live': 'polite' }, h('p', { class: 'muted', text: t('common.loading') }));
  const form = h('form', { class: 'dash-filter' },
    h('div', { class: 'field inline' }, h('label', { for: 'dash-from', text: t('dash.from') }), from),
    h('div', { class: 'field inline' }, h('label', { for: 'dash-to', text: t('dash.to') }), to),
    h('button', { type: 'submit', class: 'btn btn-primary', text: t('dash.apply') }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('aoun.dashFrom', from.value); sessionStorage.setItem('aoun.dashTo', to.value);
    load();
  });
  main.append(h('div', { class: 'page dashboard' },
    h('div', { class: 'page-head' }, h('div', {}, h('h1', { text: t('dash.title') }), h('p', { class: 'muted intro', text: t('dash.intro') })), form),
    body));
  async function load() {
    clear(body).append(h('p', { class: 'muted', text: t('common.loading') }));
    try {
      const [r, cr] = await Promise.all([api.satisfaction(from.value, to.value), api.caseReport().catch(() => null)]);
      clear(body).append(dashboardBody(r, cr));
    } catch (e) {
      clear(body).append(h('p', { class: 'form-error', text: t('common.error', { msg: errText(e) }) }));
    }
  }
  load();
}

function dashboardBody(r, cr) {
  const frag = document.createDocumentFragment();
  const av = r.averages || {};
  frag.append(h('section', { class: 'kpis', 'aria-label': t('dash.title') },
    h('div', { class: 'kpi' }, h('span', { class: 'kpi-label', text: t('dash.invited') }), h('span', { class: 'kpi-value', id: 'kpi-invited', text: fmtNumber(r.invited) })),
    h('div', { class: 'kpi' }, h('span', { class: 'kpi-label', text: t('dash.responses') }), h('span', { class: 'kpi-value', id: 'kpi-responses', text: fmtNumber(r.responses) })),
    h('div', { class: 'kpi' }, h('span', { class: 'kpi-label', text: t('dash.rate') }), h('span', { class: 'kpi-value', text: r.response_rate === null || r.response_rate === undefined ? '—' : `${fmtNumber(r.response_rate * (r.response_rate <= 1 ? 100 : 1))}%` })),
    scoreMeter(t('dash.overall'), av.overall), scoreMeter(t('dash.speed'), av.speed), scoreMeter(t('dash.courtesy'), av.courtesy),
    cr ? h('div', { class: 'kpi' }, h('span', { class: 'kpi-label', text: t('dash.median_first') }), h('span', { class: 'kpi-value', text: fmtDuration(cr.median_first_response_seconds) })) : null));
  if (!r.responses) frag.append(h('p', { class: 'notice', text: t('dash.no_data') }));
  // Agents: a group with fewer answers than the bar shows its count only (no single person's ratings).
  if (r.min_group_responses > 0) frag.append(h('p', { class: 'muted', text: t('dash.min_group', { n: fmtNumber(r.min_group_responses) }) }));
  const dist = r.distribution || {};
  frag.append(h('section', { class: 'chart-grid', 'aria-labelledby': 'h-dist' },
    h('h2', { id: 'h-dist', text: t('dash.distribution') }),
    ['overall', 'speed', 'courtesy'].map((q) => barChart({
      title: t(`dash.${q}`), valueLabel: t('dash.count'), tone: 'score',
      items: ['5', '4', '3', '2', '1'].map((s) => ({ label: fmtNumber(Number(s)), value: Number(dist[q]?.[s] || 0) })) }))));
  const periods = r.by_period || [];
  frag.append(h('section', { class: 'chart-grid one', 'aria-labelledby': 'h-trend' },
    h('h2', { id: 'h-trend', class: 'sr-only', text: t('dash.trend') }),
    periods.length ? columnChart({ title: t('dash.trend'), valueLabel: t('dash.average'), subLabel: t('dash.responses'),
      points: periods.map((p) => ({ label: shortPeriod(p.period), value: p.overall, sub: p.responses })) })
      : h('figure', { class: 'chart' }, h('figcaption', { text: t('dash.trend') }), h('p', { class: 'muted', text: t('dash.no_data') }))));
  const groupChart = (title, obj, labelOf) => {
    const entries = Object.entries(obj || {});
    if (!entries.length) return h('figure', { class: 'chart' }, h('figcaption', { text: title }), h('p', { class: 'muted', text: t('dash.no_data') }));
    return barChart({ title, valueLabel: t('dash.overall'), max: 5, digits: 2,
      items: entries.map(([k, v]) => ({ label: labelOf(k), value: v.overall, display: `${fmtNumber(v.overall, 2)} (${fmtNumber(v.responses)})` })) });
  };
  frag.append(h('section', { class: 'chart-grid', 'aria-labelledby': 'h-groups' },
    h('h2', { id: 'h-groups', class: 'sr-only', text: `${t('dash.by_channel')} / ${t('dash.by_service')}` }),
    groupChart(t('dash.by_channel'), r.by_channel, (k) => tOr(`channel.${k}`, k)),
    groupChart(t('dash.by_service'), r.by_service_type, (k) => tOr(`service.${k}`, k))));
  if (Array.isArray(r.by_staff)) {
    frag.append(h('section', { class: 'card', 'aria-labelledby': 'h-staff' },
      h('h2', { id: 'h-staff', text: t('dash.by_staff') }), h('p', { class: 'muted', text: t('dash.by_staff_note') }),
      r.by_staff.length ? h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, [t('dash.name'), t('dash.responses'), t('dash.overall'), t('dash.speed'), t('dash.courtesy')].map((x) => h('th', { scope: 'col', text: x })))),
        h('tbody', {}, r.by_staff.map((s) => h('tr', {}, h('th', { scope: 'row', text: s.display_name }),
          h('td', { text: fmtNumber(s.responses) }), h('td', { text: fmtNumber(s.overall, 2) }), h('td', { text: fmtNumber(s.speed, 2) }), h('td', { text: fmtNumber(s.courtesy, 2) })))))
        : h('p', { class: 'muted', text: t('dash.no_data') })));
  }
  if (cr?.by_step) {
    frag.append(h('section', { class: 'chart-grid one', 'aria-labelledby': 'h-cases' },
      h('h2', { id: 'h-cases', class: 'sr-only', text: t('dash.cases') }),
      barChart({ title: t('dash.cases'), valueLabel: t('dash.count'), items: STEPS.map((s) => ({ label: t(`step.${s}`), value: Number(cr.by_step[s] || 0) })) })));
  }
  return frag;
}

function shortPeriod(p) {
  const d = new Date(`${p}T00:00:00`);
  if (isNaN(d)) return p;
  return new Intl.DateTimeFormat(getLang() === 'ar' ? 'ar-SA-u-ca-gregory-nu-latn' : 'en-GB', { day: 'numeric', month: 'short' }).format(d);
}

// ---------------------------------------------------------------- staff

async function renderStaff(main) {
  clear(main);
  if (state.me.role !== 'admin') { main.append(h('div', { class: 'page' }, h('p', { class: 'notice', text: t('staff.forbidden') }))); return; }
  const list = h('div', { class: 'card table-wrap' }, h('p', { class: 'muted', text: t('common.loading') }));
  const err = h('p', { class: 'form-error', role: 'alert' });
  const field = (id, label, input, hint) => h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hint ? h('p', { class: 'hint', id: `${id}-hint`, text: hint }) : null);
  const u = h('input', { id: 'staff-username', required: true, autocomplete: 'off', dir: 'ltr' });
  const dn = h('input', { id: 'staff-display', required: true, dir: 'auto' });
  const pw = h('input', { id: 'staff-password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password', dir: 'ltr', 'aria-describedby': 'staff-password-hint' });
  const role = h('select', { id: 'staff-role' }, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r, text: t(`role.${r}`) })));
  const form = h('form', { class: 'card staff-form', 'aria-labelledby': 'h-add-staff' },
    h('h2', { id: 'h-add-staff', text: t('staff.add') }),
    field('staff-username', t('staff.username'), u), field('staff-display', t('staff.display_name'), dn),
    field('staff-password', t('staff.password'), pw, t('staff.password_hint')), field('staff-role', t('staff.role'), role),
    err, h('button', { type: 'submit', class: 'btn btn-primary', text: t('staff.create') }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault(); err.textContent = '';
    if (!form.reportValidity()) return;
    try {
      await api.createStaff({ username: u.value.trim(), password: pw.value, role: role.value, display_name: dn.value.trim() });
      toast(t('staff.created')); form.reset(); load();
    } catch (ex) { if (ex.status !== 401) err.textContent = t('common.error', { msg: errText(ex) }); }
  });
  main.append(h('div', { class: 'page' }, h('div', { class: 'page-head' }, h('h1', { text: t('staff.title') })),
    h('div', { class: 'staff-grid' }, list, form)));
  async function load() {
    try {
      const r = await api.staff();
      const rows = r.staff || r || [];
      clear(list).append(h('table', { class: 'data', id: 'staff-table' },
        h('thead', {}, h('tr', {}, [t('staff.username'), t('staff.display_name'), t('staff.role')].map((x) => h('th', { scope: 'col', text: x })))),
        h('tbody', {}, rows.map((s) => h('tr', {}, h('th', { scope: 'row', dir: 'ltr', text: s.username }), h('td', { dir: 'auto', text: s.display_name || '—' }), h('td', { text: tOr(`role.${s.role}`, s.role) }))))));
    } catch (ex) { clear(list).append(h('p', { class: 'form-error', text: t('common.error', { msg: errText(ex) }) })); }
  }
  load();
}

// ---------------------------------------------------------------- keyboard

document.addEventListener('keydown', (e) => {
  if (!state.me) return;
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) || e.target.isContentEditable;
  if (e.key === 'Escape') {
    const panel = document.getElementById('canned-panel');
    if (panel && !panel.hidden) { toggleCanned(); e.preventDefault(); }
    return;
  }
  if (e.altKey && !e.ctrlKey && !e.metaKey) {
    const map = { Digit1: 'waiting', Digit2: 'mine', Digit3: 'all' };
    if (map[e.code]) {
      e.preventDefault();
      if (state.route.view !== 'inbox') location.hash = '#/inbox';
      setTimeout(() => { selectTab(map[e.code]); document.getElementById(`tab-${map[e.code]}`)?.focus(); }, 0);
    } else if (e.code === 'KeyN') {
      e.preventDefault();
      const head = listFor('waiting')[0];
      if (head) location.hash = `#/inbox/${head.id}`;
    } else if (e.code === 'KeyR') {
      e.preventDefault();
      document.getElementById('reply-text')?.focus();
    }
    return;
  }
  if (!typing && e.key === '?') { e.preventDefault(); showShortcuts(); }
});

boot();

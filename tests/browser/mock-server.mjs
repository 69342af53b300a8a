// Development mock of the aoun HTTP API (the contract in docs/console.md), for working on the
// console and the chat page without the C++ server:  node tests/browser/mock-server.mjs [port]
// then open http://127.0.0.1:<port>/console/ (admin / admin-password-123). In-memory, seeded
// with sample data. The browser tests never use it: they run against the real binary.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { acceptUpgrade } from './lib/ws.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const port = Number(process.argv[2] || 8099);
const now = () => Math.floor(Date.now() / 1000);
const staff = [
  { id: 1, username: 'admin', display_name: 'نورة العتيبي', role: 'admin', password: 'admin-password-123' },
  { id: 2, username: 'khalid', display_name: 'خالد الشهري', role: 'agent', password: 'agent-password-123' },
];
const tokens = new Map();
let msgId = 100;
const convs = [
  { id: 1, channel: 'whatsapp', address: '+966501234567', display_name: 'أم فهد', mode: 'waiting', priority: 1, queue_reason: 'danger', queued_at: now() - 120, assigned_staff: null, last_message_at: now() - 120, last_message_preview: 'أحس إني مو بأمان في البيت', lang: 'ar', window_open: true, cases: [] },
  { id: 2, channel: 'telegram', address: '@salem_k', display_name: 'سالم', mode: 'waiting', priority: 2, queue_reason: 'requested', queued_at: now() - 600, assigned_staff: null, last_message_at: now() - 600, last_message_preview: 'موظف', lang: 'ar', window_open: true, cases: ['AWN-2026-000041'] },
  { id: 3, channel: 'sms', address: '+966551112233', display_name: null, mode: 'staff', priority: 2, queue_reason: 'misunderstood', queued_at: now() - 3600, assigned_staff: { id: 2, display_name: 'خالد الشهري' }, last_message_at: now() - 1800, last_message_preview: 'رقم هويتي 1012345674', lang: 'ar', window_open: true, cases: [] },
  { id: 4, channel: 'webchat', address: 'web:8f2c', display_name: 'زائر الموقع', mode: 'bot', priority: 2, queue_reason: null, queued_at: null, assigned_staff: null, last_message_at: now() - 7200, last_message_preview: 'متى أوقات الدوام؟', lang: 'ar', window_open: true, cases: [] },
  { id: 5, channel: 'whatsapp', address: '+966509876543', display_name: 'Sara', mode: 'resolved', priority: 2, queue_reason: null, queued_at: null, assigned_staff: null, last_message_at: now() - 90000, last_message_preview: 'Thank you', lang: 'en', window_open: false, cases: [] },
];
const messages = {
  1: [
    { id: 1, direction: 'in', sender: 'beneficiary', kind: 'text', text: 'السلام عليكم', created_at: now() - 300 },
    { id: 2, direction: 'out', sender: 'bot', kind: 'choice', text: 'مرحبًا بكم في الجمعية. قبل أن نبدأ، نحتاج موافقتكم…', choices: [{ id: 'consent.yes', title: 'أوافق' }, { id: 'consent.no', title: 'لا أوافق' }], created_at: now() - 299, delivery_status: 'read' },
    { id: 3, direction: 'in', sender: 'beneficiary', kind: 'text', text: 'أحس إني مو بأمان في البيت', created_at: now() - 120 },
    { id: 4, direction: 'out', sender: 'bot', kind: 'text', text: 'إذا كنتم في خطر الآن فاتصلوا على ٩١١. أبلغنا فريقنا وسيتواصل معكم موظف حالًا.', created_at: now() - 119, delivery_status: 'delivered' },
  ],
  2: [
    { id: 5, direction: 'in', sender: 'beneficiary', kind: 'media', text: 'هذا المحضر', media: { kind: 'document', id: 'm1', mime: 'application/pdf', filename: 'report.pdf' }, created_at: now() - 700 },
    { id: 6, direction: 'in', sender: 'beneficiary', kind: 'text', text: 'موظف', created_at: now() - 600 },
    { id: 7, direction: 'out', sender: 'bot', kind: 'text', text: 'أبلغنا فريقنا، وسيتواصل معكم أحد الموظفين هنا في أقرب وقت.', created_at: now() - 599, delivery_status: 'sent' },
  ],
  3: [], 4: [], 5: [],
};
const cases = {
  'AWN-2026-000041': { reference: 'AWN-2026-000041', channel: 'telegram', step: 'submitted', verification_method: null, appointment: null, full_name: 'سالم عبدالله القحطاني', national_id: '1012345674', mobile: '0501234567', city: 'الرياض', service_type: 'legal', description: 'سُرقت سيارتي وأحتاج استشارة قانونية.', created_at: new Date(Date.now() - 86400000).toISOString(), updated_at: new Date().toISOString(), conversation_id: 2, events: [{ from: null, to: 'submitted', staff_name: null, note: '', at: new Date(Date.now() - 86400000).toISOString() }], documents: [{ media_kind: 'document', media_id: 'm1', mime: 'application/pdf', filename: 'report.pdf', at: new Date().toISOString() }] },
};
const NEXT = { submitted: ['collecting_info'], collecting_info: ['evaluating'], evaluating: ['approved', 'rejected'], approved: ['closed'], rejected: ['closed'], closed: [] };
const streams = new Set();
const broadcast = (ev) => { for (const s of streams) s.send(JSON.stringify(ev)); };

function send(res, status, body) { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); }
function auth(req) { const m = /^Bearer (.+)$/.exec(req.headers.authorization || ''); return m && tokens.get(m[1]); }
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  let body = '';
  for await (const c of req) body += c;
  const p = url.pathname;
  // the chat page's file (the bytes as the body): taken, not kept
  if (p === '/chat/upload') return send(res, 200, { ok: true, client_id: req.headers['x-client-id'] || '' });
  const json = body ? JSON.parse(body) : {};
  if (p.startsWith('/console/') || p.startsWith('/chat/') || p.startsWith('/vendor/')) {
    let f = path.join(ROOT, p.replace(/\/$/, '/index.html'));
    if (!f.startsWith(ROOT) || !fs.existsSync(f)) return send(res, 404, { error: 'not_found' });
    res.writeHead(200, { 'Content-Type': types[path.extname(f)] || 'application/octet-stream' });
    return res.end(fs.readFileSync(f));
  }
  if (p === '/api/v1/auth/login') {
    const s = staff.find((x) => x.username === json.username && x.password === json.password);
    if (!s) return send(res, 401, { error: 'unauthorized', message: 'wrong username or password' });
    const tok = Math.random().toString(36).slice(2);
    tokens.set(tok, s);
    return send(res, 200, { token: tok, expires_at: now() + 3600, staff: { id: s.id, username: s.username, display_name: s.display_name, role: s.role } });
  }
  const me = auth(req);
  if (p.startsWith('/api/') && !me) return send(res, 401, { error: 'unauthorized', message: 'missing or expired token' });
  let m;
  if (p === '/api/v1/auth/logout') { tokens.delete(req.headers.authorization.slice(7)); return send(res, 200, {}); }
  if (p === '/api/v1/me') return send(res, 200, { staff: { id: me.id, username: me.username, display_name: me.display_name, role: me.role } });
  if (p === '/api/v1/conversations') {
    const mode = url.searchParams.get('mode');
    return send(res, 200, { conversations: convs.filter((c) => mode === 'all' || c.mode === mode) });
  }
  if ((m = /^\/api\/v1\/conversations\/(\d+)(?:\/(\w[\w-]*))?$/.exec(p))) {
    const c = convs.find((x) => x.id === Number(m[1]));
    if (!c) return send(res, 404, { error: 'not_found' });
    const who = { id: me.id, display_name: me.display_name };
    if (!m[2]) return send(res, 200, c);
    if (m[2] === 'messages' && req.method === 'GET') return send(res, 200, { messages: messages[c.id] || [] });
    if (m[2] === 'messages') {
      if (c.channel === 'whatsapp' && !c.window_open) return send(res, 409, { error: 'conflict', message: 'The 24-hour window is closed; send an approved template.', template: 'case_followup' });
      const msg = { id: ++msgId, direction: 'out', sender: 'staff', staff_name: me.display_name, kind: 'text', text: json.text, created_at: now(), delivery_status: 'pending' };
      (messages[c.id] ||= []).push(msg);
      c.last_message_at = msg.created_at; c.last_message_preview = json.text;
      broadcast({ type: 'message.new', conversation_id: c.id, message: msg });
      return send(res, 200, msg);
    }
    if (m[2] === 'takeover') {
      if (c.mode === 'staff' && c.assigned_staff?.id !== me.id && !json.override) return send(res, 409, { error: 'conflict', message: 'held by someone else' });
      Object.assign(c, { mode: 'staff', assigned_staff: who });
    } else if (m[2] === 'release') Object.assign(c, { mode: 'bot', assigned_staff: null });
    else if (m[2] === 'resolve') Object.assign(c, { mode: 'resolved', assigned_staff: null });
    else if (m[2] === 'template') return send(res, 200, { id: ++msgId, direction: 'out', sender: 'staff', kind: 'text', text: `[template ${json.name}]`, created_at: now(), delivery_status: 'pending' });
    else if (m[2] === 'request-documents') return send(res, 200, {});
    broadcast({ type: 'conversation.updated', conversation: c });
    return send(res, 200, c);
  }
  if (p === '/api/v1/cases') return send(res, 200, { cases: Object.values(cases).filter((k) => !url.searchParams.get('step') || k.step === url.searchParams.get('step')).map(({ events, documents, ...k }) => k) });
  if ((m = /^\/api\/v1\/cases\/([\w-]+)(\/transition)?$/.exec(p))) {
    const k = cases[m[1]];
    if (!k) return send(res, 404, { error: 'not_found' });
    if (m[2]) {
      if (!NEXT[k.step].includes(json.to)) return send(res, 409, { error: 'conflict', message: 'invalid transition' });
      k.events.push({ from: k.step, to: json.to, staff_name: me.display_name, note: json.note, at: new Date().toISOString() });
      k.step = json.to;
      if (json.verification_method) k.verification_method = json.verification_method;
      if (json.appointment) k.appointment = json.appointment;
      broadcast({ type: 'case.updated', case: k });
    }
    return send(res, 200, { ...k, allowed_transitions: NEXT[k.step] });
  }
  if (p === '/api/v1/staff' && req.method === 'GET') return me.role === 'admin' ? send(res, 200, { staff: staff.map(({ password, ...s }) => s) }) : send(res, 403, { error: 'forbidden' });
  if (p === '/api/v1/staff') { staff.push({ id: staff.length + 1, ...json }); return send(res, 200, { id: staff.length }); }
  if (p === '/api/v1/canned-answers') return send(res, 200, { answers: [
    { id: 'regulations', title: 'اللائحة الأساسية', text: 'تعمل الجمعية وفق لائحتها الأساسية المعتمدة، ونقدم خدماتنا لضحايا الجريمة وأسرهم.', lang: 'ar' },
    { id: 'research', title: 'دليل البحث الاجتماعي', text: 'سيتواصل معكم الباحث الاجتماعي لتحديد موعد مقابلة أو زيارة ميدانية.', lang: 'ar' },
    { id: 'support', title: 'دليل سياسة الدعم', text: 'يُصرف الدعم حسب الاستحقاق بعد دراسة الطلب وتقييمه.', lang: 'ar' },
    { id: 'form', title: 'نموذج طلب الدعم', text: 'يمكنكم تقديم طلب الدعم هنا في المحادثة بكتابة ١.', lang: 'ar' },
    { id: 'form-en', title: 'Support request form', text: 'You can submit a support request here by writing 1.', lang: 'en' }] });
  if (p === '/api/v1/reports/satisfaction') return send(res, 200, {
    invited: 48, responses: 31, response_rate: 0.646, averages: { overall: 4.3, speed: 3.9, courtesy: 4.6 },
    distribution: { overall: { 1: 1, 2: 1, 3: 3, 4: 9, 5: 17 }, speed: { 1: 2, 2: 2, 3: 5, 4: 10, 5: 12 }, courtesy: { 1: 0, 2: 1, 3: 2, 4: 6, 5: 22 } },
    by_channel: { whatsapp: { responses: 19, overall: 4.4 }, telegram: { responses: 6, overall: 4.1 }, sms: { responses: 3, overall: 3.7 }, webchat: { responses: 3, overall: 4.7 } },
    by_service_type: { legal: { responses: 12, overall: 4.5 }, psychological: { responses: 8, overall: 4.4 }, social: { responses: 6, overall: 4.0 }, financial: { responses: 5, overall: 3.8 } },
    by_period: Array.from({ length: 14 }, (_, i) => ({ period: new Date(Date.now() - (13 - i) * 86400000).toISOString().slice(0, 10), responses: 1 + (i % 4), overall: 3.6 + ((i * 7) % 14) / 10 })),
    by_staff: [{ display_name: 'خالد الشهري', responses: 12, overall: 4.5, speed: 4.1, courtesy: 4.8 }] });
  if (p === '/api/v1/reports/cases') return send(res, 200, { by_step: { submitted: 4, collecting_info: 3, evaluating: 2, approved: 5, rejected: 1, closed: 9 }, median_first_response_seconds: 420 });
  send(res, 404, { error: 'not_found' });
});

server.on('upgrade', (req, socket) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/api/v1/stream') {
    if (!tokens.get(url.searchParams.get('token'))) { socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n'); return; }
    const c = acceptUpgrade(req, socket); streams.add(c); c.onclose = () => streams.delete(c);
  } else if (url.pathname === '/chat/ws') {
    const c = acceptUpgrade(req, socket);
    const history = [];
    const say = (text, choices = []) => { const msg = { direction: 'out', text, choices, created_at: now() }; history.push(msg); c.send(JSON.stringify({ type: 'message', message: msg })); };
    c.send(JSON.stringify({ type: 'session', session: 'mock-session-made-by-the-mock-server-0000000' }));
    c.send(JSON.stringify({ type: 'history', messages: history }));
    // like the real server: the bot speaks once the visitor has written
    c.onmessage = (raw) => {
      const m = JSON.parse(raw);
      setTimeout(() => (history.length === 0
        ? say('مرحبًا بكم. قبل أن نبدأ، نحتاج موافقتكم على إشعار الخصوصية.', [{ id: 'consent.yes', title: 'أوافق' }, { id: 'consent.no', title: 'لا أوافق' }, { id: 'lang.toggle', title: 'English' }])
        : say(`وصلتنا: ${m.title || m.text}`, [{ id: 'menu.help', title: 'تقديم طلب مساعدة' }, { id: 'menu.staff', title: 'التحدث مع موظف' }])), 300);
    };
  } else socket.destroy();
});

server.listen(port, '127.0.0.1', () => console.log(`mock listening on http://127.0.0.1:${port}`));
setInterval(() => { const c = convs[1]; const msg = { id: ++msgId, direction: 'in', sender: 'beneficiary', kind: 'text', text: 'هل من جديد؟', created_at: now() }; (messages[c.id] ||= []).push(msg); c.last_message_at = msg.created_at; c.last_message_preview = msg.text; broadcast({ type: 'message.new', conversation_id: c.id, message: msg }); }, 45000).unref();

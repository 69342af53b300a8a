// Starts the real aoun binary on a free port with a temporary database, and a fake WhatsApp
// Graph API that records every POST to /<phone_number_id>/messages.
import { spawn } from 'node:child_process';
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const ADMIN = { username: 'admin', password: 'Browser-tests-admin-1' };
const WA = { verify: 'verify-browser-tests', secret: 'app-secret-browser-tests', token: 'wa-token-browser-tests', phoneId: '106540352242922' };

// Media: set `media.set(id, { bytes: Buffer, mime })`; GET /<id> answers Graph's lookup JSON with a
// url on /download/<id> of the same fake, which serves the bytes. Both GETs land in `mediaGets`.
export async function startFakeGraph() {
  const posts = [];
  const media = new Map();
  const mediaGets = [];
  let n = 0;
  const waiters = new Set();
  let port = 0;
  // refuseToken: every send is answered 401 / code 190 (counted in `refused`) while it is true.
  const fake = { refuseToken: false, refused: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.method === 'GET') {
        mediaGets.push({ path: req.url, auth: req.headers.authorization });
        const dl = /^\/download\/([A-Za-z0-9_-]+)$/.exec(req.url);
        const lookup = /^\/([A-Za-z0-9_-]+)$/.exec(req.url);
        const m = media.get((dl || lookup || [])[1]);
        if (!m) { res.writeHead(404, { 'Content-Type': 'application/json' }); res.end('{"error":{"code":100}}'); return; }
        if (dl) { res.writeHead(200, { 'Content-Type': m.mime, 'Content-Length': m.bytes.length }); res.end(m.bytes); return; }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ messaging_product: 'whatsapp', url: `http://127.0.0.1:${port}/download/${lookup[1]}`, mime_type: m.mime, file_size: m.bytes.length, id: lookup[1] }));
        return;
      }
      let json = null; try { json = JSON.parse(body); } catch { /* keep raw */ }
      if (req.method === 'POST' && req.url.endsWith('/messages') && fake.refuseToken) {
        // an expired access token, as Meta answers it
        fake.refused += 1;
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end('{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190}}');
        return;
      }
      if (req.method === 'POST' && req.url.endsWith('/messages')) {
        posts.push({ path: req.url, auth: req.headers.authorization, body: json ?? body });
        for (const w of [...waiters]) w();
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ messaging_product: 'whatsapp', messages: [{ id: `wamid.out.${++n}` }] }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"success":true}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  port = server.address().port;
  // Waits until a recorded POST satisfies pred (checked on every new POST), or times out.
  function waitFor(pred, timeout = 15000, what = 'a message at the fake Graph API') {
    return new Promise((resolve, reject) => {
      const check = () => { const hit = posts.find(pred); if (hit) { cleanup(); resolve(hit); } };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${what}; got ${posts.length} POSTs:\n` + posts.slice(-5).map((p) => JSON.stringify(p.body).slice(0, 400)).join('\n'))); }, timeout);
      const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
      waiters.add(check);
      check();
    });
  }
  Object.assign(fake, { port, posts, media, mediaGets, waitFor, base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }) });
  return fake;
}

export async function startAoun(bin, graphBase, extraEnv = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aoun-browser-'));
  const env = {
    ...process.env,
    AOUN_LISTEN: '127.0.0.1:0',
    AOUN_DB: path.join(dir, 'aoun.db'),
    AOUN_ADMIN_USER: ADMIN.username, AOUN_ADMIN_PASSWORD: ADMIN.password,
    AOUN_WHATSAPP_VERIFY_TOKEN: WA.verify, AOUN_WHATSAPP_APP_SECRET: WA.secret,
    AOUN_WHATSAPP_TOKEN: WA.token, AOUN_WHATSAPP_PHONE_NUMBER_ID: WA.phoneId,
    AOUN_WHATSAPP_API_BASE: graphBase,
    AOUN_LOG_LEVEL: process.env.AOUN_LOG_LEVEL || 'warn',
    ...extraEnv,
  };
  const child = spawn(bin, ['serve'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const logFile = path.join(dir, 'aoun.log');
  const log = fs.createWriteStream(logFile);
  child.stderr.on('data', (d) => log.write(d));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`aoun did not print "listening on" within 20 s:\n${out}`)), 20000);
    child.stdout.on('data', (d) => {
      log.write(d);
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`aoun exited (${code}) before listening; log in ${logFile}:\n${out}`)); });
  });
  child.stdout.on('data', () => {});
  return {
    base, dir, logFile, child,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => { const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 8000); child.on('exit', () => { clearTimeout(t); r(); }); });
      }
      log.end();
      if (!process.env.AOUN_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A WhatsApp user sending webhooks, signed like Meta does (HMAC-SHA256 of the raw body).
export function whatsappUser(base, { waId, name }) {
  const fixture = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/channels/whatsapp_text.json'), 'utf8'));
  let seq = 0;
  async function post(message) {
    const body = structuredClone(fixture);
    const value = body.entry[0].changes[0].value;
    value.metadata.phone_number_id = WA.phoneId;
    value.contacts[0].wa_id = waId;
    value.contacts[0].profile.name = name;
    value.messages = [{ from: waId, id: `wamid.browser.${waId}.${Date.now()}.${++seq}`, timestamp: String(Math.floor(Date.now() / 1000)), ...message }];
    const raw = JSON.stringify(body);
    const sig = crypto.createHmac('sha256', WA.secret).update(raw).digest('hex');
    const res = await fetch(`${base}/webhooks/whatsapp`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': `sha256=${sig}` }, body: raw });
    if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
  }
  return {
    text: (text) => post({ type: 'text', text: { body: text } }),
    // A text written at `unixSeconds` (delivered now: late, or retried by Meta)
    textWrittenAt: (text, unixSeconds) => post({ type: 'text', text: { body: text }, timestamp: String(unixSeconds) }),
    button: (id, title = id) => post({ type: 'interactive', interactive: { type: 'button_reply', button_reply: { id, title } } }),
    list: (id, title = id) => post({ type: 'interactive', interactive: { type: 'list_reply', list_reply: { id, title } } }),
    image: (id, mime = 'image/jpeg') => post({ type: 'image', image: { id, mime_type: mime, sha256: 'x' } }),
    document: (id, filename, mime = 'application/pdf') => post({ type: 'document', document: { id, filename, mime_type: mime, sha256: 'x' } }),
    location: (latitude, longitude, extra = {}) => post({ type: 'location', location: { latitude, longitude, ...extra } }),
    contact: (name, phone) => post({ type: 'contacts', contacts: [{ name: { formatted_name: name, first_name: name }, phones: [{ phone, type: 'CELL' }] }] }),
    // WhatsApp's notice that this person now writes from `newWaId` (a system message from the
    // old number, without contacts)
    changedNumber: async (newWaId) => {
      const body = structuredClone(fixture);
      const value = body.entry[0].changes[0].value;
      value.metadata.phone_number_id = WA.phoneId;
      delete value.contacts;
      value.messages = [{ from: waId, id: `wamid.browser.${waId}.${Date.now()}.${++seq}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'system', system: { body: `User ${name} changed from ${waId} to ${newWaId}`, wa_id: newWaId, type: 'user_changed_number' } }];
      const raw = JSON.stringify(body);
      const sig = crypto.createHmac('sha256', WA.secret).update(raw).digest('hex');
      const res = await fetch(`${base}/webhooks/whatsapp`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': `sha256=${sig}` }, body: raw });
      if (res.status !== 200) throw new Error(`system webhook answered ${res.status}: ${await res.text()}`);
    },
    // WhatsApp's status webhook for one of our messages (`errors` as Meta sends them on "failed")
    status: async (wamid, status, errors) => {
      const body = structuredClone(fixture);
      const value = body.entry[0].changes[0].value;
      value.metadata.phone_number_id = WA.phoneId;
      delete value.contacts;
      delete value.messages;
      value.statuses = [{ id: wamid, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: waId, ...(errors ? { errors } : {}) }];
      const raw = JSON.stringify(body);
      const sig = crypto.createHmac('sha256', WA.secret).update(raw).digest('hex');
      const res = await fetch(`${base}/webhooks/whatsapp`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': `sha256=${sig}` }, body: raw });
      if (res.status !== 200) throw new Error(`status webhook answered ${res.status}: ${await res.text()}`);
    },
  };
}

// Telegram, for the tests that need it: the fake Graph API answers the Bot API's POSTs too
// (any 2xx without "ok": false is a sent message).
const TG = { token: '123:browser-tests', secret: 'tg-secret-browser-tests' };
export const telegramEnv = (apiBase) => ({ AOUN_TELEGRAM_TOKEN: TG.token, AOUN_TELEGRAM_SECRET: TG.secret, AOUN_TELEGRAM_API_BASE: apiBase });

// A Telegram user sending updates with the webhook's secret token, as Telegram does.
export function telegramUser(base, { chatId, firstName }) {
  const fixture = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/channels/telegram_message.json'), 'utf8'));
  let update = 900000 + crypto.randomInt(100000);
  async function post(message, edited = false) {
    const body = structuredClone(fixture);
    body.update_id = ++update;
    const m = body.message;
    delete m.text;
    m.chat.id = m.from.id = chatId;
    m.chat.first_name = m.from.first_name = firstName;
    delete m.chat.last_name; delete m.from.last_name;
    m.date = Math.floor(Date.now() / 1000);
    Object.assign(m, message);
    if (edited) { m.edit_date = m.date; body.edited_message = m; delete body.message; }
    const res = await fetch(`${base}/webhooks/telegram`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': TG.secret }, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`telegram webhook answered ${res.status}: ${await res.text()}`);
  }
  // the person blocks ('kicked') or restarts ('member') the bot: the Bot API's my_chat_member
  async function membership(status) {
    const chat = { id: chatId, type: 'private', first_name: firstName };
    const bot = { id: 42, is_bot: true, first_name: 'Aoun' };
    const body = { update_id: ++update, my_chat_member: { chat, from: { id: chatId, is_bot: false, first_name: firstName }, date: Math.floor(Date.now() / 1000),
      old_chat_member: { status: status === 'kicked' ? 'member' : 'kicked', user: bot }, new_chat_member: { status, user: bot } } };
    const res = await fetch(`${base}/webhooks/telegram`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': TG.secret }, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`telegram webhook answered ${res.status}: ${await res.text()}`);
  }
  return {
    text: (text) => post({ text }),
    block: () => membership('kicked'),
    // a live location is shared as message `messageId`, then moved by editing it
    liveLocation: (messageId, latitude, longitude, livePeriod) => post({ message_id: messageId, location: { latitude, longitude, live_period: livePeriod } }),
    moveLocation: (messageId, latitude, longitude, livePeriod) => post({ message_id: messageId, location: { latitude, longitude, live_period: livePeriod } }, true),
  };
}

// A valid Saudi national ID (starts with 1, Luhn check digit), as the intake validator expects.
export function nationalId() {
  const d = [1, ...Array.from({ length: 8 }, () => crypto.randomInt(10))];
  for (let c = 0; c < 10; c++) {
    const all = [...d, c];
    const sum = all.reduce((s, v, i) => { if (i % 2 === 0) { v *= 2; v = Math.floor(v / 10) + (v % 10); } return s + v; }, 0);
    if (sum % 10 === 0) return all.join('');
  }
  throw new Error('unreachable');
}

// Everything the fake Graph API received, flattened to text, for assertions.
export function outboundText(p) {
  const b = p.body || {};
  return [b.text?.body, b.interactive?.body?.text, ...(b.interactive?.action?.buttons || []).map((x) => `${x.reply?.id} ${x.reply?.title}`),
    ...(b.interactive?.action?.sections || []).flatMap((s) => s.rows || []).map((r) => `${r.id} ${r.title}`), b.template?.name]
    .filter(Boolean).join('\n');
}

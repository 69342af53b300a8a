// The website chat page against the real aoun binary: a visitor completes the help-request
// intake with buttons and typed answers, gets a reference, and sees the history after a reload;
// a visitor sends a photo in the intake's documents step.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from '../lib/browser.mjs';
import { axeViolations, formatViolations } from '../lib/a11y.mjs';
import { startAoun, startFakeGraph, nationalId, ADMIN, REPO } from '../lib/server.mjs';

const BIN = process.env.AOUN_BIN || path.join(REPO, 'build/bot/aoun');
const SHOTS = path.join(REPO, 'docs/screenshots');
let graph, aoun, browser, page;

const theirs = () => page.locator('#messages .from-them').count();
async function say(text) {
  const n = await theirs();
  await page.fill('#text', text);
  await page.keyboard.press('Enter');
  await page.waitForFunction((k) => document.querySelectorAll('#messages .from-them').length > k, n);
}
async function choose(id) {
  const b = page.locator(`#messages .choice[data-choice-id="${id}"]:not([disabled])`).last();
  await b.waitFor();
  await b.click();
}
// From the consent to the intake's documents step, which asks for a photo or a PDF.
async function intakeUntilDocuments(name) {
  await choose('consent.yes');
  await choose('menu.help');
  await say(name);
  await say(nationalId());
  await say('0551234567');
  await say('جدة');
  await choose('service.psychological');
  await say('أحتاج من يسمعني بعد ما تعرضت له');
  await page.locator('#messages .from-them', { hasText: 'أرسلوا صورة أو ملف PDF' }).last().waitFor();
}
// The page opened as someone who never chatted on this browser: no stored id, none in the tab.
async function newVisitor() {
  await page.goto(`${aoun.base}/chat/`);
  await page.locator('#send:not([disabled])').waitFor();  // the session frame is in: nothing rewrites it now
  await page.evaluate(() => { localStorage.removeItem('aoun.chat.session'); sessionStorage.removeItem('aoun.chat.tab'); });
  await page.reload();
  await page.locator('#start:not([disabled])').waitFor();
}
const isUpload = (r) => new URL(r.url()).pathname === '/chat/upload';
// A 1×1 PNG (signature, IHDR, IDAT, IEND), what a photo's bytes begin with.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

describe('website chat', () => {
  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    graph = await startFakeGraph();
    aoun = await startAoun(BIN, graph.base);
    browser = await launch();
    page = browser.context.pages()[0] || await browser.context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => console.error('page error:', e.message));
  });
  after(async () => {
    await browser?.close();
    await aoun?.stop();
    await graph?.close();
  });

  test('a visitor completes an intake in /chat/ and gets a reference', async () => {
    await page.setViewportSize({ width: 430, height: 900 });
    await page.goto(`${aoun.base}/chat/`);
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    await page.locator('#start:not([disabled])').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'chat-start.png') });
    await page.click('#start');
    // the documents step asks for a photo or a PDF, as on the other channels; this visitor skips it
    await intakeUntilDocuments('سلمى أحمد الغامدي');
    await choose('docs.skip');
    await page.locator('#messages .from-them', { hasText: 'سلمى' }).last().waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'chat-summary.png') });
    await choose('intake.confirm');
    const created = page.locator('#messages .from-them', { hasText: /AWN-\d{4}-\d+/ }).last();
    await created.waitFor();
    const reference = /AWN-\d{4}-\d+/.exec(await created.innerText())[0];
    await page.screenshot({ path: path.join(SHOTS, 'chat.png') });
    const v = await axeViolations(page);
    assert.equal(v.length, 0, `accessibility of the chat page:\n${formatViolations(v)}`);

    // the case exists, on the web-chat channel
    const login = await (await fetch(`${aoun.base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) })).json();
    const k = await (await fetch(`${aoun.base}/api/v1/cases/${reference}`, { headers: { Authorization: `Bearer ${login.token}` } })).json();
    assert.equal(k.reference, reference);
    assert.equal(k.channel, 'webchat');
    assert.equal(k.service_type, 'psychological');

    // the session id is the server's (22 random characters and a 22-character tag)
    const session = await page.evaluate(() => localStorage.getItem('aoun.chat.session'));
    assert.match(session, /^[A-Za-z0-9_-]{44}$/);

    // a reload reconnects with it and shows the history; the id is not in the socket's URL
    // (proxies log URLs), it goes as a subprotocol
    const socketUrls = [];
    const onSocket = (ws) => socketUrls.push(ws.url());
    page.on('websocket', onSocket);
    await page.reload();
    await page.locator('#messages .from-them', { hasText: reference }).waitFor();
    page.off('websocket', onSocket);
    assert.ok(socketUrls.length >= 1, 'the page opened its socket');
    for (const u of socketUrls) assert.ok(!u.includes(session) && !u.includes('session='), `no session id in ${u}`);
    assert.equal(await page.evaluate(() => localStorage.getItem('aoun.chat.session')), session);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: path.join(SHOTS, 'chat-desktop.png') });

    // "end on this device" forgets it: the next visitor on this browser starts afresh
    page.once('dialog', (d) => d.accept());
    await page.click('#forget');
    await page.locator('#start:not([disabled])').waitFor();
    await page.waitForFunction((old) => { const id = localStorage.getItem('aoun.chat.session'); return id && id !== old; }, session);
    assert.equal(await page.locator('#messages .from-them').count(), 0);
    // ...and the server ended the old id too: a copy of it (put back here) opens nothing.
    await page.evaluate((old) => { localStorage.setItem('aoun.chat.session', old); sessionStorage.removeItem('aoun.chat.tab'); }, session);
    await page.reload();
    await page.locator('#start:not([disabled])').waitFor();
    assert.equal(await page.locator('#messages .from-them').count(), 0);
    assert.notEqual(await page.evaluate(() => localStorage.getItem('aoun.chat.session')), session);
  });

  test('a visitor sends a photo in the documents step; it stays after a reload, and a "PDF" that is not one is refused', async () => {
    await page.setViewportSize({ width: 430, height: 900 });
    await newVisitor();
    await page.click('#start');
    await intakeUntilDocuments('نورة سعد القحطاني');
    const attach = page.getByRole('button', { name: 'إرفاق صورة أو ملف PDF' });
    assert.equal(await attach.isEnabled(), true);
    const uploads = [];
    const onRequest = (r) => { if (isUpload(r)) uploads.push(r); };
    page.on('request', onRequest);

    // Over the server's 10 MiB: the page refuses it, says why, and sends nothing.
    await page.setInputFiles('#file', { name: 'كبيرة.png', mimeType: 'image/png', buffer: Buffer.concat([PNG, Buffer.alloc(11 * 1024 * 1024)]) });
    await page.locator('#messages .notice [role="alert"]', { hasText: 'أكبر من 10 ميغابايت' }).waitFor();
    assert.equal(uploads.length, 0, 'no request for a file the page refused');
    assert.equal(await page.locator('#messages .from-me', { hasText: 'كبيرة.png' }).count(), 0);

    // A photo: shown at once, stored (the server's answer, and its message over the socket,
    // which is the same bubble, not a second one), then answered by the dialog.
    const [answer] = await Promise.all([
      page.waitForResponse(isUpload),
      page.setInputFiles('#file', { name: 'هوية.png', mimeType: 'image/png', buffer: PNG }),
    ]);
    assert.equal(answer.status(), 200);
    const sent = await uploads[0].allHeaders();
    assert.equal(sent['x-chat-session'], await page.evaluate(() => localStorage.getItem('aoun.chat.session')));
    assert.equal(sent['x-file-name'], encodeURIComponent('هوية.png'));
    assert.equal(sent['content-type'], 'image/png');
    assert.deepEqual(await answer.json(), { ok: true, client_id: sent['x-client-id'] });
    await page.locator('#messages .from-them', { hasText: 'وصلنا المستند' }).waitFor();
    const photo = page.locator('#messages .from-me', { hasText: 'هوية.png' });
    await page.waitForFunction(() => [...document.querySelectorAll('#messages .from-me')].some((li) =>
      li.textContent.includes('هوية.png') && !li.classList.contains('pending') && !li.classList.contains('failed')));
    assert.equal(await photo.count(), 1);
    await page.screenshot({ path: path.join(SHOTS, 'chat-file.png') });

    // The history holds it.
    await page.reload();
    await page.locator('#messages .from-them', { hasText: 'وصلنا المستند' }).waitFor();
    assert.equal(await photo.count(), 1);
    assert.doesNotMatch(await photo.getAttribute('class'), /pending|failed/);

    // A ".pdf" that is text: the server reads the bytes and refuses it (415); the bubble stays,
    // marked, with the reason in Arabic and nothing to try again.
    const [refusal] = await Promise.all([
      page.waitForResponse(isUpload),
      page.setInputFiles('#file', { name: 'تقرير.pdf', mimeType: 'application/pdf', buffer: Buffer.from('هذا نص، وليس ملف PDF\n') }),
    ]);
    assert.equal(refusal.status(), 415);
    assert.equal((await refusal.json()).error, 'unsupported_type');
    const refused = page.locator('#messages .from-me.failed', { hasText: 'تقرير.pdf' });
    await refused.waitFor();
    assert.match(await refused.innerText(), /لم يُرسل/);
    assert.equal(await refused.locator('button').count(), 0);
    await page.locator('#messages .notice [role="alert"]', { hasText: 'وملفات PDF فقط' }).waitFor();
    const v = await axeViolations(page);
    assert.equal(v.length, 0, `accessibility of the chat page:\n${formatViolations(v)}`);
    page.off('request', onRequest);
    assert.equal(uploads.length, 2);

    // The step's question is still open: one document counted.
    await choose('docs.done');
    await page.locator('#messages .from-them', { hasText: /المستندات: (1|١)/ }).waitFor();
    await page.evaluate(() => { localStorage.removeItem('aoun.chat.session'); sessionStorage.removeItem('aoun.chat.tab'); });  // the next test is a new visitor
  });

  test('"delete my data" clears the conversation from the screen, and a reload shows no empty bubbles', async () => {
    await page.goto(`${aoun.base}/chat/`);
    await page.locator('#start:not([disabled])').waitFor();
    await say('رقم هويتي 1012345678');
    await say('احذف بياناتي');
    await choose('erase.yes');
    await page.waitForFunction(() => !document.querySelector('#messages').textContent.includes('1012345678'));
    // what stays is the confirmation, nothing of before
    await page.locator('#messages .from-them').first().waitFor();
    assert.equal(await page.locator('#messages .from-me').count(), 0);
    await page.reload();
    await page.locator('#messages .from-them').first().waitFor();
    const texts = await page.locator('#messages .bubble, #messages .from-them, #messages .from-me').allInnerTexts();
    assert.ok(texts.every((t) => t.trim().length > 0), 'no empty bubbles');
    assert.ok(!texts.join(' ').includes('1012345678'));
  });

  test('a message cut off by a dropped connection is sent again after the reconnect, once', async () => {
    await page.goto(`${aoun.base}/chat/`);
    await page.locator('#send:not([disabled])').waitFor();  // the session frame is in: nothing rewrites it now
    await page.evaluate(() => { localStorage.removeItem('aoun.chat.session'); sessionStorage.removeItem('aoun.chat.tab'); });  // a new visitor
    await page.reload();
    await page.locator('#start:not([disabled])').waitFor();
    await say('مرحبا');
    // The first time the page sends "رسالة ضائعة", the connection drops before it reaches the server.
    let dropped = false;
    await page.routeWebSocket(/\/chat\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        if (!dropped && String(m).includes('رسالة ضائعة')) { dropped = true; ws.close(); server.close(); return; }
        server.send(m);
      });
    });
    await page.reload();  // the routed socket from now on
    await page.locator('#messages .from-them').first().waitFor();
    await page.locator('#send:not([disabled])').waitFor();
    await page.fill('#text', 'رسالة ضائعة');
    await page.keyboard.press('Enter');
    const bubble = page.locator('#messages .from-me', { hasText: 'رسالة ضائعة' });
    await bubble.waitFor();
    // reconnected, sent again, acknowledged: no longer marked
    await page.waitForFunction(() => [...document.querySelectorAll('#messages .from-me')].some((li) =>
      li.textContent.includes('رسالة ضائعة') && !li.classList.contains('pending') && !li.classList.contains('failed')), null, { timeout: 15000 });
    assert.ok(dropped, 'the first send was cut off');
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.reload();
    await page.locator('#messages .from-them').first().waitFor();
    assert.equal(await page.locator('#messages .from-me', { hasText: 'رسالة ضائعة' }).count(), 1, 'stored once');
  });

  test('a message not yet stored survives a reload of the page, and is stored once', async () => {
    await newVisitor();
    await say('مرحبا');
    // The server never gets "كتبتها قبل التحديث": the connection swallows it, and stays up.
    let swallowed = 0, swallowing = true;
    await page.routeWebSocket(/\/chat\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => { if (swallowing && String(m).includes('كتبتها قبل التحديث')) { swallowed++; return; } server.send(m); });
    });
    await page.reload();
    await page.locator('#send:not([disabled])').waitFor();
    await page.fill('#text', 'كتبتها قبل التحديث');
    await page.keyboard.press('Enter');
    await page.locator('#messages .from-me.pending', { hasText: 'كتبتها قبل التحديث' }).waitFor();
    await page.waitForFunction(() => sessionStorage.getItem('aoun.chat.pending')?.includes('كتبتها قبل التحديث'));
    assert.equal(swallowed, 1);
    // The visitor reloads the page (the connection is fine now): the message is shown after the
    // history, sent, and acknowledged.
    swallowing = false;
    await page.reload();
    await page.waitForFunction(() => [...document.querySelectorAll('#messages .from-me')].some((li) =>
      li.textContent.includes('كتبتها قبل التحديث') && !li.classList.contains('pending') && !li.classList.contains('failed')), null, { timeout: 15000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('aoun.chat.pending')), null, 'nothing left on the device');
    await page.reload();
    await page.locator('#messages .from-them').first().waitFor();
    assert.equal(await page.locator('#messages .from-me', { hasText: 'كتبتها قبل التحديث' }).count(), 1, 'stored once');
    // and it was a turn of the dialog like any other: the bot answered after it
    const last = await page.locator('#messages .msg').last().getAttribute('class');
    assert.match(last, /from-them/);
  });

  test('"end on this device" in one tab ends the conversation in the other tab, and what waited there is not sent', async () => {
    await newVisitor();
    await say('مرحبا');
    // several replies at once are each announced to screen readers, not only the last
    await page.waitForFunction(() => document.querySelectorAll('#announce p').length >= 2);
    const first = await page.evaluate(() => localStorage.getItem('aoun.chat.session'));
    // A text this tab is still waiting to have stored (its socket swallows it).
    await page.routeWebSocket(/\/chat\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => { if (!String(m).includes('تنتظر هنا')) server.send(m); });
    });
    await page.reload();
    await page.locator('#send:not([disabled])').waitFor();
    await page.fill('#text', 'تنتظر هنا');
    await page.keyboard.press('Enter');
    await page.locator('#messages .from-me.pending', { hasText: 'تنتظر هنا' }).waitFor();

    // The visitor ends the conversation in a second tab of the same browser.
    const other = await browser.context.newPage();
    try {
      await other.goto(`${aoun.base}/chat/`);
      await other.locator('#messages .from-me', { hasText: 'مرحبا' }).waitFor();  // the same conversation
      other.once('dialog', (d) => d.accept());
      await other.click('#forget');
      await other.locator('#start:not([disabled])').waitFor();
      // The first tab no longer shows it, and drops what waited in it.
      await page.waitForFunction(() => !document.querySelector('#messages').textContent.includes('مرحبا'));
      await page.locator('#start:not([disabled])').waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('aoun.chat.pending')), null);
      const now = await page.evaluate(() => localStorage.getItem('aoun.chat.session'));
      assert.notEqual(now, first);
    } finally {
      await other.close();
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }
    // Nothing waiting was stored, in either conversation.
    const login = await (await fetch(`${aoun.base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) })).json();
    const list = await (await fetch(`${aoun.base}/api/v1/conversations?mode=all`, { headers: { Authorization: `Bearer ${login.token}` } })).json();
    for (const c of list.conversations || list) {
      if (c.channel !== 'webchat') continue;
      const m = await (await fetch(`${aoun.base}/api/v1/conversations/${c.id}/messages`, { headers: { Authorization: `Bearer ${login.token}` } })).text();
      assert.ok(!m.includes('تنتظر هنا'), `conversation ${c.id} holds the text`);
    }
  });

  test('a file sent before the privacy notice is agreed to is refused, and the notice\'s buttons stay usable', async () => {
    await newVisitor();
    await page.click('#start');
    await page.locator('#messages .choice[data-choice-id="consent.yes"]:not([disabled])').waitFor();
    const [answer] = await Promise.all([
      page.waitForResponse(isUpload),
      page.setInputFiles('#file', { name: 'صورة.png', mimeType: 'image/png', buffer: PNG }),
    ]);
    assert.equal(answer.status(), 409);
    await page.locator('#messages .notice [role="alert"]', { hasText: 'وافقوا عليه في المحادثة' }).waitFor();
    // The notice says to agree in the chat: the button to do so is there, and works.
    await choose('consent.yes');
    await page.locator('#messages .choice[data-choice-id="menu.help"]').first().waitFor();
  });

  test('quick exit leaves at once for another site, asking nothing, and the chat opened here again starts afresh', async () => {
    await newVisitor();
    await say('تعرض لي شخص أعرفه بالتهديد');
    await page.click('#lang-switch');  // a trace too: the language chosen
    await page.click('#lang-switch');
    const before = await page.evaluate(() => localStorage.getItem('aoun.chat.session'));
    assert.ok(before);
    assert.ok(await page.evaluate(() => localStorage.getItem('aoun.chat.lang')));
    // The same chat open in a second tab leaves too.
    const other = await page.context().newPage();
    let asked = false;
    const onDialog = (d) => { asked = true; d.dismiss(); };
    page.on('dialog', onDialog);
    const google = (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<title>Google</title>' });
    await page.route('https://www.google.com/**', google);
    await other.route('https://www.google.com/**', google);
    try {
      await other.goto(`${aoun.base}/chat/`);
      await other.locator('#send:not([disabled])').waitFor();
      await page.click('#quick-exit');
      await page.waitForURL('https://www.google.com/');
      await other.waitForURL('https://www.google.com/');
      assert.equal(asked, false, 'no question stands between the person and the exit');
    } finally {
      page.off('dialog', onDialog);
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      await other.close();
    }
    // Opened again on this browser: nothing of the conversation shows.
    await page.goto(`${aoun.base}/chat/`);
    await page.locator('#start:not([disabled])').waitFor();
    assert.equal(await page.locator('#messages .msg').count(), 0);
    assert.notEqual(await page.evaluate(() => localStorage.getItem('aoun.chat.session')), before);
    assert.equal(await page.evaluate(() => localStorage.getItem('aoun.chat.lang')), null, 'the language chosen is forgotten too');
    // The association still has it.
    const login = await (await fetch(`${aoun.base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) })).json();
    const list = await (await fetch(`${aoun.base}/api/v1/conversations?mode=all`, { headers: { Authorization: `Bearer ${login.token}` } })).json();
    let kept = false;
    for (const c of list.conversations || list) {
      if (c.channel !== 'webchat') continue;
      const m = await (await fetch(`${aoun.base}/api/v1/conversations/${c.id}/messages`, { headers: { Authorization: `Bearer ${login.token}` } })).text();
      if (m.includes('تعرض لي شخص أعرفه بالتهديد')) kept = true;
    }
    assert.ok(kept, 'the conversation is kept for staff');
  });

  test('a message whose ack never comes (a dead connection the page was not told of) goes again on a new socket', async () => {
    await page.goto(`${aoun.base}/chat/`);
    await page.locator('#send:not([disabled])').waitFor();
    await page.evaluate(() => { localStorage.removeItem('aoun.chat.session'); sessionStorage.removeItem('aoun.chat.tab'); });
    await page.reload();
    await page.locator('#start:not([disabled])').waitFor();
    await say('مرحبا');
    // The first socket swallows the text and stays open, as a connection a NAT forgot does.
    let sockets = 0;
    await page.routeWebSocket(/\/chat\/ws/, (ws) => {
      const n = ++sockets;
      const server = ws.connectToServer();
      ws.onMessage((m) => { if (!(n === 1 && String(m).includes('بلا رد'))) server.send(m); });
    });
    try {
      await page.reload();
      await page.locator('#send:not([disabled])').waitFor();
      await page.fill('#text', 'بلا رد');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => [...document.querySelectorAll('#messages .from-me')].some((li) =>
        li.textContent.includes('بلا رد') && !li.classList.contains('pending') && !li.classList.contains('failed')), null, { timeout: 40000 });
      assert.equal(sockets, 2, 'given up on the first socket, stored through the second');
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }
    await page.reload();
    await page.locator('#messages .from-them').first().waitFor();
    assert.equal(await page.locator('#messages .from-me', { hasText: 'بلا رد' }).count(), 1, 'stored once');
  });

  test('an idle page whose line died quietly finds out, reconnects, and shows what staff wrote meanwhile', async () => {
    await newVisitor();
    await say('السلام عليكم');
    // From now on the first socket delivers nothing either way, as a connection lost out of
    // coverage does: the page is idle (nothing waits for an ack), so only its own check can tell.
    let sockets = 0, dead = false;
    await page.routeWebSocket(/\/chat\/ws/, (ws) => {
      const n = ++sockets;
      const server = ws.connectToServer();
      ws.onMessage((m) => { if (!(n === 1 && dead)) server.send(m); });
      server.onMessage((m) => { if (!(n === 1 && dead)) ws.send(m); });
    });
    try {
      await page.reload();
      await page.locator('#send:not([disabled])').waitFor();
      dead = true;
      // Staff answer while the line is dead.
      const login = await (await fetch(`${aoun.base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) })).json();
      const auth = { Authorization: `Bearer ${login.token}`, 'Content-Type': 'application/json' };
      // The latest web-chat conversation (the list is newest first) is this visitor's.
      const list = await (await fetch(`${aoun.base}/api/v1/conversations?mode=all`, { headers: auth })).json();
      const conv = (list.conversations || []).find((c) => c.channel === 'webchat');
      assert.ok(conv, 'the visitor\'s conversation');
      assert.equal((await fetch(`${aoun.base}/api/v1/conversations/${conv.id}/takeover`, { method: 'POST', headers: auth, body: '{}' })).status, 200);
      assert.equal((await fetch(`${aoun.base}/api/v1/conversations/${conv.id}/messages`, { method: 'POST', headers: auth, body: JSON.stringify({ text: 'أنا هنا معكم' }) })).status, 200);
      // The device comes back online (or the page back into view): the page checks its line.
      await new Promise((r) => setTimeout(r, 5500));
      await page.evaluate(() => window.dispatchEvent(new Event('online')));
      await page.locator('#messages .from-them', { hasText: 'أنا هنا معكم' }).waitFor({ timeout: 20000 });
      assert.equal(sockets, 2, 'given up on the silent socket, the reply came through a new one');
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
    }
  });

  test('a visitor who sends too fast is told, in Arabic, that the last message was not saved', async () => {
    const slow = await startAoun(BIN, graph.base, { AOUN_WEBCHAT_MESSAGES_PER_MINUTE: '2' });
    try {
      await page.goto(`${slow.base}/chat/`);
      await page.locator('#start:not([disabled])').waitFor();
      for (const t of ['مرحبا', 'هل أنتم هنا؟', 'أحتاج مساعدة']) {
        await page.fill('#text', t);
        await page.keyboard.press('Enter');
      }
      const notice = page.locator('#messages .notice [role="alert"]').last();
      await notice.waitFor();
      assert.match(await notice.innerText(), /لم تُحفظ بعد، وسنعيد إرسالها تلقائيًا/);
      // the refused message stays on screen, marked, with its text: nothing vanishes silently
      const refused = page.locator('#messages .from-me.failed');
      await refused.waitFor();
      assert.match(await refused.innerText(), /أحتاج مساعدة/);
      assert.match(await refused.innerText(), /لم تُرسل بعد/);
    } finally {
      await slow.stop();
    }
  });
});

// The staff console against the real aoun binary: sign-in, live queue, takeover and reply
// (reaching the fake WhatsApp provider), a reply the provider reports failed, the case workflow, the survey on the dashboard,
// staff management, a dropped WebSocket, an expired session, English and a phone layout.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from '../lib/browser.mjs';
import { axeViolations, formatViolations } from '../lib/a11y.mjs';
import { startAoun, startFakeGraph, whatsappUser, telegramUser, telegramEnv, nationalId, outboundText, ADMIN, REPO } from '../lib/server.mjs';

const BIN = process.env.AOUN_BIN || path.join(REPO, 'build/bot/aoun');
const SHOTS = path.join(REPO, 'docs/screenshots');
const ar = JSON.parse(fs.readFileSync(path.join(REPO, 'locales/ar.json'), 'utf8')).texts;
const line = (v) => (Array.isArray(v) ? v[0] : v);

let graph, aoun, browser, page;
const nid = nationalId();
const beneficiary = { waId: '966501112233', name: 'هدى العتيبي' };
let reference = null;

const shot = (name, opts = {}) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), ...opts });
// WCAG 2.1 A/AA rules through axe-core: no serious or critical violation on any screen.
const accessible = async (screen) => {
  const v = await axeViolations(page);
  assert.equal(v.length, 0, `accessibility of ${screen}:\n${formatViolations(v)}`);
};
const said = (needle) => (p) => outboundText(p).includes(needle);

describe('staff console', () => {
  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    graph = await startFakeGraph();
    aoun = await startAoun(BIN, graph.base, telegramEnv(graph.base));
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

  test('a wrong password is refused visibly, then the staff member signs in', async () => {
    await page.goto(`${aoun.base}/console/`);
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    assert.equal(await page.getAttribute('html', 'lang'), 'ar');
    await page.waitForSelector('#login-username');
    await shot('console-login');
    await accessible('console-login');
    await page.fill('#login-username', ADMIN.username);
    await page.fill('#login-password', 'not-the-password');
    await page.click('form button[type=submit]');
    await page.waitForSelector('#login-error:has-text("غير صحيحة")');
    await page.fill('#login-password', ADMIN.password);
    await page.click('form button[type=submit]');
    await page.waitForSelector('#tab-waiting');
  });

  test('a WhatsApp beneficiary files a request, asks for staff, and appears in the queue without a reload', async () => {
    await page.evaluate(() => { window.__sameDocument = true; });
    const u = whatsappUser(aoun.base, beneficiary);
    await u.text('السلام عليكم');
    await graph.waitFor(said('consent.yes'), 15000, 'the consent buttons');
    await u.button('consent.yes', 'أوافق');
    await graph.waitFor(said('menu.help'), 15000, 'the main menu');
    await u.text('1');
    await u.text('هدى محمد العتيبي');
    await u.text(nid);
    await graph.waitFor(said('mobile.use'), 15000, 'the mobile confirmation');
    await u.button('mobile.use', 'نعم، هذا الرقم');
    await u.text('الرياض');
    await graph.waitFor(said('service.legal'), 15000, 'the service types');
    await u.list('service.legal', 'استشارة قانونية');
    await u.text('تعرضت لسرقة وأحتاج استشارة قانونية');
    await graph.waitFor(said('docs.skip'), 15000, 'the documents step');
    await u.button('docs.skip', 'تخطي');
    await graph.waitFor(said('intake.confirm'), 15000, 'the summary');
    await u.button('intake.confirm', 'تأكيد');
    const created = await graph.waitFor((p) => /AWN-\d{4}-\d+/.test(outboundText(p)), 15000, 'the case reference');
    reference = /AWN-\d{4}-\d+/.exec(outboundText(created))[0];
    await u.text('موظف');
    const item = page.locator('#queue-list .queue-item', { hasText: 'هدى' });
    await item.waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    // While she waits she types her ID again: the list's preview of her last message shows it
    // masked, not in full.
    await u.text(nid);
    await item.locator('.qi-preview', { hasText: '••••••••••' }).waitFor();
    const listText = await page.locator('#queue-list').innerText();
    assert.ok(!listText.includes(nid), 'no national ID in the queue list');
    assert.match(await item.innerText(), /واتساب/);
    await shot('console-queue');
    await accessible('console-queue');
  });

  test('the staff member takes over and replies; the reply reaches the provider', async () => {
    await page.locator('#queue-list .queue-item', { hasText: 'هدى' }).click();
    await page.waitForSelector('#btn-takeover');
    await page.click('#btn-takeover');
    await page.waitForSelector('#btn-resolve');
    const reply = 'أهلًا بكم، معكم نورة من فريق الجمعية. كيف نقدر نساعدكم؟';
    await page.fill('#reply-text', reply);
    await page.keyboard.press('Control+Enter');
    const sent = await graph.waitFor(said(reply), 15000, 'the staff reply');
    assert.equal(sent.body.to, beneficiary.waId);
    await page.locator('#transcript .sender-staff', { hasText: 'معكم نورة' }).waitFor();
    // canned answers come from the policy's tools
    await page.click('#btn-canned');
    await page.waitForSelector('#canned-list .canned-item');
    await shot('console-canned');
    await page.keyboard.press('Escape');
    await shot('console-conversation');
    await accessible('console-conversation');
  });

  test('a reply WhatsApp could not deliver turns "failed", with the reason, without a reload', async () => {
    const reply = 'نرجو تأكيد موعد المقابلة';
    await page.fill('#reply-text', reply);
    await page.keyboard.press('Control+Enter');
    const sent = await graph.waitFor(said(reply), 15000, 'the second staff reply');
    const wamid = `wamid.out.${graph.posts.indexOf(sent) + 1}`;  // the fake numbers its answers
    const bubble = page.locator('#transcript li', { hasText: reply });
    await bubble.locator('.dstatus.ds-sent').waitFor();
    await whatsappUser(aoun.base, beneficiary).status(wamid, 'failed', [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message' }]);
    await bubble.locator('.dstatus.ds-failed').waitFor();
    assert.equal(await bubble.locator('.dstatus-reason').innerText(), '131047 Re-engagement message');
  });

  test('a shared location is a map link and a shared contact shows its number, without a reload', async () => {
    const user = whatsappUser(aoun.base, beneficiary);
    await user.location(24.7136, 46.6753);
    const link = page.locator('#transcript .map-link').last();
    await link.waitFor();
    assert.equal(await link.innerText(), '24.713600,46.675300');
    const href = new URL(await link.getAttribute('href'));
    assert.equal(href.hostname, 'www.openstreetmap.org');
    assert.equal(href.searchParams.get('mlat'), '24.713600');
    assert.equal(href.searchParams.get('mlon'), '46.675300');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    await user.contact('سارة', '+966 50 111 2223');
    await page.locator('#transcript .shared-detail', { hasText: '+966 50 111 2223' }).waitFor();
  });

  test('the case moves through its steps, offering only valid transitions', async () => {
    assert.ok(reference, 'a case was created');
    const panel = page.locator('#case-pane');
    await panel.locator(`text=${reference}`).waitFor();
    assert.equal((await panel.locator('.nid').innerText()).trim(), nid, 'the national ID is shown in the case panel');
    const offered = async () => (await panel.locator('.transition-buttons button').evaluateAll((bs) => bs.map((b) => b.dataset.to))).sort();
    const move = async (to, fill) => {
      await panel.locator(`.transition-buttons button[data-to="${to}"]`).click();
      if (fill) await fill();
      await panel.locator('#transition-note').fill(`ملاحظة: ${to}`);
      await panel.locator('#transition-confirm').click();
      await panel.locator(`.case-head .step-${to}`).waitFor();
    };
    assert.deepEqual(await offered(), ['collecting_info']);
    await move('collecting_info', async () => {
      await panel.locator('input[name=verification_method][value=interview]').check();
      await panel.locator('#transition-appointment').fill('2030-01-15T10:30');
    });
    await graph.waitFor(said(line(ar.case_step.collecting_info).replace('{reference}', reference)), 15000, 'the collecting-info notification');
    assert.deepEqual(await offered(), ['evaluating']);
    await move('evaluating');
    assert.deepEqual(await offered(), ['approved', 'rejected']);
    await move('approved');
    await graph.waitFor(said(line(ar.case_step.approved).replace('{reference}', reference)), 15000, 'the approval notification');
    assert.deepEqual(await offered(), ['closed']);
    await shot('console-case');
    await accessible('console-case');
    await move('closed');
    assert.deepEqual(await offered(), []);
    assert.equal(await panel.locator('.history li').count(), 5, 'the request and each of its four moves are in the history');
  });

  test('resolving sends the survey, and the dashboard shows the answers', async () => {
    await page.click('#btn-resolve');
    await page.click('dialog button[value=ok]');
    await page.locator('#conv-header .mode-resolved').waitFor();
    const u = whatsappUser(aoun.base, beneficiary);
    await graph.waitFor(said('score.overall.5'), 15000, 'the first survey question');
    await u.list('score.overall.5', '٥ ممتاز');
    await graph.waitFor(said('score.speed.5'), 15000, 'the second survey question');
    await u.list('score.speed.4', '٤ جيد');
    await graph.waitFor(said('score.courtesy.5'), 15000, 'the third survey question');
    await u.list('score.courtesy.5', '٥ ممتاز');
    await graph.waitFor(said('survey.skip'), 15000, 'the comment question');
    await u.button('survey.skip', 'تخطي');
    await graph.waitFor(said(line(ar.survey.thanks)), 15000, 'the survey thanks');
    await page.click('#nav-dashboard');
    await page.waitForSelector('#kpi-responses');
    await page.waitForFunction(() => document.querySelector('#kpi-responses')?.textContent.trim() === '1');
    const overall = await page.locator('.kpi', { hasText: 'التقييم العام' }).innerText();
    assert.match(overall, /5\.00/);
    await page.waitForTimeout(200);
    await shot('console-dashboard', { fullPage: true });
    await accessible('console-dashboard');
  });

  test('an admin adds a staff member', async () => {
    await page.click('#nav-staff');
    await page.fill('#staff-username', 'sara');
    await page.fill('#staff-display', 'سارة القحطاني');
    await page.fill('#staff-password', 'Sara-strong-password-1');
    await page.selectOption('#staff-role', 'supervisor');
    await page.click('.staff-form button[type=submit]');
    await page.locator('#staff-table', { hasText: 'sara' }).waitFor();
    await shot('console-staff');
    await accessible('console-staff');
  });

  test('the queues and conversations work from the keyboard', async () => {
    await page.click('#nav-inbox');
    await page.waitForSelector('#tab-waiting');
    await page.keyboard.press('Alt+3');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-all');
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.activeElement.classList.contains('queue-item')), 'Tab reaches the list');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#conv-title');
    assert.match(page.url(), /#\/inbox\/\d+$/);
  });

  test('a dropped live connection shows "reconnecting" and recovers', async () => {
    const sockets = [];
    await page.routeWebSocket(/\/api\/v1\/stream/, (ws) => { ws.connectToServer(); sockets.push(ws); });
    await page.goto(`${aoun.base}/console/#/inbox`);
    await page.reload(); // a fresh document, so that its stream goes through the route
    await page.waitForSelector('#tab-waiting');
    await expectSoon(() => sockets.length === 1, 'the stream to connect');
    await sockets[0].close();
    await page.locator('#conn-banner:has-text("إعادة الاتصال")').waitFor();
    await shot('console-reconnecting');
    await page.locator('#conn-banner').waitFor({ state: 'hidden', timeout: 20000 });
    // live updates flow again after the reconnect
    const other = whatsappUser(aoun.base, { waId: '966507778899', name: 'فهد' });
    await other.text('مرحبا');
    await graph.waitFor((p) => p.body?.to === '966507778899' && said('consent.yes')(p), 15000, 'consent for the second user');
    await other.button('consent.yes', 'أوافق');
    await other.text('موظف');
    await page.locator('#queue-list .queue-item', { hasText: 'فهد' }).waitFor();
    await page.unrouteAll({ behavior: 'ignoreErrors' }).catch(() => {});
  });

  test('English switch and the phone layout', async () => {
    await page.click('#lang-switch');
    assert.equal(await page.getAttribute('html', 'dir'), 'ltr');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await page.locator('#tab-waiting:has-text("Waiting")').waitFor();
    await page.locator('#queue-list .queue-item', { hasText: 'فهد' }).click();
    await page.waitForSelector('#btn-takeover');
    await shot('console-english');
    await accessible('console-english');
    await page.click('#lang-switch');
    assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${aoun.base}/console/#/inbox`);
    await page.waitForSelector('#queue-list .queue-item');
    await shot('console-phone-queue');
    await page.click('#tab-all');
    await page.locator('#queue-list .queue-item', { hasText: 'هدى' }).click();
    await page.waitForSelector('#case-pane .case');
    assert.ok(await page.locator('.back-link').isVisible(), 'a back link on the phone');
    await shot('console-phone-conversation', { fullPage: true });
    await page.setViewportSize({ width: 1366, height: 860 });
  });

  test('a Telegram live location moves on the map link as it is updated, without a new message; a block is said in words', async () => {
    const user = telegramUser(aoun.base, { chatId: 5550001, firstName: 'ريم' });
    await user.liveLocation(41, 21.485811, 39.192505, 3600);
    await page.click('#tab-all');
    await page.locator('#queue-list .queue-item', { hasText: 'ريم' }).click();
    const link = page.locator('#transcript .map-link');
    await link.waitFor();
    assert.equal(await link.innerText(), '21.485811,39.192505');
    const live = page.locator('#transcript .live-location');
    assert.match(await live.innerText(), /موقع مباشر · آخر تحديث .+ · يُشارك حتى /);
    const bubbles = await page.locator('#transcript li').count();
    await user.moveLocation(41, 21.490001, 39.190002, 3600);
    await page.locator('#transcript .map-link', { hasText: '21.490001,39.190002' }).waitFor();
    assert.equal(await page.locator('#transcript .map-link').count(), 1, 'one location, moved');
    assert.equal(await page.locator('#transcript li').count(), bubbles, 'no message added');
    assert.equal(new URL(await link.getAttribute('href')).searchParams.get('mlat'), '21.490001');
    // Blocking the bot is said in words staff understand, live.
    await user.block();
    await page.locator('#transcript .shared-detail', { hasText: 'حظر المستفيد البوت في تيليجرام' }).waitFor();
  });

  test('a national ID typed with separators is masked in the transcript; a date typed the same way is not', async () => {
    const u = whatsappUser(aoun.base, { waId: '966507770041', name: 'سارة' });
    // (2026-05-10 09:00 and AWN-2026-000006 pass the ID checksum: a date and a reference stay readable all the same)
    await u.text('رقم هويتي ١٧٥٧-٤٩١-١٨٦ وموعدي 2026-12-20 10:00 أو 2026-05-10 09:00 وطلبي AWN-2026-000006');
    await u.text('موظف');
    await page.click('#tab-waiting');
    const item = page.locator('#queue-list .queue-item', { hasText: 'سارة' });
    await item.waitFor();
    await item.click();
    const msg = page.locator('#transcript .msg', { hasText: 'رقم هويتي' });
    await msg.waitFor();
    const shown = await msg.innerText();
    assert.match(shown, /••••••••••/);
    assert.ok(!shown.includes('١٧٥٧-٤٩١-١٨٦'), shown);
    assert.match(shown, /2026-12-20 10:00/);
    assert.match(shown, /2026-05-10 09:00/);
    assert.match(shown, /AWN-2026-000006/);
  });

  test('a message Meta delivers a day and a half late waits for staff, marked with when it was written', async () => {
    const late = whatsappUser(aoun.base, { waId: '966507770031', name: 'منيرة' });
    await late.textWrittenAt('كتبت لكم قبل يومين ولم يرد أحد', Math.floor(Date.now() / 1000) - 36 * 3600);
    await page.click('#tab-waiting');
    const item = page.locator('#queue-list .queue-item', { hasText: 'منيرة' });
    await item.waitFor();
    assert.match(await item.innerText(), /رسالة وصلت متأخرة/);
    await item.click();
    const msg = page.locator('#transcript .msg', { hasText: 'كتبت لكم قبل يومين' });
    await msg.waitFor();
    assert.match(await msg.locator('.written-at').innerText(), /كُتبت في .+ ووصلت متأخرة/);
    assert.equal(await page.locator('#transcript .msg').count(), 1, 'the bot said nothing that could not reach her');
  });

  test('an expired session returns to sign-in with a message', async () => {
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('aoun.session')).token);
    const res = await fetch(`${aoun.base}/api/v1/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' });
    assert.ok(res.status < 300, `logout answered ${res.status}`);
    await page.click('#nav-cases');
    await page.waitForSelector('#login-error:has-text("انتهت الجلسة")');
    await shot('console-session-expired');
  });

  test('a staff member replaces the password an admin gave them, from the console', async () => {
    const post = (path, body, token) => fetch(`${aoun.base}${path}`, {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) } });
    const admin = await (await post('/api/v1/auth/login', ADMIN)).json();
    const made = await post('/api/v1/staff', { username: 'huda', password: 'given-by-admin-1', role: 'agent', display_name: 'هدى' }, admin.token);
    assert.equal(made.status, 201);
    await page.goto(`${aoun.base}/console/`);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
    await page.fill('#login-username', 'huda');
    await page.fill('#login-password', 'given-by-admin-1');
    await page.click('form button[type=submit]');
    await page.waitForSelector('#change-password');
    await page.click('#change-password');
    await page.fill('#pw-current', 'not-the-password');
    await page.fill('#pw-new', 'chosen-by-huda-1');
    await page.fill('#pw-again', 'chosen-by-huda-1');
    await page.click('#pw-save');
    await page.waitForSelector('dialog .form-error:has-text("غير صحيحة")');
    await page.fill('#pw-current', 'given-by-admin-1');
    await page.fill('#pw-again', 'chosen-by-huda-2');
    await page.click('#pw-save');
    await page.waitForSelector('dialog .form-error:has-text("غير متطابقتين")');
    await accessible('console-password');
    await page.fill('#pw-again', 'chosen-by-huda-1');
    await page.click('#pw-save');
    await page.waitForSelector('.toast:has-text("تغيّرت كلمة المرور")');
    assert.equal(await page.locator('dialog[open]').count(), 0);
    // This session stays; the old password no longer signs in, the new one does.
    assert.equal((await post('/api/v1/auth/login', { username: 'huda', password: 'given-by-admin-1' })).status, 401);
    await page.click('#signout');
    await page.fill('#login-username', 'huda');
    await page.fill('#login-password', 'chosen-by-huda-1');
    await page.click('form button[type=submit]');
    await page.waitForSelector('#change-password');
  });
});

async function expectSoon(pred, what, timeout = 10000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) { if (pred()) return; await new Promise((r) => setTimeout(r, 50)); }
  throw new Error(`timed out waiting for ${what}`);
}

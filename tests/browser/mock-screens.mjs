// Screenshots of every screen from the development mock (node tests/browser/mock-screens.mjs).
// For work on the UI while the server API is incomplete; the real browser tests overwrite the
// same files in docs/screenshots/ from the real binary.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { launch } from './lib/browser.mjs';
import { REPO } from './lib/server.mjs';

const OUT = process.argv[2] || path.join(REPO, 'docs/screenshots');
const port = 8000 + Math.floor(Math.random() * 900);
const mock = spawn(process.execPath, [path.join(REPO, 'tests/browser/mock-server.mjs'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => mock.stdout.once('data', r));
const base = `http://127.0.0.1:${port}`;
const { context, close } = await launch();
const page = context.pages()[0] || await context.newPage();
const shot = (n, o = {}) => page.screenshot({ path: path.join(OUT, `${n}.png`), ...o });
try {
  await page.goto(`${base}/console/`);
  await page.waitForSelector('#login-username');
  await shot('console-login');
  await page.fill('#login-username', 'admin'); await page.fill('#login-password', 'admin-password-123');
  await page.click('form button[type=submit]');
  await page.waitForSelector('#queue-list .queue-item');
  await shot('console-queue');
  await page.click('#queue-list .queue-item:has-text("سالم")');
  await page.click('#btn-takeover'); await page.waitForSelector('#btn-resolve');
  await page.fill('#reply-text', 'أهلًا بكم، معكم نورة من فريق الجمعية. اطّلعنا على طلبكم وسنحدد معكم موعد مقابلة.');
  await page.click('#btn-send'); await page.waitForSelector('#transcript .sender-staff');
  await shot('console-conversation');
  await page.click('#btn-canned'); await page.waitForSelector('.canned-item');
  await shot('console-canned'); await page.keyboard.press('Escape');
  await page.click('[data-to=collecting_info]');
  await page.check('input[value=interview]'); await page.fill('#transition-appointment', '2030-01-15T10:30');
  await page.fill('#transition-note', 'مقابلة في مقر الجمعية'); await page.click('#transition-confirm');
  await page.waitForSelector('.case-head .step-collecting_info');
  await shot('console-case');
  await page.goto(`${base}/console/#/dashboard`); await page.waitForSelector('.kpis');
  await shot('console-dashboard', { fullPage: true });
  await page.goto(`${base}/console/#/staff`); await page.waitForSelector('#staff-table');
  await shot('console-staff');
  await page.click('#lang-switch'); await page.goto(`${base}/console/#/inbox/2`); await page.waitForSelector('.case');
  await shot('console-english'); await page.click('#lang-switch');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/console/#/inbox`); await page.waitForSelector('#queue-list .queue-item');
  await shot('console-phone-queue');
  await page.goto(`${base}/console/#/inbox/2`); await page.waitForSelector('.case');
  await shot('console-phone-conversation', { fullPage: true });
  await page.setViewportSize({ width: 430, height: 900 });
  await page.goto(`${base}/chat/`); await page.locator('#start:not([disabled])').waitFor();
  await shot('chat-start');
  await page.click('#start'); await page.click('.choice[data-choice-id="consent.yes"]');
  await page.waitForSelector('.choice[data-choice-id="menu.help"]');
  await shot('chat');
} finally {
  await close();
  mock.kill();
}

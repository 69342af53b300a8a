// Launches Debian's chromium through playwright-core (no bundled browser download).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.AOUN_CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aoun-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1366, height: 860 },
    locale: 'ar-SA',
    timezoneId: 'Asia/Riyadh',
    bypassCSP: true, // the server's CSP (rightly) forbids inline scripts; axe-core is injected as one
  });
  const close = async () => {
    try { await context.close(); } catch { /* already gone */ }
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

// The first page of a launched browser, signed in to the staff console at `base` as `user`.
export async function signedInConsole(browser, base, user) {
  const page = browser.context.pages()[0] || await browser.context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${base}/console/`);
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', user.password);
  await page.click('form button[type=submit]');
  await page.waitForSelector('#tab-all');
  return page;
}

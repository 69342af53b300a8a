// A person who changed their WhatsApp number and wrote from the new one before WhatsApp said
// so: two conversations in the queue until the notice comes, then one. A console showing the
// one that goes follows the person to the one that stays, without a reload. What they wrote from
// the old number and WhatsApp delivered after the notice joins them too.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startConsole } from '../lib/console.mjs';
import { whatsappUser } from '../lib/server.mjs';

let s, aoun, page;

describe('a changed WhatsApp number', () => {
  before(async () => {
    s = await startConsole();
    ({ aoun, page } = s);
  });
  after(async () => { await s?.stop(); });

  test('the two conversations become one, live', async () => {
    await page.evaluate(() => { window.__sameDocument = true; });
    const asks = async (u) => {
      await u.text('السلام عليكم');
      await u.button('consent.yes', 'أوافق');
      await u.text('موظف');
    };
    const before = whatsappUser(aoun.base, { waId: '966507770001', name: 'سلمى' });
    const after = whatsappUser(aoun.base, { waId: '966507770002', name: 'سلمى الجديدة' });
    await asks(before);
    await asks(after);
    const folded = page.locator('#queue-list .queue-item', { hasText: 'سلمى الجديدة' });
    const kept = page.locator('#queue-list .queue-item').filter({ hasNotText: 'الجديدة' });
    await folded.waitFor();
    await kept.waitFor();
    const keptHref = await kept.getAttribute('href');
    const foldedHref = await folded.getAttribute('href');
    assert.notEqual(keptHref, foldedHref);
    await folded.click();
    await page.waitForFunction((h) => location.hash === h, foldedHref);

    await before.changedNumber('966507770002');
    await page.waitForFunction((h) => location.hash === h, keptHref, { timeout: 10000 });
    await page.locator(`#queue-list .queue-item[href="${foldedHref}"]`).waitFor({ state: 'detached' });
    assert.equal(await page.locator('#queue-list .queue-item').count(), 1);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    // The kept conversation's transcript has what was written from both numbers.
    await page.locator('.msg-text', { hasText: 'changed from 966507770001 to 966507770002' }).waitFor();
    assert.equal(await page.locator('.msg-text', { hasText: /^موظف$/ }).count(), 2);
  });

  test('a console showing the conversation that stays gets what was written from the new number', async () => {
    const before = whatsappUser(aoun.base, { waId: '966507770011', name: 'ريم' });
    const after = whatsappUser(aoun.base, { waId: '966507770012', name: 'ريم الجديدة' });
    await before.text('السلام عليكم');
    await before.button('consent.yes', 'أوافق');
    await before.text('موظف');
    const kept = page.locator('#queue-list .queue-item', { hasText: 'ريم' }).filter({ hasNotText: 'الجديدة' });
    await kept.waitFor();
    await kept.click();
    await page.waitForFunction(() => /#\/inbox\/\d+/.test(location.hash));
    const keptHash = await page.evaluate(() => location.hash);
    await after.text('أحتاج مساعدة عاجلة من رقمي الجديد');
    await before.changedNumber('966507770012');
    await page.locator('.msg-text', { hasText: 'أحتاج مساعدة عاجلة من رقمي الجديد' }).waitFor({ timeout: 10000 });
    assert.equal(await page.evaluate(() => location.hash), keptHash);
    // Written from the old number a minute before the change, delivered after it: in the same
    // conversation, marked with the number it came from.
    await before.textWrittenAt('كتبت هذه قبل تغيير رقمي', Math.floor(Date.now() / 1000) - 60);
    const late = page.locator('.msg', { hasText: 'كتبت هذه قبل تغيير رقمي' });
    await late.waitFor({ timeout: 10000 });
    assert.match(await late.locator('.written-from').innerText(), /\+966507770011/);
    assert.equal(await page.evaluate(() => location.hash), keptHash);
  });
});

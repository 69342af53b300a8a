// Attachment chips in the staff console download the file a beneficiary sent: the chip names the
// authenticated endpoint, a click fetches it with the Bearer token (a plain link could not carry
// it) and the browser saves the provider's exact bytes under the sender's file name.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { axeViolations, formatViolations } from '../lib/a11y.mjs';
import { startConsole } from '../lib/console.mjs';
import { whatsappUser } from '../lib/server.mjs';

const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) & 0xff))]);
const JPG = Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 131 + 7) & 0xff));

let s, graph, aoun, page;

describe('attachments in the staff console', () => {
  before(async () => {
    s = await startConsole({
      prepare: (g) => {
        g.media.set('880000000000001', { bytes: PDF, mime: 'application/pdf' });
        g.media.set('880000000000002', { bytes: JPG, mime: 'image/jpeg' });
      },
    });
    ({ graph, aoun, page } = s);
  });
  after(async () => { await s?.stop(); });

  test('a document chip links to the media endpoint and a click saves the exact file', async () => {
    const u = whatsappUser(aoun.base, { waId: '966504445566', name: 'سارة' });
    await u.text('السلام عليكم');
    await u.document('880000000000001', 'صك الحادثة.pdf');
    await u.image('880000000000002');
    await page.click('#tab-all');
    await page.locator('#queue-list .queue-item', { hasText: 'سارة' }).click();
    const chips = page.locator('#transcript a.media-link');
    await chips.nth(1).waitFor();
    assert.equal(await chips.count(), 2);

    const href = await chips.first().getAttribute('href');
    assert.match(href, /^\/api\/v1\/messages\/\d+\/media$/);
    // The link alone is not enough: without the token the endpoint refuses.
    assert.equal((await fetch(`${aoun.base}${href}`)).status, 401);

    const at = page.url();
    const [download] = await Promise.all([page.waitForEvent('download'), chips.first().click()]);
    assert.equal(download.suggestedFilename(), 'صك الحادثة.pdf');
    assert.ok(fs.readFileSync(await download.path()).equals(PDF), 'the saved bytes are the provider\'s');
    assert.equal(page.url(), at, 'the console did not navigate away');

    const [photo] = await Promise.all([page.waitForEvent('download'), chips.nth(1).click()]);
    assert.match(photo.suggestedFilename(), /^image-\d+\.jpg$/);
    assert.ok(fs.readFileSync(await photo.path()).equals(JPG));

    // Each download was a Graph lookup and a download, both with the WhatsApp token.
    const gets = graph.mediaGets.map((g) => `${g.path} ${g.auth}`);
    for (const p of ['/880000000000001', '/download/880000000000001', '/880000000000002', '/download/880000000000002'])
      assert.ok(gets.includes(`${p} Bearer wa-token-browser-tests`), `GET ${p} with the token; got ${gets.join(', ')}`);

    const v = await axeViolations(page);
    assert.equal(v.length, 0, `accessibility:\n${formatViolations(v)}`);
  });

  test('a provider failure is shown to the staff member, not swallowed', async () => {
    graph.media.delete('880000000000002');  // expired at the provider: Graph answers 404
    const chip = page.locator('#transcript a.media-link').nth(1);
    await chip.click();
    await page.locator('.toast', { hasText: 'تعذر تنزيل الملف' }).waitFor();
  });
});

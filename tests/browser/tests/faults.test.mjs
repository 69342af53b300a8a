// A provider that refuses the bot's own credentials (an expired WhatsApp access token): every
// staff member sees it on a banner, live, and it goes away once a send is accepted again; the
// replies that waited meanwhile are delivered.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startConsole } from '../lib/console.mjs';
import { whatsappUser, REPO, ADMIN } from '../lib/server.mjs';

let s, graph, aoun, page;

describe('a channel whose credentials are refused', () => {
  before(async () => {
    s = await startConsole({ env: { AOUN_CREDENTIALS_PAUSE_MS: '400' } });
    ({ graph, aoun, page } = s);
  });
  after(async () => { await s?.stop(); });

  test('the console says so in words while replies are held, and clears when they go out', async () => {
    const banner = page.locator('#fault-banner');
    assert.equal(await banner.isVisible(), false);
    graph.refuseToken = true;
    const u = whatsappUser(aoun.base, { waId: '966507778899', name: 'منى' });
    await u.text('السلام عليكم');
    await banner.waitFor({ state: 'visible' });
    const text = await banner.textContent();
    assert.match(text, /واتساب/);
    assert.match(text, /http 401 code 190/);
    await page.screenshot({ path: path.join(REPO, 'docs/screenshots/console-credentials-refused.png') });
    assert.ok(graph.refused >= 1);
    // Held, not lost nor given up on: the replies wait in the outbox, none sent, none dead.
    const login = await (await fetch(`${aoun.base}/api/v1/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) })).json();
    const rows = async (state) => (await (await fetch(`${aoun.base}/api/v1/outbox?state=${state}`, { headers: { Authorization: `Bearer ${login.token}` } })).json()).outbox;
    assert.ok((await rows('pending')).length + (await rows('sending')).length >= 1, 'the replies wait');
    assert.equal((await rows('sent')).length, 0, 'nothing went while the token was refused');
    assert.equal((await rows('dead')).length, 0, 'nothing was given up on');

    // A console opened now learns it from the API, not from an event it missed.
    await page.reload();
    await banner.waitFor({ state: 'visible' });

    graph.refuseToken = false;
    await graph.waitFor((p) => p.body?.to === '966507778899', 15000, 'the held reply');
    await banner.waitFor({ state: 'hidden' });
  });
});

// The console's delivery-status merging (web/console/delivery.js), in every order its inputs
// can arrive: the answer to a staff reply, message.new, and message.status from the outbox
// (sent, dead) and from the providers (delivered, read, failed). No browser needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { laterStatus, mergeLoaded } from '../../../web/console/delivery.js';

// Applies updates in order the way the console does (each merged over what is shown).
const apply = (...updates) => updates.reduce((shown, u) => ({ ...shown, ...laterStatus(shown, u) }), { id: 7 });
const at = (status, error) => ({ id: 7, delivery_status: status, ...(error ? { delivery_error: error } : {}) });

test('a status only moves forward: pending < sent < delivered < read, failed final', () => {
  assert.equal(apply(at('pending'), at('sent'), at('delivered'), at('read')).delivery_status, 'read');
  assert.equal(apply(at('sent'), at('pending')).delivery_status, 'sent', "the reply's late answer");
  assert.equal(apply(at('delivered'), at('sent')).delivery_status, 'delivered', 'our sent after the provider');
  assert.equal(apply(at('read'), at('delivered')).delivery_status, 'read');
  const failed = apply(at('sent'), at('failed', '131047 Re-engagement message'), at('delivered'), at('sent'), at('pending'));
  assert.equal(failed.delivery_status, 'failed');
  assert.equal(failed.delivery_error, '131047 Re-engagement message', 'the reason stays with the status');
});

test('a dead letter is not hidden by a late "pending", and a successful retry still shows sent', () => {
  const dead = apply(at('pending'), at('dead', 'http 400 code 131026'), at('pending'));
  assert.equal(dead.delivery_status, 'dead');
  assert.equal(dead.delivery_error, 'http 400 code 131026');
  assert.equal(apply(at('dead', 'x'), at('sent')).delivery_status, 'sent');
  assert.equal(apply(at('dead', 'x'), at('sent')).delivery_error, undefined, 'an old reason does not stay on a sent message');
});

test('a message without a status, or a word we do not rank, is taken as it comes', () => {
  assert.deepEqual(laterStatus({ id: 1, delivery_status: 'sent' }, { id: 1, text: 'x' }), { id: 1, text: 'x' });
  assert.equal(laterStatus({ id: 1, delivery_status: null }, at('pending')).delivery_status, 'pending');
  assert.equal(apply(at('sent'), at('queued')).delivery_status, 'queued');
  assert.equal(laterStatus(undefined, at('sent')).delivery_status, 'sent');
});

test('a loaded transcript keeps what the page knew and takes statuses that came before it', () => {
  const early = new Map([[2, { id: 2, delivery_status: 'failed', delivery_error: 'unreachable' }], [9, { id: 9, delivery_status: 'sent' }]]);
  const loaded = [{ id: 1, delivery_status: 'sent', text: 'a' }, { id: 2, delivery_status: 'sent', text: 'b' }, { id: 3, delivery_status: null, text: 'c' }];
  const known = [{ id: 1, delivery_status: 'read', text: 'a' }];
  const out = mergeLoaded(loaded, known, early);
  assert.deepEqual(out.map((m) => m.delivery_status), ['read', 'failed', null]);
  assert.equal(out[1].delivery_error, 'unreachable');
  assert.deepEqual(out.map((m) => m.text), ['a', 'b', 'c']);
  assert.deepEqual([...early.keys()], [9], 'applied entries are used up; others wait for their message');
  // a newer loaded status wins over an older known one
  assert.equal(mergeLoaded([{ id: 1, delivery_status: 'read' }], [{ id: 1, delivery_status: 'sent' }], new Map())[0].delivery_status, 'read');
});

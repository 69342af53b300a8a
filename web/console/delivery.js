// How far an outgoing message got, when what tells us arrives out of order. The answer to a
// staff reply says "pending" and can land after the stream's "sent" or "dead"; our "sent" can
// follow the provider's "delivered"; a status can come before its message, or while the
// transcript is loading. A status never moves back. A dead letter that staff send again is
// sent (or dead) again, never quietly pending: the retry itself publishes nothing.
export const STATUS_RANK = { pending: 0, dead: 0.5, sent: 1, delivered: 2, read: 3, failed: 4 };

// `next` with its delivery fields replaced by `prev`'s when `prev` got further. Unknown words
// (and messages without a status, e.g. inbound ones) are taken as they come.
// A status and its reason go together: a status that wins brings its own reason (or none).
export function laterStatus(prev, next) {
  if (!('delivery_status' in next)) return next;
  if (!prev || !prev.delivery_status) return { ...next, delivery_error: next.delivery_error };
  const a = STATUS_RANK[prev.delivery_status];
  const b = STATUS_RANK[next.delivery_status];
  if (a === undefined || b === undefined || b >= a) return { ...next, delivery_error: next.delivery_error };
  return { ...next, delivery_status: prev.delivery_status, delivery_error: prev.delivery_error };
}

// A freshly loaded transcript, folded with what the page already knew: the messages shown
// before (`known`) and statuses that arrived before their message (`early`, emptied here).
export function mergeLoaded(loaded, known, early) {
  const before = new Map(known.map((m) => [m.id, m]));
  return loaded.map((m) => {
    let out = m;
    if (before.has(m.id)) out = { ...out, ...laterStatus(before.get(m.id), out) };
    const e = early.get(m.id);
    if (e) { early.delete(m.id); out = { ...out, ...laterStatus(out, e) }; }
    return out;
  });
}

#include "storage/schema.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace aoun::storage {
namespace {

// Times are unix seconds (INTEGER) unless the name ends in _ms. Addresses (phone numbers, chat
// ids) and personal fields live only in the rows that need them, so that erasure is one place.
const std::vector<const char*>& migrations() {
  static const std::vector<const char*> list = {
      // 1: the whole initial schema.
      R"sql(
CREATE TABLE beneficiaries (
  id            INTEGER PRIMARY KEY,
  channel       TEXT NOT NULL,
  address       TEXT NOT NULL,            -- wa_id / chat id / E.164 / web session
  display_name  TEXT NOT NULL DEFAULT '',
  lang          TEXT NOT NULL DEFAULT 'ar',
  consented_at  INTEGER,
  created_at    INTEGER NOT NULL,
  last_inbound_at INTEGER,
  erased_at     INTEGER,
  UNIQUE (channel, address)
);

CREATE TABLE conversations (
  id              INTEGER PRIMARY KEY,
  beneficiary_id  INTEGER NOT NULL REFERENCES beneficiaries(id),
  mode            TEXT NOT NULL DEFAULT 'bot' CHECK (mode IN ('bot','waiting','staff','resolved')),
  priority        INTEGER NOT NULL DEFAULT 0,   -- 1 = danger: head of the queue
  queue_reason    TEXT,
  queued_at       INTEGER,
  assigned_staff_id INTEGER REFERENCES staff(id),
  dialog_state    TEXT NOT NULL DEFAULT '{}',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  last_message_at INTEGER,
  first_staff_reply_at INTEGER,
  resolved_at     INTEGER
);
CREATE INDEX conversations_by_beneficiary ON conversations(beneficiary_id, id);
CREATE INDEX conversations_queue ON conversations(mode, priority DESC, queued_at);

CREATE TABLE messages (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  direction       TEXT NOT NULL CHECK (direction IN ('in','out')),
  sender          TEXT NOT NULL CHECK (sender IN ('beneficiary','bot','staff','system')),
  staff_id        INTEGER REFERENCES staff(id),
  kind            TEXT NOT NULL DEFAULT 'text',
  text            TEXT NOT NULL DEFAULT '',
  payload         TEXT NOT NULL DEFAULT '{}',  -- choices offered, choice id, media ids, location
  provider_id     TEXT,                         -- inbound: provider message id
  created_at      INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);

-- Providers retry: an id seen once is never processed again, across restarts.
CREATE TABLE processed_webhooks (
  channel     TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (channel, provider_id)
) WITHOUT ROWID;

CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,          -- also the send order per recipient
  message_id      INTEGER REFERENCES messages(id),
  conversation_id INTEGER REFERENCES conversations(id),
  channel         TEXT NOT NULL,
  recipient       TEXT NOT NULL,
  payload         TEXT NOT NULL,                -- channels::outgoing as JSON
  state           TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending','sending','sent','dead','uncertain')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT,
  provider_message_id TEXT,
  delivery_status TEXT,                         -- sent / delivered / read / failed (provider webhooks)
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at_ms);
CREATE INDEX outbox_by_recipient ON outbox(channel, recipient, id);
CREATE INDEX outbox_by_provider_id ON outbox(provider_message_id);

CREATE TABLE cases (
  id              INTEGER PRIMARY KEY,
  reference       TEXT NOT NULL UNIQUE,
  beneficiary_id  INTEGER NOT NULL REFERENCES beneficiaries(id),
  conversation_id INTEGER REFERENCES conversations(id),
  channel         TEXT NOT NULL,
  step            TEXT NOT NULL DEFAULT 'submitted'
                  CHECK (step IN ('submitted','collecting_info','evaluating','approved','rejected','closed')),
  verification_method TEXT CHECK (verification_method IN ('document_check','interview','field_visit')),
  appointment     TEXT,
  full_name       TEXT NOT NULL,
  national_id     TEXT NOT NULL,
  mobile          TEXT NOT NULL,
  city            TEXT NOT NULL,
  service_type    TEXT NOT NULL,
  description     TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX cases_by_step ON cases(step);

CREATE TABLE case_events (
  id        INTEGER PRIMARY KEY,
  case_id   INTEGER NOT NULL REFERENCES cases(id),
  from_step TEXT,
  to_step   TEXT NOT NULL,
  staff_id  INTEGER REFERENCES staff(id),
  note      TEXT NOT NULL DEFAULT '',
  at        INTEGER NOT NULL
);
CREATE INDEX case_events_by_case ON case_events(case_id, id);

CREATE TABLE case_documents (
  id         INTEGER PRIMARY KEY,
  case_id    INTEGER NOT NULL REFERENCES cases(id),
  message_id INTEGER REFERENCES messages(id),
  media_kind TEXT NOT NULL,
  media_id   TEXT NOT NULL,
  mime       TEXT NOT NULL DEFAULT '',
  filename   TEXT NOT NULL DEFAULT '',
  at         INTEGER NOT NULL
);

CREATE TABLE volunteers (
  id             INTEGER PRIMARY KEY,
  beneficiary_id INTEGER REFERENCES beneficiaries(id),
  name           TEXT NOT NULL,
  city           TEXT NOT NULL,
  skills         TEXT NOT NULL,
  availability   TEXT NOT NULL,
  created_at     INTEGER NOT NULL
);

CREATE TABLE surveys (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  case_id         INTEGER REFERENCES cases(id),
  staff_id        INTEGER REFERENCES staff(id),
  channel         TEXT NOT NULL,
  service_type    TEXT,
  trigger         TEXT NOT NULL CHECK (trigger IN ('case_closed','conversation_resolved')),
  started_at      INTEGER NOT NULL,
  completed_at    INTEGER,
  overall         INTEGER CHECK (overall BETWEEN 1 AND 5),
  speed           INTEGER CHECK (speed BETWEEN 1 AND 5),
  courtesy        INTEGER CHECK (courtesy BETWEEN 1 AND 5),
  comment         TEXT
);

CREATE TABLE staff (
  id            INTEGER PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  display_name  TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('agent','supervisor','admin')),
  password_hash TEXT NOT NULL,
  failed_logins INTEGER NOT NULL DEFAULT 0,
  locked_until  INTEGER NOT NULL DEFAULT 0,
  disabled      INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,                   -- SHA-256 of the bearer token; the token itself is never stored
  staff_id   INTEGER NOT NULL REFERENCES staff(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_log (
  id       INTEGER PRIMARY KEY,
  staff_id INTEGER REFERENCES staff(id),
  action   TEXT NOT NULL,
  target   TEXT NOT NULL DEFAULT '',
  detail   TEXT NOT NULL DEFAULT '{}',
  at       INTEGER NOT NULL
);
CREATE INDEX audit_by_time ON audit_log(at);

CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
      // 2: the unsent rows, by recipient: head-of-line checks and claims touch only these.
      R"sql(
CREATE INDEX outbox_unsent ON outbox(channel, recipient, id) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_pending_due ON outbox(next_attempt_at_ms, id) WHERE state = 'pending';
)sql",
      // 3: cheaper writes of the two tables written for every message (bench/webhook).
      // - A CHECK of the form `x IN ('a','b','c')` (more than two constants) makes SQLite build
      //   an ephemeral table for every row written; the same rule as a chain of `=` does not.
      //   So messages and outbox are rebuilt with their checks spelled that way (SQLite cannot
      //   alter a CHECK: the documented 12-step rebuild, foreign keys off while migrating).
      // - Fewer index entries written at random places (each one more WAL page per commit):
      //   outbox_due and outbox_by_recipient are covered by the partial indexes of v2, provider
      //   ids are indexed once known, and the transcript's join to the outbox by message_id gets
      //   the index it lacked (appended in order). Dead rows, which staff list, get their own.
      R"sql(
CREATE TABLE messages_v3 (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  direction       TEXT NOT NULL CHECK (direction = 'in' OR direction = 'out'),
  sender          TEXT NOT NULL CHECK (sender = 'beneficiary' OR sender = 'bot' OR sender = 'staff' OR sender = 'system'),
  staff_id        INTEGER REFERENCES staff(id),
  kind            TEXT NOT NULL DEFAULT 'text',
  text            TEXT NOT NULL DEFAULT '',
  payload         TEXT NOT NULL DEFAULT '{}',  -- choices offered, choice id, media ids, location
  provider_id     TEXT,                         -- inbound: provider message id
  created_at      INTEGER NOT NULL
);
INSERT INTO messages_v3 SELECT id, conversation_id, direction, sender, staff_id, kind, text, payload, provider_id, created_at
  FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v3 RENAME TO messages;
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);

CREATE TABLE outbox_v3 (
  id              INTEGER PRIMARY KEY,          -- also the send order per recipient
  message_id      INTEGER REFERENCES messages(id),
  conversation_id INTEGER REFERENCES conversations(id),
  channel         TEXT NOT NULL,
  recipient       TEXT NOT NULL,
  payload         TEXT NOT NULL,                -- channels::outgoing as JSON
  state           TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state = 'pending' OR state = 'sending' OR state = 'sent' OR state = 'dead' OR state = 'uncertain'),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT,
  provider_message_id TEXT,
  delivery_status TEXT,                         -- sent / delivered / read / failed (provider webhooks)
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER
);
INSERT INTO outbox_v3 SELECT id, message_id, conversation_id, channel, recipient, payload, state, attempts,
  next_attempt_at_ms, last_error, provider_message_id, delivery_status, created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_unsent ON outbox(channel, recipient, id) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_pending_due ON outbox(next_attempt_at_ms, id) WHERE state = 'pending';
CREATE INDEX outbox_by_provider_id ON outbox(provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX outbox_by_message ON outbox(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX outbox_dead ON outbox(id) WHERE state = 'dead';
)sql",
      // 4: cases by beneficiary. The retention sweep asks, for every beneficiary, whether a case
      //    is still open and when the last one changed step (docs/privacy.md), and erasure
      //    updates their cases: both scanned the whole table. Cases are written a few times in
      //    their life (creation, each step), never per message, so the index costs webhooks
      //    nothing; with step and updated_at in it those questions never read the table.
      R"sql(
CREATE INDEX cases_by_beneficiary ON cases(beneficiary_id, step, updated_at);
)sql",
      // 5: keys the server makes for itself on first start (the web chat signs the session ids
      //    it hands out with one, bot/webchat.cpp). Kept in the database so that they survive a
      //    restart and travel with the data they protect.
      R"sql(
CREATE TABLE server_keys (
  name       TEXT PRIMARY KEY,
  secret     TEXT NOT NULL,                -- 32 random bytes, base64url
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
      // 6: the rows staff ask about when a beneficiary may have had a message twice
      //    (GET /api/v1/outbox?state=uncertain): few among the whole history, which the list
      //    would otherwise scan. The flag lives in last_error (docs/outbox.md).
      R"sql(
CREATE INDEX outbox_uncertain ON outbox(id) WHERE last_error LIKE 'uncertain%';
)sql",
      // 7: a beneficiary who texted STOP (docs/channels.md, "Opting out"): nothing more is sent
      //    to them by SMS until they text START. Most rows stay NULL.
      R"sql(
ALTER TABLE beneficiaries ADD COLUMN sms_opted_out_at INTEGER;
)sql",
      // 8: the same for Telegram, where a person who blocks the bot cannot be written to until
      //    they write again: one column for "this address asked for nothing more on its channel".
      R"sql(
ALTER TABLE beneficiaries RENAME COLUMN sms_opted_out_at TO opted_out_at;
)sql",
      // 9: WhatsApp's business-scoped user id (BSUID) beside the phone number: a person who
      //    takes a username may write with the user id alone, and is still the same person.
      //    Most rows stay NULL until their next message; one user id belongs to one beneficiary.
      R"sql(
ALTER TABLE beneficiaries ADD COLUMN user_id TEXT;
CREATE UNIQUE INDEX beneficiaries_by_user_id ON beneficiaries(channel, user_id) WHERE user_id IS NOT NULL;
)sql",
      // 10: where a WhatsApp number's messages go once it is no longer the person's
      //     (docs/channels.md, "A changed number"): Meta delivers and retries messages for up
      //     to a week, unordered, so one written from the old number can come after the notice
      //     that moved its writer. Rows are few (one per change), kept 8 days, and erased with
      //     the person. The merge of two records finds cases and surveys by conversation.
      R"sql(
CREATE TABLE address_moves (
  id             INTEGER PRIMARY KEY,
  channel        TEXT NOT NULL,
  from_address   TEXT NOT NULL,
  beneficiary_id INTEGER NOT NULL,
  changed_at     INTEGER NOT NULL,
  user_id        TEXT,
  recorded_at    INTEGER NOT NULL
);
CREATE INDEX address_moves_by_from ON address_moves(channel, from_address, changed_at);
CREATE INDEX address_moves_by_user_id ON address_moves(channel, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX address_moves_by_beneficiary ON address_moves(beneficiary_id);
CREATE INDEX cases_by_conversation ON cases(conversation_id);
CREATE INDEX surveys_by_conversation ON surveys(conversation_id);
)sql",
      // v11: files web-chat visitors send (docs/console.md, "Sending a file"). The website chat
      //     has no provider to keep them, so the bytes are kept here, under the session that
      //     sent them; the message's media id is the row's id. Erased with the person.
      R"sql(
CREATE TABLE uploads (
  id         INTEGER PRIMARY KEY,
  address    TEXT NOT NULL,
  kind       TEXT NOT NULL,
  mime       TEXT NOT NULL,
  filename   TEXT NOT NULL DEFAULT '',
  size       INTEGER NOT NULL,
  bytes      BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX uploads_by_address ON uploads(address);
)sql",
      // v12: copies of the files beneficiaries send on the providers' channels (docs/staff.md,
      //     "Kept copies"): WhatsApp keeps a file 30 days, a case may need it longer. Erased with
      //     the person, moved with a merge.
      R"sql(
CREATE TABLE media_copies (
  id              INTEGER PRIMARY KEY,
  channel         TEXT NOT NULL,
  media_id        TEXT NOT NULL,
  beneficiary_id  INTEGER NOT NULL,
  state           TEXT NOT NULL DEFAULT 'wanted' CHECK (state IN ('wanted', 'kept', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  mime            TEXT NOT NULL DEFAULT '',
  file_path       TEXT NOT NULL DEFAULT '',
  bytes           BLOB,
  created_at      INTEGER NOT NULL,
  UNIQUE (channel, media_id)
);
CREATE INDEX media_copies_wanted ON media_copies(next_attempt_at) WHERE state = 'wanted';
CREATE INDEX media_copies_by_beneficiary ON media_copies(beneficiary_id);
)sql",
      // v13: a web-chat visitor's "end on this device" ends the session id on the server too
      //     (docs/console.md): a copy of the id left elsewhere no longer opens the history.
      R"sql(
ALTER TABLE beneficiaries ADD COLUMN session_ended_at INTEGER;
)sql",
      // v14: a reply still to send when its beneficiary's data is erased forgets its text once
      //     sent or given up on (storage::erase_beneficiary).
      R"sql(
ALTER TABLE outbox ADD COLUMN erase_when_done INTEGER NOT NULL DEFAULT 0;
)sql",
  };
  return list;
}

}  // namespace

int latest_schema_version() { return static_cast<int>(migrations().size()); }

result<int> migrate(connection& conn) { return migrate(conn, latest_schema_version()); }

result<int> migrate(connection& conn, int target) {
  target = std::min(target, latest_schema_version());
  int version = 0;
  {
    auto q = conn.prepare("PRAGMA user_version");
    if (!q) return q.error();
    auto row = q->step();
    if (!row) return row.error();
    version = static_cast<int>(q->int64(0));
  }
  if (version > latest_schema_version()) return errc::invalid;
  const auto& list = migrations();
  // Rebuilding a table (v3) drops the old one: with foreign keys enforced that would check or
  // cascade every row pointing at it. They are off for the migration (SQLite's documented
  // procedure), checked before each commit, and on again afterwards.
  if (version < target)
    if (auto ec = conn.exec_script("PRAGMA foreign_keys=OFF")) return ec;
  struct restore {
    connection& c;
    ~restore() { c.exec_script("PRAGMA foreign_keys=ON"); }
  } on_exit{conn};
  for (int v = version; v < target; ++v) {
    if (auto ec = conn.exec_script("BEGIN IMMEDIATE")) return ec;
    auto ec = conn.exec_script(list[static_cast<std::size_t>(v)]);
    if (!ec) {
      auto check = conn.prepare("PRAGMA foreign_key_check");
      if (!check) ec = check.error();
      else if (auto row = check->step(); !row) ec = row.error();
      else if (*row) ec = errc::invalid;  // a dangling reference: keep the old schema
    }
    if (!ec) {
      std::string set = "PRAGMA user_version = " + std::to_string(v + 1);
      ec = conn.exec_script(set.c_str());
    }
    if (ec) {
      conn.exec_script("ROLLBACK");
      return ec;
    }
    if (auto cec = conn.exec_script("COMMIT")) return cec;
  }
  return std::max(version, target);
}

}  // namespace aoun::storage

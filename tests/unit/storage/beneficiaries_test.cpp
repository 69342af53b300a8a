#include <doctest/doctest.h>

#include "storage/conversations.hpp"
#include "storage/schema.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun::storage;
using aoun::storage::testing::fresh_connection;

TEST_CASE("upsert_beneficiary creates once, then refreshes the name and the last inbound time") {
  auto c = fresh_connection();
  auto a = upsert_beneficiary(*c, "whatsapp", "966500000001", "Ahmed", 100, true);
  REQUIRE(a.has_value());
  CHECK(a->channel == "whatsapp");
  CHECK(a->address == "966500000001");
  CHECK(a->display_name == "Ahmed");
  CHECK(a->lang == "ar");
  CHECK(a->created_at == 100);
  CHECK(a->last_inbound_at == 100);

  auto b = upsert_beneficiary(*c, "whatsapp", "966500000001", "Ahmed A.", 200, true);
  REQUIRE(b.has_value());
  CHECK(b->id == a->id);
  CHECK(b->display_name == "Ahmed A.");
  CHECK(b->last_inbound_at == 200);
  CHECK(b->created_at == 100);

  // No name in this message (an SMS, say): the one we have stays.
  auto n = upsert_beneficiary(*c, "whatsapp", "966500000001", "", 300, true);
  REQUIRE(n.has_value());
  CHECK(n->display_name == "Ahmed A.");
  CHECK(n->last_inbound_at == 300);

  // Not an inbound message (staff open the record, an outbound notice): last_inbound_at stays.
  auto o = upsert_beneficiary(*c, "whatsapp", "966500000001", "Other", 400, false);
  REQUIRE(o.has_value());
  CHECK(o->last_inbound_at == 300);

  // The same address on another channel is another beneficiary.
  auto t = upsert_beneficiary(*c, "telegram", "966500000001", "", 500, false);
  REQUIRE(t.has_value());
  CHECK(t->id != a->id);
  CHECK(t->display_name.empty());
  CHECK_FALSE(t->last_inbound_at.has_value());
}

namespace {

std::int64_t total_changes(connection& c) {
  auto q = c.prepare("SELECT total_changes()");
  REQUIRE(q.has_value());
  REQUIRE(q->step().value());
  return q->int64(0);
}

}  // namespace

TEST_CASE("upsert_beneficiary writes only what changed; last_inbound_at lags by under a minute") {
  auto c = fresh_connection();
  REQUIRE(upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda", 1000, true).has_value());
  const auto before = total_changes(*c);

  // The next message 30 s later, same name: nothing is written, the row is as it was.
  auto a = upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda", 1030, true);
  REQUIRE(a.has_value());
  CHECK(a->last_inbound_at == 1000);
  CHECK(total_changes(*c) == before);

  // A new name is written at once; the inbound time still waits for its minute.
  auto b = upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda S.", 1059, true);
  REQUIRE(b.has_value());
  CHECK(b->display_name == "Huda S.");
  CHECK(b->last_inbound_at == 1000);
  CHECK(total_changes(*c) == before + 1);

  // A minute after the stored time it is refreshed, and what is returned is what is stored.
  auto d = upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda S.", 1060, true);
  REQUIRE(d.has_value());
  CHECK(d->last_inbound_at == 1060);
  auto e = upsert_beneficiary(*c, "whatsapp", "966500000003", "", 1061, false);
  REQUIRE(e.has_value());
  CHECK(e->last_inbound_at == 1060);
  CHECK(e->display_name == "Huda S.");

  // A clock that went back is believed (the stored time is never in the future).
  auto f = upsert_beneficiary(*c, "whatsapp", "966500000003", "", 900, true);
  REQUIRE(f.has_value());
  CHECK(f->last_inbound_at == 900);
}

TEST_CASE("upsert_beneficiary never writes a name back onto an erased beneficiary") {
  auto c = fresh_connection();
  auto a = upsert_beneficiary(*c, "sms", "+966500000002", "Sara", 100, true);
  REQUIRE(a.has_value());
  REQUIRE(!c->exec_script("UPDATE beneficiaries SET display_name = '', erased_at = 150"));
  auto b = upsert_beneficiary(*c, "sms", "+966500000002", "Sara", 200, true);
  REQUIRE(b.has_value());
  CHECK(b->id == a->id);
  CHECK(b->display_name.empty());
  CHECK(b->erased_at == 150);
  CHECK(b->last_inbound_at == 200);
}

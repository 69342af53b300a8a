// The webhook's write job may run twice in one batch (storage::rerun::safe): when a later job of
// the batch fails, the writer rolls the transaction back and runs the batch again, each job in
// its own SAVEPOINT. What the job hands back (the replies to send, the events to publish) must
// then be those of its last run only, or a reply would go out twice.
#include <doctest/doctest.h>

#include "bot/app.hpp"
#include "bot/config.hpp"
#include "bot/conversation_ops.hpp"
#include "storage/database.hpp"
#include "tests/unit/bot/support.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun;
using boost::system::error_code;

namespace {

using storage::testing::count;
using storage::testing::one_batch;
using storage::testing::temp_file;

bot::config whatsapp_config() {
  return bot::testing::config_from({
      {"AOUN_DB", ":memory:"},
      {"AOUN_WHATSAPP_VERIFY_TOKEN", "verify"},
      {"AOUN_WHATSAPP_APP_SECRET", "secret"},
      {"AOUN_WHATSAPP_TOKEN", "wa-token"},
      {"AOUN_WHATSAPP_PHONE_NUMBER_ID", "106540352242922"},
      {"AOUN_WHATSAPP_API_BASE", "http://127.0.0.1:1"},
  });
}

channels::inbound text_from(std::string from, std::string wamid) {
  channels::inbound in;
  in.channel = channels::kind::whatsapp;
  in.type = channels::inbound_type::text;
  in.from = std::move(from);
  in.provider_id = std::move(wamid);
  in.text = "السلام عليكم";
  return in;
}

}  // namespace

TEST_CASE("a webhook job run twice hands back the replies of one run") {
  temp_file file;
  auto cfg = whatsapp_config();
  auto db = std::move(*storage::database::open({.path = file.path}));
  bot::conversation_ops ops(cfg, bot::app::load_engine(cfg));
  const std::int64_t now = 1'790'000'000;

  // The same first message from a beneficiary alone in its batch: what one run hands back.
  std::vector<channels::inbound> alone{text_from("966500000001", "wamid.alone")};
  bot::after_commit fx_alone;
  fx_alone.staff_listening = true;
  std::vector<std::pair<storage::write_job, storage::rerun>> first;
  first.emplace_back(
      [&](storage::connection& c) -> error_code {
        auto r = ops.handle_all(c, alone, now, fx_alone);
        return r ? error_code{} : r.error();
      },
      storage::rerun::safe);
  auto r0 = one_batch(*db, std::move(first));
  REQUIRE(!r0[0]);
  REQUIRE(!fx_alone.claimed.empty());  // the welcome goes out at once
  REQUIRE(!fx_alone.events.empty());   // and the console hears of it

  // Now one behind which a job fails: the webhook's job runs twice.
  std::vector<channels::inbound> twice{text_from("966500000002", "wamid.twice")};
  bot::after_commit fx;
  fx.staff_listening = true;
  int runs = 0;
  std::vector<std::pair<storage::write_job, storage::rerun>> jobs;
  jobs.emplace_back(
      [&](storage::connection& c) -> error_code {
        ++runs;
        auto h = ops.handle_all(c, twice, now, fx);
        return h ? error_code{} : h.error();
      },
      storage::rerun::safe);
  jobs.emplace_back([](storage::connection&) -> error_code { return storage::errc::invalid; }, storage::rerun::safe);
  auto r = one_batch(*db, std::move(jobs));
  CHECK(!r[0]);
  CHECK(r[1] == storage::errc::invalid);
  CHECK(runs == 2);
  CHECK(db->snapshot().reruns == 1);
  // One run's worth: the same replies and events as the beneficiary alone, no copies.
  CHECK(fx.claimed.size() == fx_alone.claimed.size());
  CHECK(fx.events.size() == fx_alone.events.size());
  CHECK(fx.chains.size() == fx_alone.chains.size());
  CHECK(fx.wake_outbox == fx_alone.wake_outbox);
  // And the database holds one run's rows, committed.
  CHECK(count(*db, "SELECT count(*) FROM outbox WHERE recipient = '966500000002'") ==
        static_cast<std::int64_t>(fx.claimed.size()));
  CHECK(count(*db, "SELECT count(*) FROM messages m JOIN conversations v ON v.id = m.conversation_id "
                   "JOIN beneficiaries b ON b.id = v.beneficiary_id WHERE b.address = '966500000002'") ==
        count(*db, "SELECT count(*) FROM messages m JOIN conversations v ON v.id = m.conversation_id "
                   "JOIN beneficiaries b ON b.id = v.beneficiary_id WHERE b.address = '966500000001'"));
  for (std::size_t i = 0; i < fx.claimed.size() && i < fx_alone.claimed.size(); ++i)
    CHECK(fx.claimed[i].row.payload == fx_alone.claimed[i].row.payload);
}

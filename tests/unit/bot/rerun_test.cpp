// The webhook's write job may run twice in one batch (storage::rerun::safe): when a later job of
// the batch fails, the writer rolls the transaction back and runs the batch again, each job in
// its own SAVEPOINT. What the job hands back (the replies to send, the events to publish) must
// then be those of its last run only, or a reply would go out twice.
#include <doctest/doctest.h>

#include <filesystem>
#include <future>
#include <map>

#include "bot/app.hpp"
#include "bot/config.hpp"
#include "bot/conversation_ops.hpp"
#include "storage/database.hpp"

using namespace aoun;
using boost::system::error_code;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/aoun-rerun-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

bot::config whatsapp_config() {
  std::map<std::string, std::string> env{
      {"AOUN_DB", ":memory:"},
      {"AOUN_WHATSAPP_VERIFY_TOKEN", "verify"},
      {"AOUN_WHATSAPP_APP_SECRET", "secret"},
      {"AOUN_WHATSAPP_TOKEN", "wa-token"},
      {"AOUN_WHATSAPP_PHONE_NUMBER_ID", "106540352242922"},
      {"AOUN_WHATSAPP_API_BASE", "http://127.0.0.1:1"},
  };
  return bot::load_config([&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
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

// Runs `jobs` as ONE batch of the writer: a first job holds it until they are all queued.
std::vector<error_code> one_batch(storage::database& db, std::vector<storage::write_job> jobs) {
  std::promise<void> started, gate;
  auto gate_open = gate.get_future().share();
  std::promise<error_code> first;
  db.submit_write(
      [&started, gate_open](storage::connection&) {
        started.set_value();
        gate_open.wait();
        return error_code{};
      },
      [&first](error_code ec) { first.set_value(ec); });
  started.get_future().wait();
  std::vector<std::promise<error_code>> done(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i)
    db.submit_write(std::move(jobs[i]), [&done, i](error_code ec) { done[i].set_value(ec); },
                    storage::rerun::safe);
  gate.set_value();
  REQUIRE(!first.get_future().get());
  std::vector<error_code> out;
  for (auto& p : done) out.push_back(p.get_future().get());
  return out;
}

std::int64_t count(storage::database& db, const std::string& sql) {
  std::promise<std::int64_t> n;
  db.submit_read(
      [&](storage::connection& c) -> error_code {
        auto q = c.prepare(sql);
        if (!q) return q.error();
        auto r = q->step();
        if (!r) return r.error();
        n.set_value(q->int64(0));
        return {};
      },
      [](error_code) {});
  return n.get_future().get();
}

}  // namespace

TEST_CASE("a webhook job run twice hands back the replies of one run") {
  temp_dir dir;
  auto cfg = whatsapp_config();
  auto db = std::move(*storage::database::open({.path = dir.path + "/t.db"}));
  bot::conversation_ops ops(cfg, bot::app::load_engine(cfg));
  const std::int64_t now = 1'790'000'000;

  // The same first message from a beneficiary alone in its batch: what one run hands back.
  std::vector<channels::inbound> alone{text_from("966500000001", "wamid.alone")};
  bot::after_commit fx_alone;
  fx_alone.staff_listening = true;
  auto r0 = one_batch(*db, {[&](storage::connection& c) -> error_code {
                         auto r = ops.handle_all(c, alone, now, fx_alone);
                         return r ? error_code{} : r.error();
                       }});
  REQUIRE(!r0[0]);
  REQUIRE(!fx_alone.claimed.empty());  // the welcome goes out at once
  REQUIRE(!fx_alone.events.empty());   // and the console hears of it

  // Now one behind which a job fails: the webhook's job runs twice.
  std::vector<channels::inbound> twice{text_from("966500000002", "wamid.twice")};
  bot::after_commit fx;
  fx.staff_listening = true;
  int runs = 0;
  auto r = one_batch(*db, {[&](storage::connection& c) -> error_code {
                             ++runs;
                             auto h = ops.handle_all(c, twice, now, fx);
                             return h ? error_code{} : h.error();
                           },
                           [](storage::connection&) -> error_code { return storage::errc::invalid; }});
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

#include "bot/outbox.hpp"

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "bot/conversation_ops.hpp"
#include "bot/db.hpp"
#include "bot/log.hpp"
#include "bot/outgoing_json.hpp"
#include "channels/sms.hpp"
#include "channels/telegram.hpp"
#include "channels/whatsapp.hpp"
#include "storage/conversations.hpp"

namespace aoun::bot {
namespace {

using clock = std::chrono::steady_clock;
constexpr int claim_batch = 64;
constexpr int max_in_flight = 256;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

channels::whatsapp::config whatsapp_config(const config& c) {
  return {c.secret.whatsapp_verify_token, c.secret.whatsapp_app_secret, c.secret.whatsapp_token,
          c.whatsapp_phone_number_id, c.whatsapp_api_base};
}
channels::telegram::config telegram_config(const config& c) {
  channels::telegram::config t;
  t.token = c.secret.telegram_token;
  t.secret = c.secret.telegram_secret;
  t.api_base = c.telegram_api_base;
  return t;
}
channels::sms::config sms_config(const config& c) {
  channels::sms::config s;
  s.outbound = c.sms_gateway == "unifonic"  ? channels::sms::gateway::unifonic
               : c.sms_gateway == "taqnyat" ? channels::sms::gateway::taqnyat
                                            : channels::sms::gateway::twilio;
  s.account_sid = c.twilio_account_sid;
  s.auth_token = c.secret.twilio_auth_token;
  s.from = c.twilio_from;
  s.api_base = c.twilio_api_base;
  s.public_url = c.public_url;
  s.unifonic_app_sid = c.secret.unifonic_app_sid;
  s.unifonic_sender = c.unifonic_sender;
  s.unifonic_api_base = c.unifonic_api_base;
  s.taqnyat_token = c.secret.taqnyat_token;
  s.taqnyat_sender = c.taqnyat_sender;
  s.taqnyat_api_base = c.taqnyat_api_base;
  return s;
}

}  // namespace

// Token buckets: one per channel, and Telegram's one-message-per-second-per-chat rule.
struct outbox_worker::limiter {
  struct bucket {
    double rate = 1, tokens = 1, burst = 1;
    clock::time_point last = clock::now();
    // Time to wait before one token is available; then `cost` tokens are taken (a long SMS
    // goes as soon as one is there, and the sends after it wait for the rest).
    clock::duration take(double cost = 1) {
      auto now = clock::now();
      tokens = std::min(burst, tokens + rate * std::chrono::duration<double>(now - last).count());
      last = now;
      const double short_of = 1 - tokens;
      tokens -= cost;
      if (short_of <= 0) return clock::duration::zero();
      return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(short_of / rate));
    }
    // The provider asked the whole channel to slow down. The whole schedule moves back by `seconds`: the next token comes that much later, and
    // the sends already waiting for theirs (their wait was reckoned before) add it to their
    // wait (holds_total), keeping their spacing instead of all going when the hold ends.
    // Holds that overlap (several sends in flight met the same limit) count once: only the
    // part past the current hold's end moves the schedule.
    void slow_down(double seconds) {
      const auto now = clock::now();
      const auto end = now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
      if (end <= hold_end) return;
      const auto extra = end - std::max(now, hold_end);
      hold_end = end;
      tokens = std::min(burst, tokens + rate * std::chrono::duration<double>(now - last).count());
      last = now;
      tokens -= rate * std::chrono::duration<double>(extra).count();
      holds_total += extra;
    }
    clock::duration holds_total{};
    clock::time_point hold_end{};
    // More than `seconds` of sends already wait for this bucket's tokens, counting `queued`
    // sends that will take one (handed to chains, not yet paced).
    bool saturated(double seconds, int queued) const {
      const double now_tokens =
          std::min(burst, tokens + rate * std::chrono::duration<double>(clock::now() - last).count());
      return now_tokens - queued < -rate * seconds;
    }
  };
  std::map<std::string, bucket> channels;
  std::map<std::string, clock::time_point> telegram_chats;
};

// The channels' settings, built once (they were copied for every send).
struct outbox_worker::provider_configs {
  channels::whatsapp::config whatsapp;
  channels::telegram::config telegram;
  channels::sms::config sms;
};

outbox_worker::outbox_worker(net::io_context& ioc, storage::database& db, const config& cfg, event_hub& hub,
                             metrics& m, early_receipts& receipts)
    : ioc_(ioc),
      db_(db),
      cfg_(cfg),
      hub_(hub),
      metrics_(m),
      receipts_(receipts),
      strand_(net::make_strand(ioc)),
      tls_(net::ssl::context::tls_client),
      timer_(strand_),
      limits_(std::make_unique<limiter>()),
      providers_(std::make_unique<const provider_configs>(
          provider_configs{whatsapp_config(cfg), telegram_config(cfg), sms_config(cfg)})) {
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(net::ssl::verify_peer);
  // One pooled connection per send in flight: with fewer, most sends would open (and, on
  // https, handshake) a new connection (seen in bench/webhook: 14,644 connections for 15,616 sends).
  channels::http_client_options copts;
  copts.max_idle_per_host = max_in_flight;
  client_ = std::make_unique<channels::http_client>(ioc_.get_executor(), tls_, copts);
  auto add = [&](const char* name, double rate) {
    limiter::bucket b;
    b.rate = rate;
    b.burst = std::max(1.0, rate);  // at most one second's worth at once
    b.tokens = b.burst;
    limits_->channels[name] = b;
  };
  add("whatsapp", cfg.outbox.whatsapp_rate);
  add("telegram", cfg.outbox.telegram_rate);
  add("sms", cfg.outbox.sms_rate);
}

outbox_worker::~outbox_worker() = default;

void outbox_worker::start() {
  net::co_spawn(strand_, loop(), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("outbox_loop_failed", {{"what", ex.what()}});
      }
    }
  });
}

void outbox_worker::wake() {
  net::post(strand_, [this] { backlog_changed(); });
}

void outbox_worker::backlog_changed() {
  ++backlog_changes_;
  pending_left_ = true;
  woken_ = true;
  timer_.cancel();
}

void outbox_worker::deliver_claimed(std::vector<outbox_send> rows) {
  net::post(strand_, [this, rows = std::move(rows)]() mutable {
    // Split into per-recipient chains, keeping each recipient's order.
    std::vector<std::vector<outbox_send>> chains;
    std::map<std::string, std::size_t> index;
    for (auto& r : rows) {
      auto key = r.row.channel + "\n" + r.row.recipient;
      auto [it, fresh] = index.emplace(key, chains.size());
      if (fresh) chains.emplace_back();
      chains[it->second].push_back(std::move(r));
    }
    for (auto& c : chains) spawn_chain(std::move(c));
  });
}

void outbox_worker::addresses_changed(std::vector<std::string> keys) {
  net::post(strand_, [this, keys = std::move(keys)] {
    const auto now = clock::now();
    // Chains hold rows for seconds (a rate limit's wait), minutes at the very most.
    std::erase_if(readdressed_, [&](const auto& e) { return now - e.second > std::chrono::hours(1); });
    if (readdressed_.size() > 10000) readdressed_.clear();  // bounded; each entry costs a read only
    for (const auto& k : keys) readdressed_[k] = now;
  });
}

net::awaitable<void> outbox_worker::follow_readdress(outbox_send& s) {
  if (readdressed_.empty() || !readdressed_.count(s.row.channel + "\n" + s.row.recipient)) co_return;
  const std::int64_t id = s.row.id;
  auto now_to = co_await db_read<std::optional<std::string>>(db_, [id](storage::connection& c) {
    return storage::outbox_recipient(c, id);
  });
  // A failed read leaves the row as it is: the retired check below still stands for rows
  // re-addressed before their chain took them, and this is the rare case of the rare case.
  if (!now_to || !*now_to || **now_to == s.row.recipient) co_return;
  log::info("outbox_readdressed", {{"id", id}, {"channel", s.row.channel}});
  s.row.recipient = **now_to;
  if (s.out) s.out->to = s.row.recipient;
}

void outbox_worker::spawn_chain(std::vector<outbox_send> rows) {
  ++in_flight_;
  for (const auto& r : rows) {
    ++unpaced_[r.row.channel];
    ++held_[r.row.channel];
  }
  net::co_spawn(strand_, deliver_chain(std::move(rows)), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("outbox_deliver_failed", {{"what", ex.what()}});
      }
    }
    finished_one();
  });
}

net::awaitable<void> outbox_worker::release_row(std::int64_t id) {
  auto pause = first_rewrite_pause;
  for (;;) {
    auto done = co_await db_write<int>(db_, storage::rerun::safe, [id](storage::connection& c) -> storage::result<int> {
      if (auto ec = storage::outbox_release(c, id)) return ec;
      return 0;
    });
    if (done || !co_await wait_to_rewrite(id, done.error(), pause)) break;
  }
}

net::awaitable<void> outbox_worker::release_rows(std::vector<outbox_send> rows) {
  for (const auto& r : rows) co_await release_row(r.row.id);
}

net::awaitable<void> outbox_worker::deliver_chain(std::vector<outbox_send> rows) {
  // Each row is counted in held_ from spawn_chain until it is done here, or released.
  struct held_guard {
    std::map<std::string, int>& m;
    std::string channel;
    ~held_guard() { --m[channel]; }
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::int64_t id = rows[i].row.id;
    const std::string channel = rows[i].row.channel;
    const int attempts = rows[i].row.attempts;
    const auto message_id = rows[i].row.message_id;
    const auto conversation_id = rows[i].row.conversation_id;
    held_guard held{held_, channel};
    bool done = false;
    std::string failure;
    try {
      done = co_await deliver(std::move(rows[i]));
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      // Thrown inside the server (memory, a bug): the row must not stay `sending`, which would
      // hold its recipient's replies until a restart. It may have left, so it is flagged like
      // a send cut by a crash, and retried with the backoff; the rest of the chain waits behind
      // it. A row that throws every time is dead at the last attempt, as a failing send is,
      // and no longer holds the person's later replies (staff see it, and may send it again).
      log::error("outbox_deliver_failed", {{"id", id}, {"what", failure}});
      outcome_write w;
      w.error = "uncertain: the send failed inside the server: " + failure.substr(0, 200);
      if (attempts >= cfg_.outbox.max_attempts) {
        w.what = outcome_write::kind::dead;
        w.at_ms = now_ms();
      } else {
        w.what = outcome_write::kind::retry;
        w.next_ms = now_ms() + backoff(std::max(attempts, 1)).count();
      }
      const bool recorded = co_await record_outcome(id, channel, w);
      // The chain goes on behind a dead letter, as after any; behind a retry it waits.
      done = recorded && w.what == outcome_write::kind::dead;
      // Staff see it at once, as any dead letter (an open transcript showed "sending").
      if (done && message_id && hub_.has_subscribers("staff"))
        hub_.publish({"staff", conversation_ops::message_status_event(conversation_id, *message_id, "dead", w.error)});
    }
    if (done) continue;
    for (std::size_t k = i + 1; k < rows.size(); ++k) {
      --unpaced_[rows[k].row.channel];  // never paced
      --held_[rows[k].row.channel];     // released below
    }
    // This row waits for a retry: the recipient's later rows must not overtake it.
    co_await release_rows(std::vector<outbox_send>(std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(i) + 1),
                                                   std::make_move_iterator(rows.end())));
    backlog_changed();  // the released rows are pending behind the one to retry
    break;
  }
}

void outbox_worker::stop(std::function<void()> done) {
  net::post(strand_, [this, done = std::move(done)]() mutable {
    stopping_ = true;
    on_stopped_ = std::move(done);
    timer_.cancel();
    for (auto& w : record_waits_) w->cancel();
    if (loop_done_ && in_flight_ == 0 && on_stopped_) std::exchange(on_stopped_, nullptr)();
  });
}

net::awaitable<void> outbox_worker::acquire_send_slot() {
  if (sends_in_flight_ < max_in_flight) {
    ++sends_in_flight_;
    co_return;
  }
  auto turn = std::make_shared<net::steady_timer>(strand_, net::steady_timer::time_point::max());
  slot_waiters_.push_back(turn);
  co_await turn->async_wait(use_tuple);  // woken by release_send_slot, which hands its slot over
}

void outbox_worker::release_send_slot() {
  if (slot_waiters_.empty()) {
    --sends_in_flight_;
    return;
  }
  auto next = std::move(slot_waiters_.front());
  slot_waiters_.pop_front();
  next->cancel();
}

void outbox_worker::finished_one() {
  --in_flight_;
  if (stopping_) {
    if (loop_done_ && in_flight_ == 0 && on_stopped_) std::exchange(on_stopped_, nullptr)();
  } else if (pending_left_ && clock::now() >= claim_quiet_until_) {
    woken_ = true;  // a recipient's next message may now be due
    timer_.cancel();
  }
}

std::chrono::milliseconds outbox_worker::backoff(int attempts) const {
  // Exponential with "full jitter" (AWS architecture blog): uniform in [base/2, base * 2^(n-1)].
  static thread_local std::mt19937 rng{std::random_device{}()};
  auto cap = cfg_.outbox.max_backoff.count();
  long long exp = cfg_.outbox.base_backoff.count() << std::min(attempts - 1, 20);
  exp = std::min<long long>(exp, cap);
  std::uniform_int_distribution<long long> d(std::max<long long>(1, exp / 2), std::max<long long>(1, exp));
  return std::chrono::milliseconds(d(rng));
}

channels::provider_request outbox_worker::render(const storage::outbox_row& row) const {
  return render(outbox_send{row, std::nullopt});
}

channels::provider_request outbox_worker::render(const outbox_send& s) const {
  const auto& row = s.row;
  auto kind = channels::kind_from_string(row.channel).value_or(channels::kind::webchat);
  channels::outgoing parsed;
  if (!s.out) parsed = outgoing_from_json(nlohmann::json::parse(row.payload, nullptr, false), kind, row.recipient);
  const channels::outgoing& o = s.out ? *s.out : parsed;
  switch (kind) {
    case channels::kind::whatsapp: return channels::whatsapp::render(o, providers_->whatsapp);
    case channels::kind::telegram: return channels::telegram::render(o, providers_->telegram);
    case channels::kind::sms: return channels::sms::render(o, providers_->sms);
    case channels::kind::webchat: break;
  }
  return {};
}

channels::send_result outbox_worker::interpret(const std::string& channel, const channels::http_response& r) const {
  if (r.status == 0) {
    channels::send_result s;
    s.outcome = channels::send_outcome::retry;
    // No answer after the whole request left (a timeout, a connection dropped while we waited):
    // the provider may have sent the message. It is sent again, flagged like a send cut by a
    // crash (docs/outbox.md, "The guarantee").
    s.error = (r.request_sent ? "uncertain: no answer after the request was sent: " : "network: ") + r.ec.message();
    return s;
  }
  channels::send_result s = channel == "whatsapp"   ? channels::whatsapp::interpret(r.status, r.body, r.retry_after)
                             : channel == "telegram" ? channels::telegram::interpret(r.status, r.body, r.retry_after)
                                                     : channels::sms::interpret(providers_->sms.outbound, r.status, r.body, r.retry_after);
  // A 502 or 504 that is not the provider's own JSON error comes from a gateway in front of it
  // (an HTML page, or nothing) that passed the request on and got no usable answer back: as
  // ambiguous as a timeout, so flagged the same way.
  if ((r.status == 502 || r.status == 504) && s.outcome == channels::send_outcome::retry) {
    auto first = r.body.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || r.body[first] != '{')
      s.error = "uncertain: gateway error after the request was sent: " + s.error;
  }
  return s;
}

namespace {
/// An answerCallbackQuery row (it stops the spinner on a Telegram button; not a chat message).
bool is_callback_answer(const outbox_send& s) {
  if (s.row.channel != "telegram") return false;
  if (s.out) return !s.out->callback_query_id.empty();
  auto j = nlohmann::json::parse(s.row.payload, nullptr, false);
  return j.is_object() && j.contains("callback_query_id") && j["callback_query_id"].is_string() &&
         !j["callback_query_id"].get_ref<const std::string&>().empty();
}

/// A WhatsApp read receipt (the person's ticks turn blue): worth a second try, not minutes of
/// retries in front of the person's next replies.
bool is_read_receipt(const outbox_send& s) {
  if (s.row.channel != "whatsapp") return false;
  if (s.out) return !s.out->mark_read_id.empty();
  return s.row.payload.find("\"mark_read_id\"") != std::string::npos;
}

/// Attempts at a Telegram button's answer before it is given up (see deliver()).
constexpr int callback_answer_attempts = 2;

/// How many of its channel's tokens a send takes: an SMS one per segment (Twilio and the
/// carriers count segments, and an Arabic reply of 400 characters is 6), anything else one.
double send_cost(const outbox_send& s) {
  if (s.row.channel != "sms") return 1;
  channels::outgoing parsed;
  if (!s.out) parsed = outgoing_from_json(nlohmann::json::parse(s.row.payload, nullptr, false), channels::kind::sms, s.row.recipient);
  const auto& o = s.out ? *s.out : parsed;
  return static_cast<double>(std::max<std::size_t>(1, channels::sms::segments(channels::sms::body_text(o))));
}
}  // namespace

net::awaitable<bool> outbox_worker::pace(const storage::outbox_row& row, bool chat_message, double cost) {
  if (stopping_) co_return false;  // a chain's next row after stop(): not sent, no token taken
  auto it = limits_->channels.find(row.channel);
  clock::duration wait = it == limits_->channels.end() ? clock::duration::zero() : it->second.take(cost);
  const clock::duration holds_before = it == limits_->channels.end() ? clock::duration::zero() : it->second.holds_total;
  if (row.channel == "telegram" && chat_message) {
    auto& next = limits_->telegram_chats[row.recipient];
    auto now = clock::now();
    auto gap = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / cfg_.outbox.telegram_per_chat_rate));
    auto at = std::max(now + wait, next);
    next = at + gap;
    wait = at - now;
    if (limits_->telegram_chats.size() > 10000) limits_->telegram_chats.clear();  // bound the map
  }
  if (wait > clock::duration::zero()) {
    // Cut short by stop(): a send waiting for its turn (SMS go one a second) must not hold a
    // shutdown past the server's grace; its row goes back to pending, not tried.
    auto t = std::make_shared<net::steady_timer>(strand_, wait);
    record_waits_.insert(t);  // stop() cancels it; stop() runs on this strand, so it cannot come
                              // between the check on entry and this wait
    co_await t->async_wait(use_tuple);
    record_waits_.erase(t);
  }
  // The provider asked the channel to slow down while this send waited: its turn moves back by
  // as much (a button's answer is not held: Telegram takes it only for a few seconds).
  for (auto seen = holds_before; chat_message && !stopping_ && it != limits_->channels.end() && it->second.holds_total > seen;) {
    auto extra = it->second.holds_total - seen;
    seen = it->second.holds_total;
    auto t = std::make_shared<net::steady_timer>(strand_, extra);
    record_waits_.insert(t);
    co_await t->async_wait(use_tuple);
    record_waits_.erase(t);
  }
  co_return !stopping_;
}

net::awaitable<channels::send_result> outbox_worker::send_row(const outbox_send& s) const {
  const auto& row = s.row;
  auto req = render(s);
  if (req.url.empty()) {
    channels::send_result r;
    r.outcome = channels::send_outcome::rejected;
    r.error = "channel not configured";
    co_return r;
  }
  auto resp = co_await client_->send(req, cfg_.outbox.send_timeout);
  co_return interpret(row.channel, resp);
}

net::awaitable<void> outbox_worker::loop() {
  // Rows a crash left `sending` were made pending by app::recover_outbox, before the server took
  // its first request (after, it would reset a reply claimed by a fresh webhook, which its
  // chain and this loop would then both send).
  while (!stopping_) {
    bool crashed = false;
    try {
      woken_ = false;
      int room = max_in_flight - in_flight_.load();
      std::vector<storage::outbox_row> rows;
      std::optional<std::int64_t> next_due;
      bool failed = false;
      // Nothing pending means nothing to claim: a finished send or an idle timer then costs no
      // write job. Rows become pending only through wake() (a reply queued behind another, a
      // staff retry) or this worker's own retries, which all call backlog_changed().
      if (!release_held_.empty()) {
        auto held = std::exchange(release_held_, {});
        auto r = co_await db_write<int>(db_, storage::rerun::safe, [&held](storage::connection& c) -> storage::result<int> {
          int n = 0;
          for (const auto& channel : held) {
            auto made = storage::outbox_release_held(c, channel);
            if (!made) return made.error();
            n += *made;
          }
          return n;
        });
        if (!r) {
          log::error("outbox_release_held_failed", {{"error", r.error().message()}});
          release_held_.merge(held);
          failed = true;
        }
      }
      // A channel with more than two seconds of sends already waiting for its rate limit (SMS
      // go one a second) is not claimed now: its rows would wait in memory, `sending`, and take
      // the room other channels' replies need. It is looked at again within a second.
      // Never left out for long, though: rows waiting in the database (retries, replies queued
      // behind another) get a claim every 5 s at least, even while replies taking the fast path
      // keep the bucket saturated.
      std::string skip;
      const auto round_at = clock::now();
      for (const auto& [name, bucket] : limits_->channels) {
        if (!bucket.saturated(2.0, std::max(0, unpaced_[name]))) {
          skipped_since_.erase(name);
          continue;
        }
        auto [since, fresh] = skipped_since_.try_emplace(name, round_at);
        // (Only while fewer than a claim's worth of its rows are held in memory, waiting for
        // their pace or their send: else every 5 s would add 64 more, and they would take the
        // room of every channel.)
        if (!fresh && round_at - since->second > std::chrono::seconds(5) && held_[name] < claim_batch) {
          since->second = round_at;
          continue;
        }
        skip += "," + name;
      }
      if (!skip.empty()) skip += ",";
      if (room > 0 && pending_left_) {
        const auto changes = backlog_changes_;
        auto claimed = co_await db_write<claim_result>(
            db_, storage::rerun::safe, [n = std::min(room, claim_batch), &skip](storage::connection& c) -> storage::result<claim_result> {
              claim_result out;
              auto r = storage::outbox_claim(c, now_ms(), n, skip);
              if (!r) return r.error();
              out.rows = std::move(*r);
              auto b = storage::outbox_backlog_of(c, skip);
              if (!b) return b.error();
              out.backlog = *b;
              return out;
            });
        // (n is an int: trivially destructible captures only.)
        if (claimed) {
          rows = std::move(claimed->rows);
          // Nothing to claim but rows left out: a finished send does not claim again at once
          // (each claim is a write); the timer below looks again within a second.
          if (rows.empty() && !skip.empty()) claim_quiet_until_ = clock::now() + std::chrono::seconds(1);
          next_due = claimed->backlog.next_due_ms;
          // A change reported while the claim ran may not be in what it saw: look again.
          pending_left_ = claimed->backlog.any_pending || backlog_changes_ != changes;
        } else {
          log::error("outbox_claim_failed", {{"error", claimed.error().message()}});
          failed = true;
        }
      }
      for (auto& row : rows) {
        std::vector<outbox_send> chain(1);
        chain[0].row = std::move(row);
        spawn_chain(std::move(chain));
      }
      if (static_cast<int>(rows.size()) == claim_batch && in_flight_ < max_in_flight) continue;  // more may be due
      if (woken_ || stopping_) continue;
      // Sleep until the next retry is due, or until woken; a minute at most, after which the
      // worker looks at the outbox whatever it believes (a safety net, not a schedule).
      auto wait = std::chrono::milliseconds(60000);
      if (pending_left_ && next_due) wait = std::chrono::milliseconds(std::clamp<std::int64_t>(*next_due - now_ms(), 1, 60000));
      if (failed || (!skip.empty() && pending_left_)) wait = std::min(wait, std::chrono::milliseconds(1000));
      timer_.expires_after(wait);
      auto [ec] = co_await timer_.async_wait(use_tuple);
      if (!ec) pending_left_ = true;
    } catch (const std::exception& e) {
      // Claiming must go on whatever one round threw (memory, a bug): a loop that ended would
      // leave every pending reply where it is, and a shutdown waiting for it.
      log::error("outbox_loop_failed", {{"what", e.what()}});
      crashed = true;
    }
    if (crashed && !stopping_) {
      timer_.expires_after(std::chrono::seconds(1));
      co_await timer_.async_wait(use_tuple);
      pending_left_ = true;
    }
  }
  loop_done_ = true;
  if (in_flight_ == 0 && on_stopped_) std::exchange(on_stopped_, nullptr)();
}

net::awaitable<storage::result<int>> outbox_worker::record_sent(std::int64_t id, std::string channel,
                                                                std::string provider_message_id, std::int64_t at_s) {
  // Runs on strand_ (deliver's executor): sent_marks_ and flushing_sent_ need no lock.
  return net::async_initiate<decltype(net::use_awaitable), void(storage::result<int>)>(
      [this](auto handler, std::int64_t id, std::string channel, std::string provider_message_id, std::int64_t at_s) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        sent_marks_.push_back({id, std::move(channel), std::move(provider_message_id), at_s, [h](boost::system::error_code ec) {
                                 auto ex = net::get_associated_executor(*h);
                                 net::dispatch(ex, [h, ec]() mutable {
                                   if (ec) (*h)(storage::result<int>(boost::system::in_place_error, ec));
                                   else (*h)(storage::result<int>(0));
                                 });
                               }});
        if (!flushing_sent_) flush_sent();
      },
      net::use_awaitable, id, std::move(channel), std::move(provider_message_id), at_s);
}

void outbox_worker::flush_sent() {
  flushing_sent_ = true;
  struct early {
    std::size_t mark;  // index in marks
    early_receipts::receipt receipt;
    std::vector<storage::delivery_change> changes;
  };
  struct batch {
    std::vector<sent_mark> marks;
    std::vector<boost::system::error_code> results;
    std::vector<early> applied;  // receipts that came before their mark, applied with it
  };
  auto b = std::make_shared<batch>();
  b->marks = std::exchange(sent_marks_, {});
  b->results.resize(b->marks.size());
  // One job: a mark that fails (say, its row was purged) does not fail the others. It assigns
  // every result, and rebuilds `applied`, on each run, so it may run twice (storage::rerun::safe).
  db_.submit_write(
      [b, &receipts = receipts_](storage::connection& c) -> boost::system::error_code {
        b->applied.clear();
        for (std::size_t i = 0; i < b->marks.size(); ++i) {
          const auto& m = b->marks[i];
          b->results[i] = storage::outbox_mark_sent(c, m.id, m.provider_message_id, m.at);
          if (b->results[i] || receipts.empty() || m.provider_message_id.empty()) continue;
          auto r = receipts.find(m.channel, m.provider_message_id);
          if (!r) continue;
          auto changed = storage::outbox_delivery_status(c, m.channel, m.provider_message_id, r->status, r->error);
          // Its failure must not undo the marks: the receipt stays kept, the send recorded.
          if (!changed) {
            log::error("early_receipt_failed", {{"id", m.id}, {"error", changed.error().message()}});
            continue;
          }
          // What a failure means beyond the row (a closed window, an opt-out) follows it too.
          if (r->status == "failed")
            if (auto ec = conversation_ops::after_failure(c, m.channel, r->error, *changed, m.at))
              log::error("early_receipt_failed", {{"id", m.id}, {"error", ec.message()}});
          b->applied.push_back({i, std::move(*r), std::move(*changed)});
        }
        return {};
      },
      [this, b](boost::system::error_code ec) {
        net::post(strand_, [this, b, ec] {
          if (!ec)
            for (const auto& e : b->applied) {
              const auto& m = b->marks[e.mark];
              receipts_.forget(m.channel, m.provider_message_id);
              metrics_.count("delivery_receipts_early");
              for (const auto& d : e.changes) {
                if (e.receipt.status == "failed") {
                  metrics_.count("delivery_failed");
                  log::warn("delivery_failed", {{"channel", m.channel}, {"outbox_id", d.outbox_id}});
                }
                if (!d.message_id || !hub_.has_subscribers("staff")) continue;
                hub_.publish({"staff", conversation_ops::message_status_event(
                                           d.conversation_id, *d.message_id, e.receipt.status,
                                           e.receipt.status == "failed" ? e.receipt.error : "")});
              }
            }
          // Still "flushing" while the waiters resume, so that marks they add wait for the
          // next batch instead of each starting a write of their own.
          for (std::size_t i = 0; i < b->marks.size(); ++i) b->marks[i].done(ec ? ec : b->results[i]);
          flushing_sent_ = false;
          if (!sent_marks_.empty()) flush_sent();
        });
      },
      storage::rerun::safe);
}

net::awaitable<storage::result<int>> outbox_worker::write_outcome(std::int64_t id, const std::string& channel,
                                                                  const outcome_write& w) {
  if (w.what == outcome_write::kind::sent) co_return co_await record_sent(id, channel, w.provider_message_id, w.at_s);
  // Jobs capture by reference (they run before the co_await returns): GCC 12 mishandles
  // non-trivial captures of lambdas that live across a co_await.
  co_return co_await db_write<int>(db_, storage::rerun::safe, [&w, id, &channel](storage::connection& c) -> storage::result<int> {
    auto ec = w.what == outcome_write::kind::retry  ? storage::outbox_retry(c, id, w.next_ms, w.error)
              : w.what == outcome_write::kind::hold ? storage::outbox_hold(c, id, w.next_ms, w.error)
                                                    : storage::outbox_dead(c, id, w.error);
    if (ec) return ec;
    // Twilio refuses to send to someone who opted out with it (a keyword of its own, or STOP
    // before we knew), Telegram to someone who blocked the bot: from now on we know too,
    // whichever gateway sends SMS, and nothing more is tried until they write again.
    // Unless the person wrote after this message was written: they may have unblocked the bot
    // (or texted START) since, and the refusal would be older than what they said. If they
    // blocked it again after writing, the next send is refused and sets the flag then.
    bool wrote_since = false;
    if (!w.opted_out.empty() && w.conversation_id > 0 && w.message_id > 0) {
      auto since = storage::inbound_after(c, w.conversation_id, w.message_id);
      if (!since) return since.error();
      wrote_since = *since;
    }
    if (!w.opted_out.empty() && !wrote_since) {
      if (auto oe = storage::set_opt_out(c, channel, w.opted_out, w.at_ms / 1000)) return oe;
      if (auto oe = storage::outbox_refuse_unsent(c, channel, w.opted_out, conversation_ops::opted_out_reason(channel))) return oe;
    }
    if (w.window_closed) {
      storage::delivery_change d;
      d.outbox_id = id;
      d.conversation_id = w.conversation_id;
      if (w.message_id > 0) d.message_id = w.message_id;
      if (auto oe = conversation_ops::after_failure(c, channel, "131047", {d}, w.at_ms / 1000)) return oe;
    }
    return 0;
  });
}

net::awaitable<bool> outbox_worker::wait_to_rewrite(std::int64_t id, const boost::system::error_code& ec,
                                                    std::chrono::milliseconds& pause) {
  metrics_.count("outbox_record_failed");
  // Stopping: the row stays `sending`, and the next start flags it uncertain and sends it again.
  if (stopping_) {
    log::error("outbox_record_failed", {{"id", id}, {"error", ec.message()}, {"retry", false}});
    co_return false;
  }
  log::error("outbox_record_failed",
             {{"id", id}, {"error", ec.message()}, {"retry_ms", static_cast<std::int64_t>(pause.count())}});
  auto wait = std::make_shared<net::steady_timer>(strand_, pause);
  record_waits_.insert(wait);
  co_await wait->async_wait(use_tuple);  // cut short by stop(), which leaves one last try
  record_waits_.erase(wait);
  pause = std::min(pause * 2, max_rewrite_pause);
  co_return true;
}

net::awaitable<bool> outbox_worker::record_outcome(std::int64_t id, const std::string& channel, const outcome_write& w) {
  auto pause = first_rewrite_pause;
  for (;;) {
    auto recorded = co_await write_outcome(id, channel, w);
    if (recorded) co_return true;
    if (!co_await wait_to_rewrite(id, recorded.error(), pause)) co_return false;
  }
}

std::vector<outbox_worker::channel_fault> outbox_worker::channel_faults() const {
  std::lock_guard lock(faults_mutex_);
  return faults_shown_;
}

void outbox_worker::publish_faults() {
  std::vector<channel_fault> shown;
  for (const auto& [channel, f] : faults_) shown.push_back(f.shown);
  std::lock_guard lock(faults_mutex_);
  faults_shown_ = std::move(shown);
}

void outbox_worker::credentials_abandoned(const std::string& channel) {
  auto it = faults_.find(channel);
  if (it == faults_.end()) return;
  it->second.probing = false;
  it->second.until = clock::now() + it->second.pause;
}

std::optional<std::chrono::milliseconds> outbox_worker::credentials_hold(const std::string& channel) {
  auto it = faults_.find(channel);
  if (it == faults_.end()) return std::nullopt;
  auto& f = it->second;
  const auto now = clock::now();
  if (now < f.until) return std::max(std::chrono::ceil<std::chrono::milliseconds>(f.until - now), std::chrono::milliseconds(1));
  // One send tries the credentials again; the others wait for its answer. Accepted, it makes
  // them due at once (release_held_); refused, it starts a longer pause.
  if (f.probing) return f.pause;
  f.probing = true;
  return std::nullopt;
}

void outbox_worker::credentials_answer(const std::string& channel, bool probe, const channels::send_result& r) {
  const auto first_pause = cfg_.outbox.credentials_pause, max_pause = first_pause * 30;
  auto it = faults_.find(channel);
  if (r.credentials_refused) {
    if (it == faults_.end()) {
      fault_state f;
      f.shown = {channel, now_s(), r.error};
      f.pause = first_pause;
      f.until = clock::now() + f.pause;
      faults_.emplace(channel, std::move(f));
      publish_faults();
      metrics_.count("provider_credentials_refused");
      log::error("provider_credentials_refused", {{"channel", channel}, {"error", r.error}});
      if (hub_.has_subscribers("staff"))
        hub_.publish({"staff", nlohmann::json{{"type", "channel.status"}, {"channel", channel}, {"state", "credentials_refused"},
                                              {"since", now_s()}, {"error", r.error}}.dump()});
    } else if (probe) {
      // Sends already in flight when the fault began answer 401 too: only a probe's refusal
      // lengthens the pause.
      it->second.pause = std::min(it->second.pause * 2, max_pause);
      it->second.until = clock::now() + it->second.pause;
      it->second.probing = false;
    }
    return;
  }
  if (it == faults_.end()) return;
  // Only an accepted send proves the credentials work: a 4xx may come from a proxy in front of
  // the provider, and a timeout or a 5xx says nothing. Else the next probe comes after the pause.
  if (r.outcome != channels::send_outcome::sent) {
    if (probe) {
      it->second.probing = false;
      it->second.until = clock::now() + it->second.pause;
    }
    return;
  }
  const auto since = it->second.shown.since;
  faults_.erase(it);
  publish_faults();
  log::info("provider_credentials_accepted", {{"channel", channel}, {"refused_for_s", now_s() - since}});
  if (hub_.has_subscribers("staff"))
    hub_.publish({"staff", nlohmann::json{{"type", "channel.status"}, {"channel", channel}, {"state", "ok"}}.dump()});
  // The held rows wait for their pause to end: they are due now.
  release_held_.insert(channel);
  backlog_changed();
}

bool outbox_worker::refused_alone(const storage::outbox_row& row, clock::time_point now) {
  // Kept half an hour (a pause is at most 15 minutes): a refusal older than that says nothing
  // of one today, which may be the whole account's (a token that expired since).
  constexpr auto keep = std::chrono::minutes(30);
  for (auto it = refused_recipients_.begin(); it != refused_recipients_.end();)
    it = now - it->second > keep ? refused_recipients_.erase(it) : std::next(it);
  if (refused_recipients_.empty()) accepted_began_.clear();
  const auto key = row.channel + "\n" + row.recipient;
  // From the first refusal on: once the channel has carried a send begun after it, every row
  // still refused for this recipient is theirs alone.
  auto [it, first] = refused_recipients_.try_emplace(key, now);
  if (first) return false;
  auto accepted = accepted_began_.find(row.channel);
  return accepted != accepted_began_.end() && accepted->second > it->second;
}

net::awaitable<bool> outbox_worker::deliver(outbox_send s) {
  auto& row = s.row;
  auto started = clock::now();
  channels::send_result result;
  // Refused at the last moment too: a STOP or a block may have come after the row was written
  // (the rest of a chain, a retry, a row released or recovered), and nothing goes to a Telegram
  // group. (A button's acknowledgement is never refused: it answers a press just made.)
  std::string_view refused;
  std::optional<std::chrono::milliseconds> held;  // not tried, or refused our credentials: waits this long
  // Counted as waiting for its channel's bucket until it takes a token (or is not sent).
  struct unpaced_guard {
    std::map<std::string, int>& m;
    const std::string& channel;
    bool armed = true;
    void done() {
      if (armed) --m[channel];
      armed = false;
    }
    ~unpaced_guard() { done(); }
  } unpaced{unpaced_, row.channel};
  co_await follow_readdress(s);  // a number that changed hands since the row was claimed
  // Whether the person said STOP (SMS) or blocked the bot (Telegram) since the row was written.
  const bool opt_out_channel = !conversation_ops::opted_out_reason(row.channel).empty() && !is_callback_answer(s);
  // Reads the flag; refuses the row if it is set, or retries it if the read failed.
  auto check_opt_out = [this, &row, &refused, &result]() -> net::awaitable<void> {
    const std::string& recipient = row.recipient;
    const std::string& channel = row.channel;
    auto out = co_await db_read<bool>(db_, [&recipient, &channel](storage::connection& c) {
      return storage::opted_out(c, channel, recipient);
    });
    if (!out) {
      result.outcome = channels::send_outcome::retry;  // like a send that did not leave
      result.error = "database: the opt-out check failed: " + out.error().message();
    } else if (*out) {
      refused = conversation_ops::opted_out_reason(channel);
    }
  };
  auto checked_at = clock::now();
  if (row.channel == "telegram" && conversation_ops::telegram_group(row.recipient) && !is_callback_answer(s)) {
    refused = conversation_ops::telegram_group_reason;
  } else if (conversation_ops::retired_address(row.recipient)) {
    refused = conversation_ops::number_reassigned_reason;
  } else if (opt_out_channel) {
    co_await check_opt_out();
    checked_at = clock::now();
  }
  if (!refused.empty()) {
    result.outcome = channels::send_outcome::rejected;
    result.error = std::string(refused);
  } else if (!result.error.empty()) {
    // the check itself failed: retried like a send that did not leave
  } else if (row.channel == "webchat") {
    // The visitor's page got the message live at commit time (event hub) and reloads the
    // history from the transcript on reconnect: nothing to send to a provider.
    result.outcome = channels::send_outcome::sent;
  } else if (auto wait = credentials_hold(row.channel)) {
    held = *wait;
  } else {
    bool probe = faults_.count(row.channel) > 0;
    // A probe that ends without an answer (stopped while paced, refused at the last moment, or
    // anything thrown before or during the send) must not leave the channel held for good: the
    // next due row tries again after the pause.
    struct probe_guard {
      outbox_worker* w;
      const std::string& channel;  // row.channel: never reassigned
      bool armed;
      ~probe_guard() {
        if (armed) w->credentials_abandoned(channel);
      }
    } guard{this, row.channel, probe};
    unpaced.done();  // pace() takes its token before it first suspends: no gap the loop could see
    if (!co_await pace(row, !is_callback_answer(s), send_cost(s))) {
      co_await release_row(row.id);
      co_return false;  // stopping: the rest of the chain goes back to pending too
    }
    // A slot only around the request itself: a send waiting for its rate limit holds no socket
    // and must not keep another channel's reply waiting.
    co_await acquire_send_slot();
    struct slot_guard {
      outbox_worker* w;
      ~slot_guard() { w->release_send_slot(); }  // also if the send throws
    } slot{this};
    // The pacing and the slot may have taken seconds (SMS go one a second): a refusal that
    // came meanwhile holds this row too, unless it is now the probe.
    if (!probe) {
      if (auto wait = credentials_hold(row.channel)) held = *wait;
      else probe = faults_.count(row.channel) > 0;
      guard.armed = probe;
    }
    // ... and so may a number change or a reassignment.
    if (!held) {
      co_await follow_readdress(s);
      if (conversation_ops::retired_address(row.recipient)) {
        refused = conversation_ops::number_reassigned_reason;
        result.outcome = channels::send_outcome::rejected;
        result.error = std::string(refused);  // proves nothing of the credentials: the guard frees the probe
      }
    }
    // ... and so may a STOP: an SMS in a backlog waits its turn for seconds, and a STOP sent
    // meanwhile must hold it (docs/channels.md). Read again when the wait was not instant.
    if (!held && refused.empty() && opt_out_channel && clock::now() - checked_at > std::chrono::milliseconds(50)) {
      co_await check_opt_out();
      if (!refused.empty()) {
        result.outcome = channels::send_outcome::rejected;
        result.error = std::string(refused);
      }
    }
    if (!held && refused.empty() && result.error.empty()) {
      // `s` lives in this frame until the spawned send completes.
      const auto began = clock::now();
      result = co_await net::co_spawn(ioc_, send_row(s), net::use_awaitable);
      guard.armed = false;
      if (result.outcome == channels::send_outcome::sent && !refused_recipients_.empty()) {
        auto& latest = accepted_began_[row.channel];
        latest = std::max(latest, began);
      }
      if (result.credentials_refused && refused_alone(row, clock::now())) {
        // The provider refuses this recipient as it would the whole account (an error code
        // that holds the channel), but the channel has carried other sends since: the refusal
        // is theirs, not the channel's. Dead, with the provider's reason for staff; the channel
        // is not held again for it (it would be after every probe, for as long as the row waits).
        result.credentials_refused = false;
        result.outcome = channels::send_outcome::rejected;
        log::warn("outbox_refused_alone", {{"id", row.id}, {"channel", row.channel}, {"error", result.error}});
      }
      credentials_answer(row.channel, probe, result);
      if (result.credentials_refused) {
        held = faults_.at(row.channel).pause;
        // A refused probe waits a second longer than the rows it held, so that the next probe
        // is another recipient's: one whose refusal is theirs alone must not be the only probe.
        if (probe) *held += std::chrono::seconds(1);
      }
    }
  }
  std::string outcome;
  auto ms = now_ms();
  outcome_write w;
  if (held) {
    // The channel, not this message, is at fault: no attempt is spent and nothing is dead.
    outcome = "held";
    w.what = outcome_write::kind::hold;
    w.next_ms = ms + held->count();
    w.error = std::string(storage::held_credentials_prefix) + faults_.at(row.channel).shown.error;
  } else switch (result.outcome) {
    case channels::send_outcome::sent:
      outcome = "sent";
      w.provider_message_id = std::move(result.provider_message_id);
      w.at_s = now_s();
      break;
    case channels::send_outcome::retry:
    case channels::send_outcome::rate_limited: {
      bool limited = result.outcome == channels::send_outcome::rate_limited;
      // 429s are the provider asking us to slow down, not a failure of this message: they get
      // three times the attempts before the row is dead-lettered.
      int limit = limited ? cfg_.outbox.max_attempts * 3 : cfg_.outbox.max_attempts;
      // A button's answer (answerCallbackQuery) only stops the spinner, and Telegram takes it
      // only for a few seconds after the press: tried twice, not for minutes.
      if (is_callback_answer(s) || is_read_receipt(s)) limit = std::min(limit, callback_answer_attempts);
      if (row.attempts >= limit) {
        outcome = "dead";
        w.what = outcome_write::kind::dead;
      } else {
        outcome = limited ? "rate_limited" : "retry";
        // Slowed down with a time to wait: that time. Without one: a second plus the backoff,
        // with its jitter (a burst of rows must not come back in lockstep, as a floor of a
        // second over the first backoffs would make them).
        auto delay = backoff(row.attempts);
        if (limited) delay = result.retry_after.count() > 0 ? result.retry_after : std::chrono::milliseconds(1000) + delay;
        w.what = outcome_write::kind::retry;
        w.next_ms = ms + delay.count();
        // A limit on the channel (WhatsApp's throughput or the app's, the SMS account's), not
        // on this one recipient (WhatsApp's pair limit, 131056): the other recipients' sends
        // wait too, at most 10 s here, rather than each meeting a 429 of its own until it is
        // dead. Telegram's 429 may be one chat's (a message a second): that chat's next turn
        // moves back, not every chat's.
        const double hold = std::min(10.0, std::chrono::duration<double>(delay).count());
        if (limited && !is_callback_answer(s) && row.channel == "telegram") {
          auto& next = limits_->telegram_chats[row.recipient];
          next = std::max(next, clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(hold)));
        } else if (limited && !is_callback_answer(s) &&
                   !(row.channel == "whatsapp" && result.error.find("code 131056") != std::string::npos)) {
          if (auto b = limits_->channels.find(row.channel); b != limits_->channels.end()) b->second.slow_down(hold);
        }
      }
      w.error = result.error;
      break;
    }
    case channels::send_outcome::rejected:
      outcome = "dead";
      if (result.outside_window) result.error = "outside_24h_window: " + result.error;
      w.what = outcome_write::kind::dead;
      w.error = result.error;
      w.at_ms = ms;
      if (result.outside_window && row.conversation_id) {
        // Meta's window had closed where ours was open (a number changed, a clock): closed
        // here too, as when the refusal comes later as a status, so that staff are offered
        // the template and the next notices go as one instead of failing alike.
        w.window_closed = true;
        w.conversation_id = *row.conversation_id;
        w.message_id = row.message_id.value_or(0);
      }
      if ((row.channel == "sms" && result.error.find("code 21610") != std::string::npos) ||
          (row.channel == "telegram" && result.recipient_blocked && !is_callback_answer(s))) {
        w.opted_out = row.recipient;
        w.conversation_id = row.conversation_id.value_or(0);
        w.message_id = row.message_id.value_or(0);
      }
      break;
  }
  // Accepted (or refused, retried, dead) for its own sake: a later refusal of this recipient
  // starts afresh.
  if (!held && !refused_recipients_.empty() && result.outcome == channels::send_outcome::sent)
    refused_recipients_.erase(row.channel + "\n" + row.recipient);
  // Not recorded (only when stopping): the row stays `sending`, to be flagged and sent again at
  // the next start. The recipient's next rows must not go now: they would be sent again too.
  const bool recorded = co_await record_outcome(row.id, row.channel, w);
  // Pending again, due at next_ms: the loop must set its timer by it.
  if (w.what == outcome_write::kind::retry || w.what == outcome_write::kind::hold) backlog_changed();
  metrics_.count("outbox_" + outcome);
  log::info("outbox_send", {{"id", row.id},
                            {"channel", row.channel},
                            {"outcome", outcome},
                            {"attempt", static_cast<std::int64_t>(row.attempts)},
                            {"ms", std::chrono::duration<double, std::milli>(clock::now() - started).count()}});
  // Built only for a console that is listening: most sends have nobody to tell.
  if (row.message_id && (outcome == "sent" || outcome == "dead") && hub_.has_subscribers("staff")) {
    hub_.publish({"staff", conversation_ops::message_status_event(row.conversation_id, *row.message_id, outcome,
                                                                  outcome == "dead" ? result.error : "")});
  }
  co_return recorded && (outcome == "sent" || outcome == "dead");
}

}  // namespace aoun::bot

#include "bot/app.hpp"

#include <algorithm>
#include <filesystem>
#include <future>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bot/db.hpp"
#include "bot/http_error.hpp"
#include "bot/log.hpp"
#include "bot/password.hpp"
#include "storage/conversations.hpp"
#include "storage/staff.hpp"

namespace aoun::bot {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<const dialogs::engine> app::load_engine(const config& cfg) {
  dialogs::settings st;
  st.association_name = cfg.association_name;
  st.association_name_en = cfg.association_name_en;
  st.emergency_numbers = cfg.emergency_numbers;
  st.phone = cfg.phone;
  st.email = cfg.email;
  st.website = cfg.website;
  st.address = cfg.address;
  st.danger_words = cfg.danger_words;
  st.idle_timeout_seconds = cfg.idle_timeout_seconds;
  st.retention_days = cfg.retention_days;
  auto hhmm = [](int m) {
    char b[16];
    std::snprintf(b, sizeof b, "%02d:%02d", m / 60, m % 60);
    return std::string(b);
  };
  static const char* days_ar[] = {"الأحد", "الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت"};
  static const char* days_en[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  if (!cfg.work_days.empty()) {
    int d0 = cfg.work_days.front(), d1 = cfg.work_days.back();
    st.working_hours = std::string(days_ar[d0]) + "–" + days_ar[d1] + " " + hhmm(cfg.work_start_minute) + "–" +
                       hhmm(cfg.work_end_minute);
    st.working_hours_en = std::string(days_en[d0]) + "–" + days_en[d1] + " " + hhmm(cfg.work_start_minute) + "–" +
                          hhmm(cfg.work_end_minute);
  }
  return std::make_shared<const dialogs::engine>(
      dialogs::engine::load(cfg.source_dir + "/dialogs", cfg.source_dir + "/locales", st));
}

app::app(config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.db_path != ":memory:") {
    auto parent = std::filesystem::path(cfg_.db_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) throw config_error("AOUN_DB: cannot create folder '" + parent.string() + "': " + ec.message());
  }
  lock_ = std::make_unique<instance_lock>(cfg_.db_path);  // before anything is read or written
  storage::options so;
  so.path = cfg_.db_path;
  auto db = storage::database::open(so);
  if (!db) throw config_error("AOUN_DB: cannot open '" + cfg_.db_path + "': " + db.error().message());
  db_ = std::move(*db);
  bootstrap_admin();
  webchat_key_ = server_key("webchat_session");
  ops_ = std::make_unique<conversation_ops>(cfg_, load_engine(cfg_));
  outbox_ = std::make_unique<outbox_worker>(ioc_, *db_, cfg_, hub_, metrics_, ops_->receipts());
  media_ = std::make_unique<media_downloader>(ioc_.get_executor(), cfg_);
  archive_ = std::make_unique<media_archive>(ioc_, *db_, *media_, metrics_, cfg_);
  metrics_.count("retention_erased", 0);  // listed from the start, not from the first erasure
  metrics_.count("erasures_requested", 0);
  metrics_.count("delivery_failed", 0);
  metrics_.count("delivery_receipts_early", 0);
  services_ = std::unique_ptr<services>(
      new services{cfg_, *db_, *ops_, hub_, *outbox_, metrics_, stopping_, *media_, archive_.get()});
  build_routes();
}

app::~app() {
  if (db_) db_->close();
}

void app::bootstrap_admin() {
  // Runs before the server starts: a direct, synchronous job on the writer is fine here.
  std::string generated;
  std::string user = cfg_.admin_user.empty() ? "admin" : cfg_.admin_user;
  std::string pw = cfg_.secret.admin_password;
  if (pw.empty()) pw = generated = password::random_token(12);
  auto hashed = password::hash(pw);
  bool created = false;
  auto ec = write_now(*db_,
      [&](storage::connection& c) -> boost::system::error_code {
        auto n = storage::count_staff(c);
        if (!n) return n.error();
        if (*n > 0) return {};
        storage::staff_row s;
        s.username = user;
        s.display_name = user;
        s.role = "admin";
        s.password_hash = hashed;
        s.created_at = unix_now();
        auto id = storage::insert_staff(c, s);
        if (!id) return id.error();
        created = true;
        return storage::audit(c, std::nullopt, "staff.bootstrap", "staff:" + std::to_string(*id), "{}", s.created_at);
      });
  if (ec) throw config_error("AOUN_DB: cannot create the first admin: " + ec.message());
  if (created) {
    log::info("bootstrap_admin_created", {{"username", user}});
    if (!generated.empty())
      std::cout << "First start: created admin account '" << user << "' with password: " << generated
                << "\n(shown once; sign in at /console/ and change it, or set AOUN_ADMIN_USER/AOUN_ADMIN_PASSWORD)"
                << std::endl;
  }
}

void app::recover_outbox() {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (auto pause = std::chrono::milliseconds(100);; pause = std::min(pause * 2, std::chrono::milliseconds(5000))) {
    int recovered = 0;
    auto ec = write_now(*db_, [&](storage::connection& c) -> boost::system::error_code {
      auto r = storage::outbox_recover(c);
      if (!r) return r.error();
      recovered = *r;
      return {};
    });
    if (!ec) {
      if (recovered > 0) log::warn("outbox_recovered_uncertain", {{"rows", static_cast<std::int64_t>(recovered)}});
      return;
    }
    // A reply left `sending` would block its recipient for the life of the process (one send
    // at a time): better not to start than to start so.
    if (std::chrono::steady_clock::now() + pause > give_up)
      throw config_error("AOUN_DB: cannot recover the outbox's unfinished sends: " + ec.message());
    log::error("outbox_recover_failed", {{"error", ec.message()}, {"retry_ms", static_cast<std::int64_t>(pause.count())}});
    std::this_thread::sleep_for(pause);
  }
}

std::string app::server_key(const char* name) {
  // Before the server starts, like bootstrap_admin.
  std::string fresh = password::random_token(32), key;
  auto ec = write_now(*db_, [&](storage::connection& c) -> boost::system::error_code {
    auto k = storage::server_key(c, name, fresh, unix_now());
    if (!k) return k.error();
    key = std::move(*k);
    return {};
  });
  if (ec || key.size() < 32)
    throw config_error(std::string("AOUN_DB: cannot read or create the server key '") + name + "'" +
                       (ec ? ": " + ec.message() : std::string()));
  return key;
}

void app::build_routes() {
  routes_.add(http::verb::get, "/healthz", [this](request_context& c) { return healthz(c); });
  routes_.add(http::verb::get, "/metrics", [this](request_context& c) { return render_metrics(c); });
  add_webhook_routes(routes_, *services_);
  add_webchat_routes(routes_, *services_, webchat_key_);
  add_static_routes(routes_, *services_);
  add_staff_routes(routes_, *services_);
}

net::awaitable<response> app::healthz(request_context& ctx) {
  // A read of the file itself ("SELECT 1" would need neither the file nor a lock).
  auto r = co_await db_read<int>(*db_, [](storage::connection& c) -> storage::result<int> {
    auto q = c.prepare("SELECT count(*) FROM sqlite_schema");
    if (!q) return q.error();
    auto row = q->step();
    if (!row) return row.error();
    return *row ? 1 : 0;
  });
  bool readable = r && *r == 1;
  // Reads can work while every write fails (a full disk, a lock another process holds): then
  // every webhook is answered 503 and retried, and a monitor must hear of it. When the last
  // batches wrote nothing, one small write tells whether writing works again.
  bool writable = true;
  if (db_->snapshot().failing_batches_in_a_row > 0) {
    const auto now = unix_now();
    auto w = co_await db_write<int>(*db_, [now](storage::connection& c) -> storage::result<int> {
      auto q = c.prepare(
          "INSERT INTO counters(name, value) VALUES ('health_write_probe', ?1) "
          "ON CONFLICT(name) DO UPDATE SET value = excluded.value");
      if (!q) return q.error();
      if (auto ec = q->bind(1, now).exec()) return ec;
      return 1;
    });
    writable = w.has_value();
  }
  bool ok = readable && writable;
  // A channel whose provider refuses our credentials holds its replies: "degraded", but still
  // 200, since webhooks are taken and stored (a load balancer must not drop the server for it).
  nlohmann::json faults = nlohmann::json::array();
  if (outbox_)
    for (const auto& f : outbox_->channel_faults())
      faults.push_back({{"channel", f.channel}, {"state", "credentials_refused"}});  // details: staff API only
  nlohmann::json j{{"status", ok && faults.empty() ? "ok" : "degraded"},
                   {"version", AOUN_VERSION},
                   {"database", {{"reachable", readable}, {"writable", writable}, {"schema_version", db_->schema_version()}}},
                   {"channel_faults", faults}};
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), j.dump(),
                          ok ? http::status::ok : http::status::service_unavailable);
}

net::awaitable<response> app::render_metrics(request_context& ctx) {
  std::string body = metrics_.render();
  auto s = db_->snapshot();
  // One sample per family; help is optional (the counters whose name says it all have none).
  auto family = [&body](std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    if (!help.empty()) body.append("# HELP ").append(name).append(" ").append(help).append("\n");
    body.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    body.append(name).append(" ").append(std::to_string(value)).append("\n");
  };
  {
    auto faults = outbox_ ? outbox_->channel_faults() : std::vector<outbox_worker::channel_fault>{};
    body.append("# HELP aoun_channel_credentials_refused 1 while the channel's provider refuses our token or key (replies held).\n"
                "# TYPE aoun_channel_credentials_refused gauge\n");
    for (const char* ch : {"whatsapp", "telegram", "sms"}) {
      bool down = std::any_of(faults.begin(), faults.end(), [&](const auto& f) { return f.channel == ch; });
      body.append("aoun_channel_credentials_refused{channel=\"").append(ch).append("\"} ").append(down ? "1" : "0").append("\n");
    }
  }
  family("aoun_db_commits_total", "counter", "Write transactions committed by the group-commit writer.", s.commits);
  family("aoun_db_jobs_total", "counter", "", s.jobs);
  family("aoun_db_failed_jobs_total", "counter", "", s.failed_jobs);
  family("aoun_db_failing_batches_in_a_row", "gauge", "batches in a row that wrote nothing (0 once one does)",
         s.failing_batches_in_a_row);
  family("aoun_db_batch_reruns_total", "counter",
         "Batches run again with a savepoint per job because one job failed without.", s.reruns);
  family("aoun_db_checkpoints_total", "counter", "WAL checkpoints run by the checkpointer thread.", s.checkpoints);
  family("aoun_db_writer_checkpoints_total", "counter",
         "Short checkpoints the writer ran so that the WAL starts over.", s.writer_checkpoints);
  family("aoun_db_checkpoint_errors_total", "counter", "", s.checkpoint_errors);
  family("aoun_db_wal_resets_total", "counter",
         "Writer checkpoints that found every frame copied, so the WAL could start over.", s.wal_resets);
  family("aoun_db_wal_frames", "gauge", "Frames in the WAL after the last commit.", s.wal_frames);
  body += "# HELP aoun_db_commit_seconds Time of one group commit (BEGIN to durable COMMIT).\n"
          "# TYPE aoun_db_commit_seconds histogram\n";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < std::size(storage::stats::latency_bounds); ++i) {
    cum += s.latency_buckets[i];
    body += "aoun_db_commit_seconds_bucket{le=\"" + std::to_string(storage::stats::latency_bounds[i] / 1e6) +
            "\"} " + std::to_string(cum) + "\n";
  }
  cum += s.latency_buckets[std::size(storage::stats::latency_bounds)];
  body += "aoun_db_commit_seconds_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  body += "aoun_db_commit_seconds_sum " + std::to_string(s.commit_micros_total / 1e6) + "\n";
  body += "aoun_db_commit_seconds_count " + std::to_string(s.commits) + "\n";
  body += "# HELP aoun_db_batch_size Jobs per group commit.\n# TYPE aoun_db_batch_size histogram\n";
  cum = 0;
  for (std::size_t i = 0; i < std::size(storage::stats::batch_bounds); ++i) {
    cum += s.batch_buckets[i];
    body += "aoun_db_batch_size_bucket{le=\"" + std::to_string(storage::stats::batch_bounds[i]) + "\"} " +
            std::to_string(cum) + "\n";
  }
  cum += s.batch_buckets[std::size(storage::stats::batch_bounds)];
  body += "aoun_db_batch_size_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  body += "aoun_db_batch_size_sum " + std::to_string(s.jobs) + "\naoun_db_batch_size_count " +
          std::to_string(s.commits) + "\n";
  body += "# TYPE aoun_log_dropped_total counter\naoun_log_dropped_total " + std::to_string(log::dropped()) + "\n";
  response res{http::status::ok, ctx.req.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.keep_alive(ctx.req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  co_return res;
}

net::awaitable<void> app::housekeeping() {
  // A sweep through the dedupe keys in key order: reads on a reader thread, 5,000 keys a step;
  // the old ones are deleted 500 per write job, so the writer never holds webhooks up for long.
  constexpr int scan_chunk = 5000;
  constexpr std::size_t delete_chunk = 500;
  net::steady_timer timer(co_await net::this_coro::executor);
  while (!stopping_) {
    const std::int64_t now = unix_now();
    std::string channel, id;  // where the next step starts
    std::int64_t pruned = 0;
    bool failed = false;
    while (!stopping_ && !failed) {
      auto scan = co_await db_read<storage::processed_scan>(*db_, [&channel, &id, now](storage::connection& c) {
        return storage::scan_processed(c, channel, id, now, scan_chunk);
      });
      if (!scan) {
        log::error("dedupe_prune_failed", {{"error", scan.error().message()}});
        break;
      }
      for (std::size_t i = 0; i < scan->old.size() && !stopping_; i += delete_chunk) {
        std::vector<std::pair<std::string, std::string>> keys(
            scan->old.begin() + static_cast<std::ptrdiff_t>(i),
            scan->old.begin() + static_cast<std::ptrdiff_t>(std::min(scan->old.size(), i + delete_chunk)));
        auto n = co_await db_write<int>(*db_, storage::rerun::safe,
                                        [&keys](storage::connection& c) { return storage::delete_processed(c, keys); });
        if (!n) {
          log::error("dedupe_prune_failed", {{"error", n.error().message()}});
          failed = true;
          break;
        }
        pruned += *n;
      }
      if (scan->seen < static_cast<std::size_t>(scan_chunk)) break;
      channel = scan->last_channel;
      id = scan->last_id;
    }
    if (pruned > 0) log::info("dedupe_keys_pruned", {{"rows", pruned}});
    {
      // Old numbers people wrote from: once Meta has stopped retrying, not kept.
      const std::int64_t moves_before = unix_now() - storage::address_move_keep_seconds;
      auto moves = co_await db_write<int>(*db_, storage::rerun::safe, [this, moves_before](storage::connection& c) -> storage::result<int> {
        auto n = storage::prune_address_moves(c, moves_before);
        if (!n) return n;
        // On the writer, like every job that records a move: none can come between the two.
        auto left = storage::address_moves_exist(c);
        if (!left) return left.error();
        ops_->set_address_moves_present(*left);
        return n;
      });
      if (!moves)
        log::error("address_moves_prune_failed", {{"error", moves.error().message()}});
      else if (*moves > 0)
        log::info("address_moves_pruned", {{"rows", *moves}});
    }
    co_await retention_sweep();
    timer.expires_after(std::chrono::hours(1));
    co_await timer.async_wait(use_tuple);
  }
}

net::awaitable<void> app::retention_sweep() {
  // The beneficiaries in id order on a reader, 1,000 a step. Each one due is erased in its own
  // write job, which asks again (a message or a takeover may have come since the read) and
  // holds the writer for one beneficiary's rows only.
  constexpr int scan_chunk = 1000;
  const std::int64_t before = unix_now() - std::int64_t{cfg_.retention_days} * 86400;
  const std::string detail = nlohmann::json{{"reason", "retention"}, {"retention_days", cfg_.retention_days}}.dump();
  std::int64_t after = 0, erased_total = 0;
  while (!stopping_) {
    auto scan = co_await db_read<storage::retention_scan>(*db_, [after, before](storage::connection& c) {
      return storage::scan_retention(c, after, before, scan_chunk);
    });
    if (!scan) {
      log::error("retention_sweep_failed", {{"error", scan.error().message()}});
      co_return;
    }
    for (std::int64_t id : scan->due) {
      if (stopping_) co_return;
      const std::int64_t now = unix_now();
      std::string webchat_session;  // a web-chat visitor's open tabs are told, as after "delete my data"
      auto erased = co_await db_write<bool>(
          *db_, storage::rerun::safe,
          [id, before, now, &detail, &webchat_session](storage::connection& c) -> storage::result<bool> {
            auto r = storage::erase_if_retention_due(c, id, before, now);
            if (!r || !*r) return r;
            auto q = c.prepare("SELECT address FROM beneficiaries WHERE id = ? AND channel = 'webchat'");
            if (!q) return storage::result<bool>(boost::system::in_place_error, q.error());
            q->bind(1, id);
            auto row = q->step();
            if (!row) return storage::result<bool>(boost::system::in_place_error, row.error());
            webchat_session = *row ? q->text(0) : "";
            if (auto ec = storage::audit(c, std::nullopt, "beneficiary.erase", "beneficiary:" + std::to_string(id),
                                         detail, now))
              return storage::result<bool>(boost::system::in_place_error, ec);
            return true;
          });
      if (!erased) {
        log::error("retention_sweep_failed", {{"beneficiary_id", id}, {"error", erased.error().message()}});
        co_return;  // the next hour tries again
      }
      if (*erased) {
        if (!webchat_session.empty()) hub_.publish({"webchat:" + webchat_session, nlohmann::json{{"type", "erased"}}.dump()});
        ++erased_total;
        metrics_.count("retention_erased");
        log::info("beneficiary_erased", {{"beneficiary_id", id}, {"reason", "retention"}});
      }
    }
    if (scan->seen < static_cast<std::size_t>(scan_chunk)) {
      // Once an hour, so that the log shows the promise kept even when no one was due.
      log::info("retention_sweep_done", {{"erased", erased_total}, {"retention_days", cfg_.retention_days}});
      co_return;
    }
    after = scan->last_id;
  }
}

int app::run() {
  recover_outbox();
  server_ = std::make_unique<http_server>(ioc_, cfg_.server, routes_, metrics_);
  auto ep = server_->listen();
  server_->start();
  outbox_->start();
  archive_->start();
  net::co_spawn(ioc_, housekeeping(), net::detached);
  std::string base = "http://" + ep.address().to_string() + ":" + std::to_string(ep.port());
  log::info("listening", {{"address", ep.address().to_string()}, {"port", static_cast<std::int64_t>(ep.port())}});
  std::cout << "Aoun " << AOUN_VERSION << " listening on " << base << "\n"
            << "  staff console: " << base << "/console/\n"
            << "  website chat:  " << base << "/chat/\n"
            << "  health:        " << base << "/healthz" << std::endl;

  net::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::info("shutdown_started", {{"signal", static_cast<std::int64_t>(sig)}});
    stopping_ = true;
    archive_->stop();
    media_->stop();  // staff downloads waiting on a provider end now, not at the grace's end
    server_->shutdown([this] {
      // Every request has been answered. The outbox finishes the sends in flight and records
      // their outcome; pending rows stay in the database for the next start. The writer then
      // drains and the file is closed after the threads join (below).
      outbox_->stop([this] { ioc_.stop(); });
    });
  });
  // SIGHUP reloads dialogs/ and locales/ (a supervisor edited a text or an FAQ answer). A
  // broken edit is refused and the running engine is kept.
  net::signal_set reload(ioc_, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_hup = [this, &reload, &on_hup](boost::system::error_code ec, int) {
    if (ec) return;
    try {
      ops_->set_engine(load_engine(cfg_));
      log::info("dialogs_reloaded");
    } catch (const std::exception& e) {
      log::error("dialogs_reload_failed", {{"what", e.what()}});
    }
    reload.async_wait(on_hup);
  };
  reload.async_wait(on_hup);

  // By default one core is left to the storage writer, which runs every commit and would
  // otherwise be preempted by I/O threads (bench/webhook on 2 cores: 1 I/O thread did 3,670
  // webhooks/s at 345 us of CPU each, 2 did 3,100-3,300/s at 440-460 us).
  int n = cfg_.server.threads > 0 ? cfg_.server.threads : static_cast<int>(std::thread::hardware_concurrency()) - 1;
  if (n < 1) n = 1;
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
  reload.cancel();
  db_->close();
  log::info("shutdown_complete");
  return 0;
}

}  // namespace aoun::bot

// Benchmark (not a test): committed messages per second at synchronous=FULL, the group-commit
// writer against one transaction per message. Each "message" is the write an inbound webhook
// makes: its dedupe row, the message row and the conversation's state.
//
//   build/bench/bench_group_commit [messages=20000] [in_flight=256] [dir=/tmp]
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>

#include "storage/database.hpp"

using namespace aoun::storage;
using boost::system::error_code;
using clk = std::chrono::steady_clock;

namespace {

error_code one_message(connection& c, std::int64_t i) {
  auto d = c.prepare("INSERT INTO processed_webhooks (channel, provider_id, received_at) VALUES ('whatsapp', ?, 0)");
  if (!d) return d.error();
  if (auto ec = d->bind(1, "wamid." + std::to_string(i)).exec()) return ec;
  auto m = c.prepare(
      "INSERT INTO messages (conversation_id, direction, sender, kind, text, provider_id, created_at) "
      "VALUES (1, 'in', 'beneficiary', 'text', 'مرحبا، أحتاج مساعدة', ?, 0)");
  if (!m) return m.error();
  if (auto ec = m->bind(1, "wamid." + std::to_string(i)).exec()) return ec;
  auto u = c.prepare("UPDATE conversations SET dialog_state = ?, updated_at = ? WHERE id = 1");
  if (!u) return u.error();
  return u->bind(1, R"({"flow":"intake","step":"name"})").bind(2, i).exec();
}

std::unique_ptr<database> fresh(const std::string& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  auto db = database::open({.path = path, .readers = 0});
  if (!db) {
    std::fprintf(stderr, "open failed: %s\n", db.error().message().c_str());
    std::exit(1);
  }
  std::promise<error_code> p;
  (*db)->submit_write(
      [](connection& c) {
        return c.exec_script(
            "INSERT INTO beneficiaries (id, channel, address, created_at) VALUES (1, 'whatsapp', 'x', 0);"
            "INSERT INTO conversations (id, beneficiary_id, created_at, updated_at) VALUES (1, 1, 0, 0);");
      },
      [&](error_code ec) { p.set_value(ec); });
  p.get_future().get();
  return std::move(*db);
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? std::stoll(argv[1]) : 20000;
  const std::int64_t in_flight = argc > 2 ? std::stoll(argv[2]) : 256;
  const std::string dir = argc > 3 ? argv[3] : "/tmp";
  const std::string path = dir + "/aoun-bench-group-commit.db";

  // 1. One transaction per message, one after the other: each pays its own fsync.
  const std::int64_t n_single = std::min<std::int64_t>(n, 4000);
  double single_rate = 0;
  {
    auto db = fresh(path);
    auto t0 = clk::now();
    for (std::int64_t i = 0; i < n_single; ++i) {
      std::promise<error_code> p;
      db->submit_write([i](connection& c) { return one_message(c, i); }, [&](error_code ec) { p.set_value(ec); });
      if (auto ec = p.get_future().get()) {
        std::fprintf(stderr, "write failed: %s\n", ec.message().c_str());
        return 1;
      }
    }
    double s = std::chrono::duration<double>(clk::now() - t0).count();
    single_rate = n_single / s;
    std::printf("one transaction per message : %8lld msgs in %6.2f s = %9.0f msgs/s  (%.3f ms per commit)\n",
                static_cast<long long>(n_single), s, single_rate, 1000.0 * s / n_single);
  }

  // 2. Group commit: `in_flight` submitters at once (as concurrent webhooks are).
  {
    auto db = fresh(path);
    std::mutex m;
    std::condition_variable cv;
    std::int64_t next = 0, outstanding = 0, done = 0, failed = 0;
    auto t0 = clk::now();
    std::unique_lock lock(m);
    while (done < n) {
      while (next < n && outstanding < in_flight) {
        std::int64_t i = next++;
        ++outstanding;
        lock.unlock();
        db->submit_write([i](connection& c) { return one_message(c, i); },
                         [&](error_code ec) {
                           std::lock_guard l(m);
                           --outstanding;
                           ++done;
                           if (ec) ++failed;
                           cv.notify_one();
                         });
        lock.lock();
      }
      cv.wait(lock, [&] { return (next < n && outstanding < in_flight) || done >= n; });
    }
    lock.unlock();
    double s = std::chrono::duration<double>(clk::now() - t0).count();
    auto st = db->snapshot();
    double rate = n / s;
    std::printf("group commit (%4lld in flight): %8lld msgs in %6.2f s = %9.0f msgs/s  (%llu commits, %.1f msgs/commit, %.3f ms per commit)\n",
                static_cast<long long>(in_flight), static_cast<long long>(n), s, rate,
                static_cast<unsigned long long>(st.commits), static_cast<double>(st.jobs) / st.commits,
                st.commit_micros_total / 1000.0 / st.commits);
    std::printf("speed-up: %.1fx%s\n", rate / single_rate, failed ? "  (SOME WRITES FAILED)" : "");
    if (failed) return 1;
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  return 0;
}

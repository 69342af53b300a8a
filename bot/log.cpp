#include "bot/log.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

namespace aoun::bot::log {
namespace {

constexpr std::size_t queue_limit = 8192;

struct logger {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::string> lines;  // GUARDED_BY(mutex)
  bool stopping = false;          // GUARDED_BY(mutex)
  std::function<void(std::string_view)> sink;
  std::thread thread;
  std::atomic<int> min{static_cast<int>(level::info)};
  std::atomic<bool> running{false};
  std::atomic<std::uint64_t> dropped{0};
};

logger& instance() {
  static logger l;
  return l;
}

std::string_view name(level l) {
  switch (l) {
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

}  // namespace

std::optional<level> parse_level(std::string_view s) {
  for (level l : {level::debug, level::info, level::warn, level::error})
    if (name(l) == s) return l;
  return std::nullopt;
}

void start(level min, std::function<void(std::string_view)> sink) {
  auto& l = instance();
  stop();
  l.min = static_cast<int>(min);
  l.sink = sink ? std::move(sink) : [](std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  {
    std::lock_guard lock(l.mutex);
    l.stopping = false;
  }
  l.running = true;
  l.thread = std::thread([&l] {
    std::deque<std::string> batch;
    for (;;) {
      {
        std::unique_lock lock(l.mutex);
        l.cv.wait(lock, [&] { return l.stopping || !l.lines.empty(); });
        batch.swap(l.lines);
        if (batch.empty() && l.stopping) return;
      }
      for (auto& line : batch) l.sink(line);
      batch.clear();
    }
  });
}

void stop() {
  auto& l = instance();
  if (!l.thread.joinable()) return;
  {
    std::lock_guard lock(l.mutex);
    l.stopping = true;
  }
  l.cv.notify_one();
  l.thread.join();
  l.running = false;
}

bool enabled(level lv) { return static_cast<int>(lv) >= instance().min.load(std::memory_order_relaxed); }

void write(level lv, std::string_view event, std::initializer_list<field> fields) {
  if (!enabled(lv)) return;
  nlohmann::json j;
  auto now = std::chrono::system_clock::now();
  j["ts"] = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() / 1000.0;
  j["level"] = name(lv);
  j["event"] = event;
  for (auto& f : fields) {
    std::visit(
        [&](auto&& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>)
            j[std::string(f.key)] = std::string(v);
          else
            j[std::string(f.key)] = v;
        },
        f.v);
  }
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto& l = instance();
  if (!l.running) {  // before start() (CLI errors, tests): write through
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fputc('\n', stderr);
    return;
  }
  {
    std::lock_guard lock(l.mutex);
    if (l.lines.size() >= queue_limit) {
      l.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    l.lines.push_back(std::move(line));
  }
  l.cv.notify_one();
}

std::uint64_t dropped() { return instance().dropped.load(std::memory_order_relaxed); }

}  // namespace aoun::bot::log

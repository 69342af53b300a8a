#pragma once
// Structured logs: one JSON object per line. Callers pass ids, channel, status and latency;
// never message text, names, phone numbers, national ids, tokens or signatures.
//
// Thread-safe. `write` never blocks an I/O thread: lines go to a bounded queue that one logger
// thread drains to the sink; when the queue is full the line is dropped and counted.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <optional>
#include <type_traits>
#include <variant>

namespace aoun::bot::log {

enum class level { debug, info, warn, error };

using value = std::variant<std::string_view, std::int64_t, double, bool>;
struct field {
  std::string_view key;
  value v;
  field(std::string_view k, std::string_view s) : key(k), v(s) {}
  field(std::string_view k, const char* s) : key(k), v(std::string_view(s)) {}
  field(std::string_view k, const std::string& s) : key(k), v(std::string_view(s)) {}
  template <class I, class = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
  field(std::string_view k, I i) : key(k), v(static_cast<std::int64_t>(i)) {}
  field(std::string_view k, double d) : key(k), v(d) {}
  field(std::string_view k, bool b) : key(k), v(b) {}
};

/// True at most once per `period_s` seconds for one `last` (a static at the call site), for a
/// warning a flood must not repeat into the log; `now` in unix seconds.
inline bool once_per(std::atomic<std::int64_t>& last, std::int64_t now, std::int64_t period_s = 60) {
  auto seen = last.load(std::memory_order_relaxed);
  return now - seen >= period_s && last.compare_exchange_strong(seen, now, std::memory_order_relaxed);
}

/// Starts the logger thread writing to `sink` (default: stderr) at `min` level and above.
void start(level min, std::function<void(std::string_view line)> sink = {});
/// Flushes what is queued and stops the thread. Safe to call twice.
void stop();
bool enabled(level l);
void write(level l, std::string_view event, std::initializer_list<field> fields = {});
std::uint64_t dropped();
std::optional<level> parse_level(std::string_view s);

inline void debug(std::string_view e, std::initializer_list<field> f = {}) { write(level::debug, e, f); }
inline void info(std::string_view e, std::initializer_list<field> f = {}) { write(level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<field> f = {}) { write(level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<field> f = {}) { write(level::error, e, f); }

}  // namespace aoun::bot::log

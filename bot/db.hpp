#pragma once
// Awaitable access to storage::database from coroutines. The job runs on the storage thread
// (never on an I/O thread); the coroutine resumes on its own executor afterwards.
//
//   auto r = co_await db_write<std::int64_t>(db, [&](storage::connection& c) -> storage::result<std::int64_t> {...});
//
// For writes, success means committed with synchronous=FULL. REQUIRES: T default-constructible.
// The job must not capture references to coroutine locals that it outlives: it runs before the
// co_await returns, so capturing the caller's locals by reference is safe.

#include <memory>
#include <optional>

#include "bot/net.hpp"
#include "storage/database.hpp"

namespace aoun::bot {

namespace detail {
template <class T, class F, class Submit>
net::awaitable<storage::result<T>> db_run(Submit submit, F f) {
  auto out = std::make_shared<T>();
  auto [ec] = co_await net::async_initiate<decltype(use_tuple), void(boost::system::error_code)>(
      [&](auto handler) {
        auto ex = net::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        submit(
            [f = std::move(f), out](storage::connection& c) -> boost::system::error_code {
              storage::result<T> r = f(c);
              if (!r) return r.error();
              *out = std::move(*r);
              return {};
            },
            [h, ex](boost::system::error_code ec) { net::post(ex, [h, ec]() mutable { (*h)(ec); }); });
      },
      use_tuple);
  if (ec) co_return ec;
  co_return std::move(*out);
}
}  // namespace detail

template <class T, class F>
net::awaitable<storage::result<T>> db_write(storage::database& db, F f) {
  return detail::db_run<T>([&db](auto job, auto done) { db.submit_write(std::move(job), std::move(done)); },
                           std::move(f));
}

template <class T, class F>
net::awaitable<storage::result<T>> db_read(storage::database& db, F f) {
  return detail::db_run<T>([&db](auto job, auto done) { db.submit_read(std::move(job), std::move(done)); },
                           std::move(f));
}

}  // namespace aoun::bot

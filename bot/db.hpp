#pragma once
// Awaitable access to storage::database from coroutines. The job runs on the storage thread
// (never on an I/O thread); the coroutine resumes on its own executor afterwards.
//
//   auto r = co_await db_write<std::int64_t>(db, [&](storage::connection& c) -> storage::result<std::int64_t> {...});
//
// For writes, success means committed with synchronous=FULL. REQUIRES: T default-constructible.
// The job runs before the co_await returns, so capturing the caller's locals by reference is
// safe.
//
// These are plain functions around async_initiate, not coroutines: GCC 12 destroys by-value
// parameters of coroutines twice when they hold non-trivial captures (seen as a
// heap-use-after-free under ASan), so the job must never be a coroutine parameter.

#include <future>
#include <memory>
#include <optional>

#include "bot/net.hpp"
#include "storage/database.hpp"

namespace aoun::bot {

/// Runs `job` on the writer and blocks until it is committed or failed. Only where no I/O
/// thread can be waiting on the caller: before the server starts, or in a CLI command.
inline boost::system::error_code write_now(storage::database& db, storage::write_job job) {
  std::promise<boost::system::error_code> done;
  db.submit_write(std::move(job), [&done](boost::system::error_code ec) { done.set_value(ec); });
  return done.get_future().get();
}

namespace detail {
template <class T, class F, class Submit>
auto db_run(Submit submit, F f) {
  return net::async_initiate<decltype(net::use_awaitable), void(storage::result<T>)>(
      [submit](auto handler, F f) {
        auto ex = net::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto out = std::make_shared<T>();
        submit(
            [f = std::move(f), out](storage::connection& c) -> boost::system::error_code {
              storage::result<T> r = f(c);
              if (!r) return r.error();
              *out = std::move(*r);
              return {};
            },
            [h, ex, out](boost::system::error_code ec) {
              net::post(ex, [h, ec, out]() mutable {
                if (ec)
                  (*h)(storage::result<T>(boost::system::in_place_error, ec));
                else
                  (*h)(storage::result<T>(boost::system::in_place_value, std::move(*out)));
              });
            });
      },
      net::use_awaitable, std::move(f));
}
}  // namespace detail

template <class T, class F>
auto db_write(storage::database& db, F f) {
  return detail::db_run<T>([&db](auto job, auto done) { db.submit_write(std::move(job), std::move(done)); },
                           std::move(f));
}

/// The same, for a job that may run twice (storage::rerun::safe): `f` must start from scratch
/// each time, i.e. assign (or clear first) whatever it hands back. Such jobs skip the writer's
/// per-job SAVEPOINT.
template <class T, class F>
auto db_write(storage::database& db, storage::rerun r, F f) {
  return detail::db_run<T>(
      [&db, r](auto job, auto done) { db.submit_write(std::move(job), std::move(done), r); }, std::move(f));
}

template <class T, class F>
auto db_read(storage::database& db, F f) {
  return detail::db_run<T>([&db](auto job, auto done) { db.submit_read(std::move(job), std::move(done)); },
                           std::move(f));
}

}  // namespace aoun::bot

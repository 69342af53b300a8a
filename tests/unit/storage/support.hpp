#pragma once
// Helpers for tests that drive a storage::database: a throwaway file, synchronous reads, and a
// way to make several jobs run as ONE batch of the writer.
#include <doctest/doctest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "storage/database.hpp"
#include "storage/schema.hpp"

namespace aoun::storage::testing {

/// An in-memory database at the latest schema, for tests of single statements.
inline std::unique_ptr<connection> fresh_connection() {
  auto c = connection::open(":memory:", connection::mode::read_write);
  REQUIRE(c.has_value());
  REQUIRE(migrate(**c).has_value());
  return std::move(*c);
}

/// A database path in a fresh folder under /tmp, removed with the object.
struct temp_file {
  std::string path;
  temp_file() {
    char tmpl[] = "/tmp/aoun-unit-XXXXXX";
    path = std::string(::mkdtemp(tmpl)) + "/t.db";
  }
  ~temp_file() { std::filesystem::remove_all(std::filesystem::path(path).parent_path()); }
};

inline boost::system::error_code read_sync(database& db, read_job job) {
  std::promise<boost::system::error_code> p;
  db.submit_read(std::move(job), [&](boost::system::error_code ec) { p.set_value(ec); });
  return p.get_future().get();
}

/// The first column of the first row of `sql`.
inline std::int64_t count(database& db, const std::string& sql) {
  std::int64_t n = -1;
  auto ec = read_sync(db, [&](connection& c) -> boost::system::error_code {
    auto q = c.prepare(sql);
    if (!q) return q.error();
    auto r = q->step();
    if (!r) return r.error();
    n = q->int64(0);
    return {};
  });
  REQUIRE(!ec);
  return n;
}

/// Runs `jobs` as ONE batch: a first job holds the writer until they are all queued. Returns
/// each job's result, in order.
inline std::vector<boost::system::error_code> one_batch(database& db, std::vector<std::pair<write_job, rerun>> jobs) {
  std::promise<void> started, gate;
  auto gate_open = gate.get_future().share();
  std::promise<boost::system::error_code> first;
  db.submit_write(
      [&started, gate_open](connection&) {
        started.set_value();
        gate_open.wait();
        return boost::system::error_code{};
      },
      [&first](boost::system::error_code ec) { first.set_value(ec); });
  started.get_future().wait();
  std::vector<std::promise<boost::system::error_code>> done(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i)
    db.submit_write(std::move(jobs[i].first), [&done, i](boost::system::error_code ec) { done[i].set_value(ec); },
                    jobs[i].second);
  gate.set_value();
  REQUIRE(!first.get_future().get());
  std::vector<boost::system::error_code> out;
  for (auto& p : done) out.push_back(p.get_future().get());
  return out;
}

}  // namespace aoun::storage::testing

#include "storage/database.hpp"

#include <sqlite3.h>

#include <algorithm>

#include "storage/schema.hpp"

namespace aoun::storage {
namespace {

template <std::size_t N>
void count_in(const std::uint64_t (&bounds)[N], std::uint64_t (&buckets)[N + 1], std::uint64_t v) {
  std::size_t i = 0;
  while (i < N && v > bounds[i]) ++i;
  ++buckets[i];
}

}  // namespace

result<std::unique_ptr<database>> database::open(const options& opts) {
  std::unique_ptr<database> db(new database(opts));
  auto w = connection::open(opts.path, connection::mode::read_write);
  if (!w) return w.error();
  db->writer_ = std::move(*w);
  const bool memory = opts.path == ":memory:";
  // WAL lets readers see the last commit while the writer works; FULL makes a commit durable
  // when COMMIT returns (one fsync of the WAL per transaction, which group commit shares).
  // secure_delete: what is deleted or overwritten (an erasure, a file) is zeroed in the file,
  // not left on free pages where a copy of the database would still hold it (docs/privacy.md).
  std::string pragmas = "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; PRAGMA secure_delete=ON;";
  if (!memory) pragmas += "PRAGMA journal_mode=WAL;";
  pragmas += opts.synchronous_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=OFF;";
  if (auto ec = db->writer_->exec_script(pragmas.c_str())) return ec;
  if (opts.migrate) {
    auto v = migrate(*db->writer_);
    if (!v) return v.error();
    db->schema_version_ = *v;
  } else {
    auto q = db->writer_->prepare("PRAGMA user_version");
    if (!q) return q.error();
    if (auto r = q->step(); !r) return r.error();
    db->schema_version_ = static_cast<int>(q->int64(0));
  }
  if (!memory) {
    // Checkpoints leave the writer's thread: its hook only notes the WAL's size (this replaces
    // SQLite's automatic checkpoint, which would copy pages and fsync the file inside a commit).
    auto ck = connection::open(opts.path, connection::mode::read_write);
    if (!ck) return ck.error();
    db->checkpointer_ = std::move(*ck);
    // A connection learns that the file is in WAL mode on its first read; until then a
    // checkpoint through it does nothing (and says so with -1 frames).
    if (auto ec = db->checkpointer_->exec_script("SELECT count(*) FROM sqlite_schema")) return ec;
    std::string cache = "PRAGMA cache_size=-" + std::to_string(std::max(opts.writer_cache_kib, 100));
    if (auto ec = db->writer_->exec_script(cache.c_str())) return ec;
    sqlite3_wal_hook(db->writer_->handle(), &database::on_wal_commit, db.get());
    for (int i = 0; i < opts.readers; ++i) {
      auto r = connection::open(opts.path, connection::mode::read_only);
      if (!r) return r.error();
      db->readers_.push_back(std::move(*r));
    }
  }
  db->writer_thread_ = std::thread([p = db.get()] { p->writer_loop(); });
  if (db->checkpointer_) db->checkpointer_thread_ = std::thread([p = db.get()] { p->checkpointer_loop(); });
  for (auto& r : db->readers_)
    db->reader_threads_.emplace_back([p = db.get(), c = r.get()] { p->reader_loop(*c); });
  return db;
}

database::~database() { close(); }

void database::submit_write(write_job work, completion done, rerun r) {
  {
    std::lock_guard lock(mutex_);
    if (!closing_) {
      writes_.push_back({std::move(work), std::move(done), r});
      writer_cv_.notify_one();
      return;
    }
  }
  done(errc::shutting_down);
}

void database::submit_read(read_job work, completion done) {
  if (readers_.empty()) {  // ":memory:" or readers = 0: the writer serves reads in order.
    submit_write(std::move(work), std::move(done));
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!closing_) {
      reads_.push_back({std::move(work), std::move(done)});
      reader_cv_.notify_one();
      return;
    }
  }
  done(errc::shutting_down);
}

void database::writer_loop() {
  std::vector<job> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      writer_cv_.wait(lock, [&] { return closing_ || !writes_.empty(); });
      if (writes_.empty() && closing_) return;
      std::size_t n = std::min(writes_.size(), opts_.max_batch);
      batch.clear();
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(writes_.front()));
        writes_.pop_front();
      }
    }
    run_batch(batch);
  }
}

void database::run_batch(std::vector<job>& batch) {
  auto start = std::chrono::steady_clock::now();
  // The WAL starts over only when a write transaction begins with every frame already copied
  // into the file. Under steady load the checkpointer never catches up with the writer, so past
  // restart_frames the writer finishes the copy itself, between two of its transactions: only
  // the frames since the checkpointer's last pass, and never a wait (passive).
  if (checkpointer_) {
    int frames = 0;
    {
      std::lock_guard lock(mutex_);
      frames = wal_frames_;
    }
    if (frames >= opts_.restart_frames) {
      int log = 0, done = 0;
      int rc = sqlite3_wal_checkpoint_v2(writer_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
      std::lock_guard lock(mutex_);
      stats_.writer_checkpoints += 1;
      if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) stats_.checkpoint_errors += 1;
      if (rc == SQLITE_OK && log == done) {
        wal_frames_ = 0;  // restarts with the next transaction
        stats_.wal_resets += 1;
      }
    }
  }
  std::vector<boost::system::error_code> results(batch.size());
  boost::system::error_code ec;
  bool rerun_batch = false;
  const bool all_safe =
      std::all_of(batch.begin(), batch.end(), [](const job& j) { return j.safety == rerun::safe; });
  if (all_safe) rerun_batch = !run_batch_fast(batch, ec);
  if (!all_safe || rerun_batch) ec = run_batch_careful(batch, results);
  // A failed BEGIN or COMMIT means nothing of the batch is on disk: every job fails.
  if (ec)
    for (auto& r : results)
      if (!r) r = ec;
  auto micros = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  std::uint64_t failed = 0;
  for (auto& r : results) failed += r ? 1 : 0;
  {
    std::lock_guard lock(mutex_);
    stats_.commits += 1;
    stats_.jobs += batch.size();
    stats_.failed_jobs += failed;
    stats_.failing_batches_in_a_row = failed == batch.size() ? stats_.failing_batches_in_a_row + 1 : 0;
    stats_.reruns += rerun_batch ? 1 : 0;
    stats_.commit_micros_total += micros;
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
    count_in(stats::latency_bounds, stats_.latency_buckets, micros);
    count_in(stats::batch_bounds, stats_.batch_buckets, batch.size());
  }
  // Release each job's captures on this thread before its owner resumes.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    batch[i].work = nullptr;
    batch[i].done(results[i]);
  }
  batch.clear();
}

namespace {

// BEGIN, COMMIT and ROLLBACK as cached statements: sqlite3_exec would parse them every time.
boost::system::error_code exec_cached(connection& c, std::string_view sql) {
  auto q = c.prepare(sql);
  return q ? q->exec() : q.error();
}

boost::system::error_code run_job(connection& c, write_job& work) {
  try {
    return work(c);
  } catch (...) {  // a job must not take the batch down with it
    return errc::invalid;
  }
}

}  // namespace

bool database::run_batch_fast(std::vector<job>& batch, boost::system::error_code& ec) {
  auto& c = *writer_;
  ec = exec_cached(c, "BEGIN IMMEDIATE");
  if (ec) return true;  // nothing ran: every job fails with ec
  for (auto& j : batch) {
    // A job that succeeded with the transaction gone (it swallowed an error after which SQLite
    // rolled everything back: a full disk, an I/O error, no memory) would leave the rest of the
    // batch to run one statement at a time, outside any transaction: run it again, carefully.
    if (!run_job(c, j.work) && !sqlite3_get_autocommit(c.handle())) continue;
    // No savepoint to go back to: undo everything (SQLite may have done so already, after an
    // I/O error or a full disk), and let the caller run the batch again with savepoints.
    exec_cached(c, "ROLLBACK");
    return false;
  }
  ec = exec_cached(c, "COMMIT");
  if (ec) exec_cached(c, "ROLLBACK");
  return true;
}

boost::system::error_code database::run_batch_careful(std::vector<job>& batch,
                                                      std::vector<boost::system::error_code>& results) {
  auto& c = *writer_;
  auto ec = exec_cached(c, "BEGIN IMMEDIATE");
  if (ec) return ec;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (auto sp = exec_cached(c, "SAVEPOINT job")) {
      results[i] = sp;
      continue;
    }
    results[i] = run_job(c, batch[i].work);
    if (results[i]) exec_cached(c, "ROLLBACK TO job");
    if (sqlite3_get_autocommit(c.handle())) {
      // SQLite rolled the whole transaction back (a full disk, an I/O error, no memory): the
      // jobs before this one are undone too, and the ones after would each commit on their
      // own. Every job of the batch fails, and their callers answer or retry accordingly.
      const auto gone = results[i] ? results[i] : make_error_code(errc::io);
      for (auto& r : results) r = gone;
      return gone;
    }
    exec_cached(c, "RELEASE job");
  }
  ec = exec_cached(c, "COMMIT");
  if (ec) exec_cached(c, "ROLLBACK");
  return ec;
}

int database::on_wal_commit(void* self, sqlite3*, const char*, int frames) {
  auto* db = static_cast<database*>(self);
  {
    std::lock_guard lock(db->mutex_);
    db->wal_frames_ = frames;
    if (frames < db->opts_.checkpoint_frames || db->checkpoint_wanted_) return 0;
    db->checkpoint_wanted_ = true;
  }
  db->checkpoint_cv_.notify_one();
  return 0;  // SQLITE_OK
}

void database::checkpointer_loop() {
  auto* h = checkpointer_->handle();
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      checkpoint_cv_.wait(lock, [&] { return closing_ || checkpoint_wanted_; });
      if (closing_) return;
    }
    // Passive: copies what no reader still needs, beside the writer, never waiting for it.
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(h, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    std::lock_guard lock(mutex_);
    stats_.checkpoints += 1;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) stats_.checkpoint_errors += 1;
    checkpoint_wanted_ = false;
  }
}

void database::reader_loop(connection& conn) {
  for (;;) {
    job j;
    {
      std::unique_lock lock(mutex_);
      reader_cv_.wait(lock, [&] { return closing_ || !reads_.empty(); });
      if (reads_.empty() && closing_) return;
      j = std::move(reads_.front());
      reads_.pop_front();
    }
    boost::system::error_code ec;
    // Each read job sees one snapshot of the database.
    ec = conn.exec_script("BEGIN");
    if (!ec) {
      try {
        ec = j.work(conn);
      } catch (...) {
        ec = errc::invalid;
      }
      conn.exec_script("COMMIT");
    }
    j.work = nullptr;
    auto done = std::move(j.done);
    j = {};
    done(ec);
  }
}

void database::close() {
  {
    std::lock_guard lock(mutex_);
    if (closing_ && !writer_thread_.joinable()) return;
    closing_ = true;
  }
  writer_cv_.notify_all();
  reader_cv_.notify_all();
  checkpoint_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  if (checkpointer_thread_.joinable()) checkpointer_thread_.join();
  checkpointer_.reset();
  for (auto& t : reader_threads_)
    if (t.joinable()) t.join();
  reader_threads_.clear();
  readers_.clear();
  if (writer_ && opts_.path != ":memory:") writer_->exec_script("PRAGMA wal_checkpoint(TRUNCATE)");
  writer_.reset();
}

stats database::snapshot() const {
  std::lock_guard lock(mutex_);
  stats s = stats_;
  s.wal_frames = static_cast<std::uint64_t>(wal_frames_);
  return s;
}

}  // namespace aoun::storage

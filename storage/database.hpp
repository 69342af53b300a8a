#pragma once
// The Aoun database: one writer thread that group-commits, and a few reader threads.
//
// Writes: `submit_write(job, done)` queues `job` for the writer thread. The writer takes every
// queued job (up to `options::max_batch`), opens ONE transaction, runs the jobs, commits once with
// synchronous=FULL, and only then calls each `done` with the job's own error. So `done(success)`
// means durable on disk, and one fsync is shared by every job of the batch (group commit). A
// failing job is rolled back alone and the others still commit:
//   - jobs submitted as `rerun::unsafe` (the default) each run inside their own SAVEPOINT;
//   - a batch made only of `rerun::safe` jobs runs without savepoints (they cost about 3% of a
//     webhook's instructions). If one of its jobs fails, the whole transaction is rolled back and
//     the batch runs again the careful way, each job in a SAVEPOINT: the jobs before the failing
//     one, and the failing one itself, run twice.
//
// Reads: `submit_read(job, done)` runs `job` on one of the reader threads, each with its own
// read-only WAL connection (a consistent snapshot per job). With path ":memory:" there is no
// file to share, so reads run on the writer thread instead.
//
// `done` runs on the writer or reader thread: it must be short and must not block (bot/ uses it
// to post the result back to the caller's executor). Thread-safe: submit_* may be called from any
// thread. Jobs submitted after close() begins complete with errc::shutting_down.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/connection.hpp"
#include "storage/error.hpp"

namespace aoun::storage {

struct options {
  /// Database file; ":memory:" for tests. The parent folder must exist.
  std::string path = "./data/aoun.db";
  /// Read-only connections (and threads) for API reads. 0 means reads run on the writer.
  int readers = 2;
  /// Most jobs committed in one transaction. Larger batches amortize the fsync further but make
  /// the first job in a batch wait for the last one's work.
  std::size_t max_batch = 1024;
  /// synchronous=FULL (durable at commit). Only benchmarks turn it off, to show what it costs.
  bool synchronous_full = true;
  /// Apply pending migrations when opening. `aoun migrate` and `serve` both do.
  bool migrate = true;
  /// WAL checkpoints run on their own thread and connection: a passive checkpoint (copying
  /// frames into the database file beside the writer) whenever the WAL holds this many frames...
  int checkpoint_frames = 1000;
  /// ...and once it holds this many, the writer copies the few frames left between two of its
  /// transactions so that the WAL starts over instead of growing.
  int restart_frames = 4000;
  /// Page cache of the writer connection, in KiB (SQLite's default is 2,000).
  int writer_cache_kib = 8192;
};

/// Counters for /metrics. Monotonic; read without locking (relaxed atomics inside).
struct stats {
  std::uint64_t commits = 0;
  std::uint64_t jobs = 0;
  std::uint64_t failed_jobs = 0;
  std::uint64_t reruns = 0;  ///< batches rolled back and run again because a job failed without a savepoint
  std::uint64_t commit_micros_total = 0;
  std::uint64_t largest_batch = 0;
  std::uint64_t checkpoints = 0;        ///< runs of the checkpointer thread
  std::uint64_t writer_checkpoints = 0; ///< short ones the writer ran to let the WAL start over
  std::uint64_t checkpoint_errors = 0;  ///< ones that failed with something other than busy
  std::uint64_t wal_resets = 0;         ///< writer checkpoints that found every frame copied: the WAL can start over
  std::uint64_t wal_frames = 0;         ///< frames in the WAL after the last commit (a gauge, not a counter)
  /// Batches in a row in which nothing was written (BEGIN or COMMIT failed, or every job did: a
  /// full disk, a lock held by another process); 0 after one that wrote. A gauge.
  std::uint64_t failing_batches_in_a_row = 0;
  /// Histogram of commit latency: bucket upper bounds in microseconds (last = +Inf).
  static constexpr std::uint64_t latency_bounds[] = {100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000};
  std::uint64_t latency_buckets[std::size(latency_bounds) + 1] = {};
  /// Histogram of batch sizes.
  static constexpr std::uint64_t batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  std::uint64_t batch_buckets[std::size(batch_bounds) + 1] = {};
};

using write_job = std::function<boost::system::error_code(connection&)>;
/// Whether a write job may run more than once before its `done`: `safe` when every run starts
/// from scratch, i.e. whatever the job hands back outside the connection it assigns (or clears
/// first), never appends to. What it did through the connection is rolled back between runs.
enum class rerun { unsafe, safe };
using read_job = std::function<boost::system::error_code(connection&)>;
using completion = std::function<void(boost::system::error_code)>;

class database {
 public:
  /// Opens the file, sets WAL and synchronous, applies migrations, starts the threads.
  static result<std::unique_ptr<database>> open(const options& opts);
  ~database();  ///< calls close()
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  void submit_write(write_job job, completion done, rerun r = rerun::unsafe);
  void submit_read(read_job job, completion done);

  /// Finishes every queued job, commits, checkpoints the WAL and joins the threads. Idempotent.
  void close();

  stats snapshot() const;
  int schema_version() const { return schema_version_; }
  const options& opts() const { return opts_; }

 private:
  struct job {
    write_job work;
    completion done;
    rerun safety = rerun::unsafe;
  };
  explicit database(options opts) : opts_(std::move(opts)) {}
  void writer_loop();
  void reader_loop(connection& conn);
  void run_batch(std::vector<job>& batch);
  /// One transaction over the batch without savepoints; false (and rolled back) when a job
  /// failed, so that the batch must run again with them. `ec`: BEGIN or COMMIT failed.
  bool run_batch_fast(std::vector<job>& batch, boost::system::error_code& ec);
  boost::system::error_code run_batch_careful(std::vector<job>& batch, std::vector<boost::system::error_code>& results);
  void checkpointer_loop();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int frames);

  // Constant after construction.
  options opts_;
  int schema_version_ = 0;
  std::unique_ptr<connection> writer_;
  std::vector<std::unique_ptr<connection>> readers_;

  mutable std::mutex mutex_;
  std::condition_variable writer_cv_;
  std::condition_variable reader_cv_;
  std::deque<job> writes_;   // GUARDED_BY(mutex_)
  std::deque<job> reads_;    // GUARDED_BY(mutex_)
  bool closing_ = false;     // GUARDED_BY(mutex_)
  stats stats_;              // GUARDED_BY(mutex_)

  std::thread writer_thread_;
  std::vector<std::thread> reader_threads_;

  // Checkpoints: the writer's WAL hook records the WAL's size and wakes the checkpointer.
  std::unique_ptr<connection> checkpointer_;
  std::thread checkpointer_thread_;
  std::condition_variable checkpoint_cv_;
  int wal_frames_ = 0;            // GUARDED_BY(mutex_)
  bool checkpoint_wanted_ = false;  // GUARDED_BY(mutex_)
};

}  // namespace aoun::storage

#pragma once
// Integration-test harness: starts the real `aoun` binary on a free loopback port with a
// temporary database, talks HTTP to it, and runs fake providers (WhatsApp Graph API, Telegram,
// Twilio) on loopback that record what the server sends them and answer as scripted.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace aoun::test {

struct http_result {
  int status = 0;  ///< 0 when the connection failed
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case names
};

/// One blocking HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
http_result http_call(unsigned short port, const std::string& method, const std::string& target,
                      const std::string& body = {}, const std::map<std::string, std::string>& headers = {});
/// Sends raw bytes and returns whatever comes back until the server closes (or timeout).
std::string raw_call(unsigned short port, const std::string& bytes, std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// A client socket the test drives byte by byte (in-flight requests, slow clients).
class raw_connection {
 public:
  explicit raw_connection(unsigned short port);
  ~raw_connection();
  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  /// Reads until the peer closes or `timeout` passes.
  std::string read_all(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
};

/// A temporary folder removed on destruction.
struct temp_dir {
  std::string path;
  temp_dir();
  ~temp_dir();
};

/// The real server as a child process.
class server_process {
 public:
  /// Starts `aoun serve` with AOUN_LISTEN=127.0.0.1:0, AOUN_DB=<db_path> and `env` added.
  /// Waits until it prints its port. Throws std::runtime_error if it exits or takes > 20 s.
  server_process(std::string db_path, std::map<std::string, std::string> env = {});
  ~server_process();  ///< SIGKILL if still running
  unsigned short port() const { return port_; }
  /// Sends a signal and waits for the exit status (-1 if killed by a signal).
  int stop(int sig = 15, std::chrono::seconds timeout = std::chrono::seconds(30));
  void kill9();
  bool running();
  std::string output();  ///< stdout so far
  std::string errors();  ///< stderr so far (JSON log lines)

 private:
  int pid_ = -1;
  unsigned short port_ = 0;
  std::string out_path_, err_path_;
};

/// A fake provider API on loopback. Each request is recorded; the answer comes from a script
/// of queued responses, then from the default responder.
struct recorded_request {
  std::string method, target, body;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::chrono::steady_clock::time_point at;
};
struct scripted_response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
  /// Held this long before answering, outside the provider's lock (other requests go on).
  std::chrono::milliseconds delay{0};
  /// Called before answering (after the delay), outside the provider's lock: a gate the test
  /// opens when it has seen what it needs (how many requests are held at once, say).
  std::function<void()> hold;
};

class fake_provider {
 public:
  fake_provider();
  ~fake_provider();
  unsigned short port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void push(scripted_response r);  ///< answer the next request with r (FIFO)
  void set_default(std::function<scripted_response(const recorded_request&)> f);
  std::vector<recorded_request> requests();
  /// Waits until at least n requests are recorded. False on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  void serve();
  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::vector<int> open_fds_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<scripted_response> script_;
  std::function<scripted_response(const recorded_request&)> default_;
  std::vector<recorded_request> requests_;
  bool stopping_ = false;
};

std::string read_file(const std::string& path);
/// Runs a single-value query on the database file (read-only; fine while the server runs: WAL).
long long db_value(const std::string& db_path, const std::string& sql);
std::string db_text(const std::string& db_path, const std::string& sql);
/// Polls `f` every 20 ms until it is true or `timeout` passes.
bool eventually(const std::function<bool()>& f, std::chrono::milliseconds timeout = std::chrono::seconds(10));
std::string fixture(const std::string& name);  ///< tests/fixtures/channels/<name>
std::string hmac_sha256_hex(const std::string& key, const std::string& data);
std::string hmac_sha1_base64(const std::string& key, const std::string& data);

}  // namespace aoun::test

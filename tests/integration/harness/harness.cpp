#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace aoun::test {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

int connect_loopback(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads one HTTP message (header + Content-Length body) from fd, using `buf` for leftovers.
// Returns false on EOF/timeout before a whole message.
bool read_message(int fd, std::string& buf, std::string& head, std::string& body, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto fill = [&]() -> bool {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char tmp[65536];
    auto n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return false;
  head = buf.substr(0, end);
  buf.erase(0, end + 4);
  std::size_t len = 0;
  std::istringstream hs(head);
  std::string line;
  while (std::getline(hs, line)) {
    auto l = lower(line);
    if (l.rfind("content-length:", 0) == 0) len = std::stoul(l.substr(15));
  }
  while (buf.size() < len)
    if (!fill()) return false;
  body = buf.substr(0, len);
  buf.erase(0, len);
  return true;
}

std::map<std::string, std::string> parse_headers(const std::string& head, std::string& first_line) {
  std::map<std::string, std::string> h;
  std::istringstream hs(head);
  std::string line;
  std::getline(hs, first_line);
  if (!first_line.empty() && first_line.back() == '\r') first_line.pop_back();
  while (std::getline(hs, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto c = line.find(':');
    if (c == std::string::npos) continue;
    auto v = line.substr(c + 1);
    v.erase(0, v.find_first_not_of(' '));
    h[lower(line.substr(0, c))] = v;
  }
  return h;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

}  // namespace

http_result http_call(unsigned short port, const std::string& method, const std::string& target,
                      const std::string& body, const std::map<std::string, std::string>& headers) {
  http_result r;
  int fd = connect_loopback(port);
  if (fd < 0) return r;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  bool has_type = false;
  for (auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (lower(k) == "content-type") has_type = true;
  }
  if (!body.empty() && !has_type) req += "Content-Type: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (send_all(fd, req)) {
    std::string buf, head, rbody;
    if (read_message(fd, buf, head, rbody, 30000)) {
      std::string first;
      r.headers = parse_headers(head, first);
      if (first.size() >= 12) r.status = std::atoi(first.c_str() + 9);
      r.body = rbody;
    }
  }
  ::close(fd);
  return r;
}

std::string raw_call(unsigned short port, const std::string& bytes, std::chrono::milliseconds timeout) {
  int fd = connect_loopback(port);
  if (fd < 0) return {};
  send_all(fd, bytes);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char tmp[4096];
    auto n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    out.append(tmp, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

raw_connection::raw_connection(unsigned short port) : fd_(connect_loopback(port)) {}
raw_connection::~raw_connection() {
  if (fd_ >= 0) ::close(fd_);
}
bool raw_connection::send(const std::string& bytes) { return fd_ >= 0 && send_all(fd_, bytes); }
std::string raw_connection::read_all(std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char tmp[4096];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) break;
    out.append(tmp, static_cast<std::size_t>(n));
  }
  return out;
}

temp_dir::temp_dir() {
  char tmpl[] = "/tmp/aoun-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}
temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

server_process::server_process(std::string db_path, std::map<std::string, std::string> env) {
  static int counter = 0;
  auto stem = db_path + ".proc" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  out_path_ = stem + ".out";
  err_path_ = stem + ".err";
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string::npos || kv.rfind("AOUN_", 0) == 0) continue;
    vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  vars["AOUN_LISTEN"] = "127.0.0.1:0";
  vars["AOUN_DB"] = db_path;
  vars["AOUN_HOME"] = AOUN_SOURCE_DIR;
  if (!vars.count("AOUN_ADMIN_USER")) {
    vars["AOUN_ADMIN_USER"] = "admin";
    vars["AOUN_ADMIN_PASSWORD"] = "admin-password-1";
  }
  // "<stderr>" = "closed pipe": the log goes to a pipe nobody reads (a `| tee` that exited),
  // with SIGPIPE at its default action as in a shell, whatever this process does with it.
  bool closed_pipe = false;
  if (auto it = env.find("<stderr>"); it != env.end()) {
    closed_pipe = it->second == "closed pipe";
    env.erase(it);
  }
  for (auto& [k, v] : env) vars[k] = v;
  std::vector<std::string> strings;
  for (auto& [k, v] : vars) strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int pipe_fds[2] = {-1, -1};
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (closed_pipe && ::pipe(pipe_fds) == 0) {
    posix_spawn_file_actions_adddup2(&fa, pipe_fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipe_fds[0]);
    posix_spawn_file_actions_addclose(&fa, pipe_fds[1]);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::string bin = AOUN_BINARY;
  char arg0[] = "aoun";
  char arg1[] = "serve";
  char* argv[] = {arg0, arg1, nullptr};
  int rc = posix_spawn(&pid_, bin.c_str(), &fa, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  // Nobody reads the log: the read end closes with the write end, in this process too.
  if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
  if (pipe_fds[1] >= 0) ::close(pipe_fds[1]);
  if (rc != 0) throw std::runtime_error("cannot start " + bin);

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto out = output();
    auto pos = out.find("listening on http://127.0.0.1:");
    if (pos != std::string::npos) {
      auto end = out.find('\n', pos);
      if (end != std::string::npos) {
        port_ = static_cast<unsigned short>(std::stoi(out.substr(pos + 30, end - pos - 30)));
        return;
      }
    }
    if (!running()) throw std::runtime_error("aoun exited at start: " + errors());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill9();
  throw std::runtime_error("aoun did not start within 20 s: " + errors());
}

server_process::~server_process() {
  if (pid_ > 0) kill9();
  std::remove(out_path_.c_str());
  std::remove(err_path_.c_str());
}

bool server_process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int server_process::stop(int sig, std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill9();
  return -2;
}

void server_process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string server_process::output() { return read_file(out_path_); }
std::string server_process::errors() { return read_file(err_path_); }

fake_provider::fake_provider() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error("fake_provider: cannot listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  default_ = [](const recorded_request&) { return scripted_response{}; };
  thread_ = std::thread([this] { serve(); });
}

fake_provider::~fake_provider() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  thread_.join();
  {
    std::lock_guard lock(mutex_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : conns_) t.join();
}

void fake_provider::push(scripted_response r) {
  std::lock_guard lock(mutex_);
  script_.push_back(std::move(r));
}

void fake_provider::set_default(std::function<scripted_response(const recorded_request&)> f) {
  std::lock_guard lock(mutex_);
  default_ = std::move(f);
}

std::vector<recorded_request> fake_provider::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

bool fake_provider::wait_for(std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

void fake_provider::serve() {
  for (;;) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_fds_.push_back(fd);
    conns_.emplace_back([this, fd] {
      std::string buf, head, body;
      // Keep-alive: serve requests on this connection until the client closes or idles out.
      while (read_message(fd, buf, head, body, 30000)) {
        recorded_request rr;
        std::string first;
        rr.headers = parse_headers(head, first);
        auto sp1 = first.find(' ');
        auto sp2 = first.find(' ', sp1 + 1);
        rr.method = first.substr(0, sp1);
        rr.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
        rr.body = body;
        rr.at = std::chrono::steady_clock::now();
        scripted_response resp;
        {
          std::lock_guard l(mutex_);
          if (!script_.empty()) {
            resp = script_.front();
            script_.pop_front();
          } else {
            resp = default_(rr);
          }
          requests_.push_back(rr);
        }
        cv_.notify_all();
        if (resp.delay.count() > 0) std::this_thread::sleep_for(resp.delay);
        if (resp.hold) resp.hold();
        std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) +
                          "\r\nContent-Type: " + resp.content_type +
                          "\r\nContent-Length: " + std::to_string(resp.body.size()) + "\r\n";
        for (auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
        out += "\r\n" + resp.body;
        if (!send_all(fd, out)) break;
      }
      std::lock_guard l(mutex_);
      open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
      ::close(fd);
    });
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fixture(const std::string& name) { return read_file(std::string(AOUN_FIXTURES) + "/channels/" + name); }

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  static const char* hx = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s += hx[out[i] >> 4];
    s += hx[out[i] & 15];
  }
  return s;
}

std::string hmac_sha1_base64(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  std::string b(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b.data()), out, static_cast<int>(len));
  b.resize(static_cast<std::size_t>(n));
  return b;
}

}  // namespace aoun::test

namespace aoun::test {

std::string db_text(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      auto* t = sqlite3_column_text(st, 0);
      if (t != nullptr) out = reinterpret_cast<const char*>(t);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

long long db_value(const std::string& db_path, const std::string& sql) {
  auto t = db_text(db_path, sql);
  return t.empty() ? -1 : std::stoll(t);
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

}  // namespace aoun::test

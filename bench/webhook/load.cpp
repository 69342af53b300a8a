// Benchmark (not a test): load generator for the WhatsApp webhook path, with a fake Graph API.
//
// It sends signed WhatsApp text webhooks (built from tests/fixtures/channels/whatsapp_text.json,
// a unique wamid each, X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(app secret, raw body))
// over keep-alive connections to 127.0.0.1, and embeds a fake Graph API on loopback that answers
// every POST .../<phone_number_id>/messages like Meta does and notes when each reply arrives.
//
// Conversations: senders come from a pool of C numbers (sender_base + i). A conversation has at
// most one webhook in flight: its next message is sent only after the previous one was answered
// 200 *and* its first reply reached the fake Graph API (or --reply-timeout-ms passed), plus a
// quiet time (--quiet-ms) so that a second reply to the same webhook is not taken for the reply
// to the next one. If the server sends `context.message_id` (reply in context) the reply is
// matched by wamid instead. So webhook→reply latency = first reply's arrival at the fake Graph
// API − the time the webhook was sent (open loop: the time it was *scheduled*, so a load
// generator that falls behind shows up in the figures rather than hiding them).
//
// Modes:
//   closed  --connections N: each connection sends the next ready conversation's message as soon
//           as its previous webhook was answered (max throughput). End to end, because the pool
//           of ready conversations only refills as replies arrive.
//   open    --rate R [--arrivals poisson|uniform]: webhooks at a fixed rate (latency).
//   --max-per-conversation K stops a conversation after K messages (with --conversations 10000
//   and K=2: 10,000 conversations left mid-dialog, for the memory check).
//   --no-replies: the target sends no replies (bench_bare_server): a webhook is done on its 200.
//
// Every loop is bounded: --warmup + --duration (≤ 600 s), --count, --drain (≤ 60 s).
//
//   bench_webhook_load --target 127.0.0.1:8080 --secret S --token T --graph-port 0
//       --mode closed --connections 64 --conversations 2000 --warmup 3 --duration 15
//       [--server-pid PID] [--fixture tests/fixtures/channels/whatsapp_text.json]
//
// Prints "fake graph api on http://127.0.0.1:PORT" at start, a human summary at the end, and
// one "RESULT key=value ..." line for scripts.
#include <sys/resource.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "bench/webhook/common.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using aoun::bench::now_ns;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

struct options {
  std::string target_host = "127.0.0.1";
  unsigned short target_port = 8080;
  std::string path = "/webhooks/whatsapp";
  std::string secret = "bench-app-secret";
  std::string token = "bench-token";
  std::string phone_number_id = "106540352242922";
  std::string fixture = "tests/fixtures/channels/whatsapp_text.json";
  unsigned short graph_port = 0;
  int graph_threads = 1;
  std::string mode = "closed";
  int connections = 32;
  int conversations = 1000;
  double warmup = 2, duration = 10, drain = 5;
  long long count = 0;                 // 0 = no limit besides duration
  double rate = 200;
  bool poisson = true;
  int max_per_conversation = 0;        // 0 = unlimited
  double quiet_ms = 20;
  double reply_timeout_ms = 5000;
  bool expect_replies = true;
  long server_pid = 0;
  long long sender_base = 966500000000LL;
  // Greeting (welcome + consent), "1" (consent: yes → main menu), then round the menu for ever:
  // "2" (inquiries), "1" (an answer and what next), "القائمة" (back to the main menu).
  std::vector<std::string> texts = {"السلام عليكم", "1", "2", "1", "القائمة"};
  int cycle_from = 2;                  // after the last text, continue from this one
  double connect_wait = 15;            // seconds to wait for the target to accept
  int dump_sends = 0;                  // print the first N Graph API request bodies to stderr
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --target HOST:PORT [--secret S] [--token T] [--phone-number-id ID]\n"
               "  [--fixture FILE] [--graph-port 0] [--graph-threads 1] [--mode closed|open]\n"
               "  [--connections 32] [--conversations 1000] [--warmup 2] [--duration 10] [--drain 5]\n"
               "  [--count 0] [--rate 200] [--arrivals poisson|uniform] [--max-per-conversation 0]\n"
               "  [--quiet-ms 20] [--reply-timeout-ms 5000] [--no-replies] [--server-pid PID]\n"
               "  [--sender-base 966500000000] [--texts 'a|b|c'] [--cycle-from 2]\n"
               "  [--path /webhooks/whatsapp]\n"
               "  [--connect-wait 15] [--dump-sends 0]\n",
               argv0);
  std::exit(EXIT_FAILURE);
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--target") {
      auto v = val();
      auto c = v.rfind(':');
      if (c == std::string::npos) usage(argv[0]);
      o.target_host = v.substr(0, c);
      o.target_port = static_cast<unsigned short>(std::atoi(v.c_str() + c + 1));
    } else if (a == "--path") o.path = val();
    else if (a == "--secret") o.secret = val();
    else if (a == "--token") o.token = val();
    else if (a == "--phone-number-id") o.phone_number_id = val();
    else if (a == "--fixture") o.fixture = val();
    else if (a == "--graph-port") o.graph_port = static_cast<unsigned short>(std::atoi(val().c_str()));
    else if (a == "--graph-threads") o.graph_threads = std::max(1, std::atoi(val().c_str()));
    else if (a == "--mode") o.mode = val();
    else if (a == "--connections") o.connections = std::max(1, std::atoi(val().c_str()));
    else if (a == "--conversations") o.conversations = std::max(1, std::atoi(val().c_str()));
    else if (a == "--warmup") o.warmup = std::atof(val().c_str());
    else if (a == "--duration") o.duration = std::atof(val().c_str());
    else if (a == "--drain") o.drain = std::atof(val().c_str());
    else if (a == "--count") o.count = std::atoll(val().c_str());
    else if (a == "--rate") o.rate = std::atof(val().c_str());
    else if (a == "--arrivals") o.poisson = val() != "uniform";
    else if (a == "--max-per-conversation") o.max_per_conversation = std::max(0, std::atoi(val().c_str()));
    else if (a == "--quiet-ms") o.quiet_ms = std::atof(val().c_str());
    else if (a == "--reply-timeout-ms") o.reply_timeout_ms = std::atof(val().c_str());
    else if (a == "--no-replies") o.expect_replies = false;
    else if (a == "--server-pid") o.server_pid = std::atol(val().c_str());
    else if (a == "--sender-base") o.sender_base = std::atoll(val().c_str());
    else if (a == "--texts") {
      o.texts.clear();
      std::string v = val(), cur;
      for (char ch : v) {
        if (ch == '|') {
          o.texts.push_back(cur);
          cur.clear();
        } else {
          cur.push_back(ch);
        }
      }
      o.texts.push_back(cur);
    } else if (a == "--connect-wait") o.connect_wait = std::atof(val().c_str());
    else if (a == "--cycle-from") o.cycle_from = std::max(0, std::atoi(val().c_str()));
    else if (a == "--dump-sends") o.dump_sends = std::atoi(val().c_str());
    else usage(argv[0]);
  }
  if (o.mode != "closed" && o.mode != "open") usage(argv[0]);
  // Bounded: no run longer than ten minutes, no drain longer than one.
  o.warmup = std::clamp(o.warmup, 0.0, 120.0);
  o.duration = std::clamp(o.duration, 0.1, 600.0);
  o.drain = std::clamp(o.drain, 0.0, 60.0);
  o.rate = std::clamp(o.rate, 0.1, 1e6);
  if (o.texts.empty()) o.texts = {"1"};
  o.cycle_from = std::min<int>(o.cycle_from, static_cast<int>(o.texts.size()) - 1);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Webhook bodies: the fixture, minified, with placeholders for the per-request fields.

class body_template {
 public:
  enum field { from, wamid, timestamp, text };

  body_template(const std::string& fixture_path, const std::string& phone_number_id) {
    std::ifstream f(fixture_path);
    if (!f) throw std::runtime_error("cannot read fixture " + fixture_path);
    auto j = nlohmann::json::parse(f);
    auto& value = j.at("entry").at(0).at("changes").at(0).at("value");
    value["metadata"]["phone_number_id"] = phone_number_id;
    value["contacts"][0]["wa_id"] = "@@FROM@@";
    value["contacts"][0]["profile"]["name"] = "Bench User";
    auto& m = value["messages"][0];
    m["from"] = "@@FROM@@";
    m["id"] = "@@WAMID@@";
    m["timestamp"] = "@@TS@@";
    m["type"] = "text";
    m["text"] = {{"body", "@@TEXT@@"}};
    std::string s = j.dump();
    const std::pair<const char*, field> marks[] = {
        {"\"@@FROM@@\"", from}, {"\"@@WAMID@@\"", wamid}, {"\"@@TS@@\"", timestamp}, {"\"@@TEXT@@\"", text}};
    std::size_t pos = 0;
    for (;;) {
      std::size_t best = std::string::npos;
      field which{};
      std::size_t len = 0;
      for (auto& [mark, fld] : marks) {
        auto p = s.find(mark, pos);
        if (p < best) {
          best = p;
          which = fld;
          len = std::strlen(mark);
        }
      }
      if (best == std::string::npos) {
        literals_.push_back(s.substr(pos));
        break;
      }
      literals_.push_back(s.substr(pos, best - pos));
      fields_.push_back(which);
      pos = best + len;
    }
  }

  /// Appends the body to `out`. Values are JSON strings already quoted/escaped.
  void render(std::string& out, const std::string (&values)[4]) const {
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      out += literals_[i];
      out += values[fields_[i]];
    }
    out += literals_.back();
  }

 private:
  std::vector<std::string> literals_;
  std::vector<field> fields_;
};

// ---------------------------------------------------------------------------------------------
// Shared state. Everything below `client` is touched only on the client thread (one thread runs
// client_ioc); the fake Graph API runs on its own io_context and posts each arrival over.

struct conversation {
  bool outstanding = false, acked = false, replied = false, measured = false;
  std::uint64_t seq = 0;
  std::int64_t t_sent = 0, t_sched = 0;
  int sent = 0;
};

struct graph_counters {
  std::atomic<std::uint64_t> sends{0}, reads{0}, other{0}, bad_auth{0}, bad_path{0}, unknown_to{0},
      connections{0}, dumped{0};
};

enum class phase { warmup, measure, drain, done };

struct window_stats {
  std::uint64_t sent = 0, acked = 0, first_replies = 0, reply_sends = 0, non200 = 0, io_errors = 0,
                missing_replies = 0, stray_replies = 0, no_idle_conversation = 0;
};

struct client {
  options opt;
  net::io_context& ioc;
  body_template body;
  aoun::bench::hmac_signer signer;
  std::string nonce;

  std::vector<conversation> convs;
  std::deque<std::pair<std::int64_t, int>> ready;   // (ready at, conversation), ready-at ascending
  std::deque<std::pair<int, std::int64_t>> jobs;    // open loop: (conversation, scheduled at)
  std::deque<net::steady_timer*> waiting;           // connections waiting for work
  std::uint64_t next_seq = 0;
  int exhausted = 0;                                // conversations that reached the per-conv limit
  int outstanding = 0;
  phase ph = phase::warmup;
  bool stop_sending = false;
  std::int64_t max_schedule_lag_ns = 0;

  window_stats total, win;                          // all, and within the measure window
  std::map<int, std::uint64_t> statuses;            // non-200 statuses seen
  std::vector<double> reply_us, ack_us;             // samples of webhooks sent in the window

  client(const options& o, net::io_context& c)
      : opt(o), ioc(c), body(o.fixture, o.phone_number_id), signer(o.secret), convs(o.conversations) {
    nonce = std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 100000000000LL);
    for (int i = 0; i < opt.conversations; ++i) ready.emplace_back(0, i);
  }

  bool counting() const { return ph == phase::measure; }

  void notify_one() {
    if (waiting.empty()) return;
    waiting.front()->cancel();
    waiting.pop_front();
  }
  void notify_all() {
    while (!waiting.empty()) notify_one();
  }

  const std::string& text_for(int k) const {
    const int n = static_cast<int>(opt.texts.size());
    if (k < n) return opt.texts[k];
    return opt.texts[opt.cycle_from + (k - n) % (n - opt.cycle_from)];
  }

  // The request for conversation `idx`'s next message; marks it in flight.
  std::string build_request(int idx, std::int64_t t_sched) {
    auto& c = convs[idx];
    c.outstanding = true;
    c.acked = c.replied = false;
    c.seq = ++next_seq;
    c.measured = counting();
    c.t_sched = t_sched;
    ++outstanding;
    std::string values[4];
    values[body_template::from] = "\"" + std::to_string(opt.sender_base + idx) + "\"";
    values[body_template::wamid] = "\"wamid.bench." + nonce + "." + std::to_string(c.seq) + "\"";
    values[body_template::timestamp] =
        "\"" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()) +
        "\"";
    values[body_template::text] = nlohmann::json(text_for(c.sent)).dump();
    ++c.sent;
    std::string b;
    b.reserve(1024);
    body.render(b, values);
    std::string req;
    req.reserve(b.size() + 300);
    req += "POST ";
    req += opt.path;
    req += " HTTP/1.1\r\nHost: ";
    req += opt.target_host + ":" + std::to_string(opt.target_port);
    req += "\r\nUser-Agent: facebookexternalua\r\nContent-Type: application/json\r\nX-Hub-Signature-256: ";
    req += signer.header_value(b);
    req += "\r\nContent-Length: ";
    req += std::to_string(b.size());
    req += "\r\n\r\n";
    req += b;
    total.sent++;
    if (c.measured) win.sent++;
    return req;
  }

  void finish(int idx) {
    auto& c = convs[idx];
    if (!c.outstanding) return;
    c.outstanding = false;
    --outstanding;
    if (opt.max_per_conversation > 0 && c.sent >= opt.max_per_conversation) {
      ++exhausted;
      return;
    }
    ready.emplace_back(now_ns() + static_cast<std::int64_t>(opt.quiet_ms * 1e6), idx);
    notify_one();
  }

  void on_ack(int idx, int status, std::int64_t t) {
    auto& c = convs[idx];
    if (status != 200) {
      total.non200++;
      if (counting()) win.non200++;
      statuses[status]++;
      finish(idx);
      return;
    }
    c.acked = true;
    total.acked++;
    if (counting()) win.acked++;
    if (c.measured) ack_us.push_back((t - c.t_sched) / 1e3);
    if (!opt.expect_replies || c.replied) finish(idx);
  }

  void on_io_error(int idx) {
    total.io_errors++;
    if (counting()) win.io_errors++;
    finish(idx);
  }

  // A message send reached the fake Graph API at `t` for conversation `idx`; `ctx_seq` is the
  // sequence number from context.message_id when the server replied in context, else 0.
  void on_reply(int idx, std::int64_t t, std::uint64_t ctx_seq) {
    total.reply_sends++;
    if (counting()) win.reply_sends++;
    auto& c = convs[idx];
    bool match = c.outstanding && !c.replied && (ctx_seq == 0 || ctx_seq == c.seq);
    if (!match) {
      total.stray_replies++;
      if (counting()) win.stray_replies++;
      return;
    }
    c.replied = true;
    total.first_replies++;
    if (counting()) win.first_replies++;
    if (c.measured) reply_us.push_back((t - c.t_sched) / 1e3);
    if (c.acked) finish(idx);
  }

  // Waits until a conversation is ready (closed loop) or a job is queued (open loop); -1 = stop.
  net::awaitable<std::pair<int, std::int64_t>> next_work(net::steady_timer& timer) {
    for (;;) {
      if (stop_sending) co_return std::pair{-1, std::int64_t{0}};
      const auto now = now_ns();
      std::int64_t wake = now + 50'000'000;  // re-check at least every 50 ms
      if (opt.mode == "open") {
        if (!jobs.empty()) {
          auto j = jobs.front();
          jobs.pop_front();
          co_return j;
        }
      } else if (!ready.empty()) {
        if (ready.front().first <= now) {
          int idx = ready.front().second;
          ready.pop_front();
          co_return std::pair{idx, now};
        }
        wake = std::min(wake, ready.front().first);
      }
      timer.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(wake - now, 1000)));
      waiting.push_back(&timer);
      co_await timer.async_wait(use_tuple);
      std::erase(waiting, &timer);
    }
  }

  net::awaitable<bool> connect(beast::tcp_stream& stream) {
    const auto give_up = now_ns() + static_cast<std::int64_t>(opt.connect_wait * 1e9);
    tcp::endpoint ep(net::ip::make_address(opt.target_host), opt.target_port);
    for (int attempt = 0; attempt < 1000 && !stop_sending; ++attempt) {
      stream.expires_after(std::chrono::seconds(5));
      auto [ec] = co_await stream.async_connect(ep, use_tuple);
      if (!ec) {
        stream.socket().set_option(tcp::no_delay(true));
        co_return true;
      }
      if (now_ns() > give_up) break;
      net::steady_timer t(ioc, std::chrono::milliseconds(100));
      co_await t.async_wait(use_tuple);
    }
    co_return false;
  }

  net::awaitable<void> connection() {
    net::steady_timer timer(ioc);
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    for (int reconnects = 0; reconnects < 10000;) {
      if (!stream) {
        stream.emplace(ioc);
        buffer.clear();
        if (!co_await connect(*stream)) {
          if (!stop_sending) std::fprintf(stderr, "cannot connect to %s:%u\n", opt.target_host.c_str(), opt.target_port);
          stop_sending = true;
          notify_all();
          co_return;
        }
      }
      auto [idx, t_sched] = co_await next_work(timer);
      if (idx < 0) break;
      const auto req = build_request(idx, t_sched);
      convs[idx].t_sent = now_ns();
      stream->expires_after(std::chrono::seconds(30));
      auto [wec, wn] = co_await net::async_write(*stream, net::buffer(req), use_tuple);
      if (wec) {
        on_io_error(idx);
        stream.reset();
        ++reconnects;
        continue;
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      auto [rec, rn] = co_await http::async_read(*stream, buffer, parser, use_tuple);
      if (rec) {
        on_io_error(idx);
        stream.reset();
        ++reconnects;
        continue;
      }
      on_ack(idx, parser.get().result_int(), now_ns());
      if (!parser.get().keep_alive()) {
        stream.reset();
        ++reconnects;
      }
    }
    if (stream) {
      boost::system::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
  }

  // Open loop: schedules arrivals at opt.rate until the window ends.
  net::awaitable<void> scheduler(std::int64_t end_ns) {
    std::mt19937_64 rng(12345);
    std::exponential_distribution<double> gap(opt.rate);
    net::steady_timer t(ioc);
    std::int64_t next = now_ns();
    const long long cap = static_cast<long long>(opt.rate * (opt.warmup + opt.duration) * 2 + 1000);
    for (long long n = 0; n < cap && !stop_sending; ++n) {
      next += static_cast<std::int64_t>((opt.poisson ? gap(rng) : 1.0 / opt.rate) * 1e9);
      if (next >= end_ns) break;
      const auto now = now_ns();
      if (next > now) {
        t.expires_after(std::chrono::nanoseconds(next - now));
        co_await t.async_wait(use_tuple);
      }
      max_schedule_lag_ns = std::max(max_schedule_lag_ns, now_ns() - next);
      if (!ready.empty() && ready.front().first <= now_ns()) {
        int idx = ready.front().second;
        ready.pop_front();
        jobs.emplace_back(idx, next);
        notify_one();
      } else {
        total.no_idle_conversation++;
        if (counting()) win.no_idle_conversation++;
      }
    }
  }

  // Releases conversations whose reply never came.
  net::awaitable<void> sweeper() {
    net::steady_timer t(ioc);
    const auto limit = static_cast<std::int64_t>(opt.reply_timeout_ms * 1e6);
    while (ph != phase::done) {
      t.expires_after(std::chrono::milliseconds(100));
      co_await t.async_wait(use_tuple);
      const auto now = now_ns();
      for (int i = 0; i < opt.conversations; ++i) {
        auto& c = convs[i];
        if (c.outstanding && c.acked && !c.replied && now - c.t_sent > limit) {
          total.missing_replies++;
          if (c.measured) win.missing_replies++;
          finish(i);
        }
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Fake Graph API.

// The string value of "key" in a flat search of `body` ("" if absent). Enough for the shapes
// channels/whatsapp.cpp renders; this is a benchmark stub, not a JSON parser.
std::string string_field(std::string_view body, std::string_view key, std::size_t from = 0) {
  std::string quoted = "\"" + std::string(key) + "\"";
  auto p = body.find(quoted, from);
  if (p == std::string_view::npos) return {};
  p += quoted.size();
  while (p < body.size() && (body[p] == ' ' || body[p] == ':')) ++p;
  if (p >= body.size() || body[p] != '"') return {};
  auto e = body.find('"', p + 1);
  if (e == std::string_view::npos) return {};
  return std::string(body.substr(p + 1, e - p - 1));
}

struct graph {
  const options& opt;
  net::io_context& client_ioc;
  client& cl;
  graph_counters n;
  std::atomic<std::uint64_t> next_id{0};
  std::string expected_auth;
  std::string nonce_prefix;

  graph(const options& o, net::io_context& cio, client& c)
      : opt(o), client_ioc(cio), cl(c), expected_auth("Bearer " + o.token),
        nonce_prefix("wamid.bench." + c.nonce + ".") {}

  http::response<http::string_body> handle(const http::request<http::string_body>& req, std::int64_t t) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::content_type, "application/json");
    std::string_view target(req.target().data(), req.target().size());
    const std::string suffix = "/" + opt.phone_number_id + "/messages";
    if (req.method() != http::verb::post || target.size() < 9 ||
        target.substr(target.size() - 9) != "/messages") {
      n.other++;
      res.result(http::status::not_found);
      res.body() = R"({"error":{"message":"unknown path","code":100}})";
      return res;
    }
    if (target.size() < suffix.size() || target.substr(target.size() - suffix.size()) != suffix) n.bad_path++;
    if (req[http::field::authorization] != expected_auth) n.bad_auth++;
    const std::string_view body = req.body();
    if (static_cast<int>(n.dumped.load()) < opt.dump_sends && n.dumped.fetch_add(1) < static_cast<std::uint64_t>(opt.dump_sends))
      std::fprintf(stderr, "graph <- POST %.*s %.*s\n", static_cast<int>(target.size()), target.data(),
                   static_cast<int>(body.size()), body.data());
    if (string_field(body, "status") == "read") {
      n.reads++;
      res.body() = R"({"success":true})";
      return res;
    }
    std::string to = string_field(body, "to");
    std::string digits;
    for (char ch : to)
      if (ch >= '0' && ch <= '9') digits.push_back(ch);
    // As long as Meta's (~60 characters), so no code path gets away with a short-string buffer.
    char id[64];
    std::snprintf(id, sizeof id, "wamid.HBgMOTY2NTAwMDAwMDAwFQIAERgSQkVOQ0hGQUtF%016llX",
                  static_cast<unsigned long long>(++next_id));
    res.body() = R"({"messaging_product":"whatsapp","contacts":[{"input":")" + to + R"(","wa_id":")" + digits +
                 R"("}],"messages":[{"id":")" + std::string(id) + R"("}]})";
    n.sends++;
    long long number = digits.empty() || digits.size() > 18 ? -1 : std::atoll(digits.c_str());
    long long idx = number - opt.sender_base;
    if (number < 0 || idx < 0 || idx >= opt.conversations) {
      n.unknown_to++;
      return res;
    }
    std::uint64_t ctx_seq = 0;
    auto ctx = body.find("\"context\"");
    if (ctx != std::string_view::npos) {
      auto mid = string_field(body, "message_id", ctx);
      if (mid.rfind(nonce_prefix, 0) == 0) ctx_seq = std::strtoull(mid.c_str() + nonce_prefix.size(), nullptr, 10);
    }
    net::post(client_ioc, [&c = cl, i = static_cast<int>(idx), t, ctx_seq] { c.on_reply(i, t, ctx_seq); });
    return res;
  }

  net::awaitable<void> session(tcp::socket socket) {
    n.connections++;
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    buffer.reserve(8 * 1024);  // a request in one read (see bot/http_server.cpp)
    std::string wire;
    for (int i = 0; i < 100'000'000; ++i) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      stream.expires_after(std::chrono::seconds(120));
      auto [ec, nr] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec) break;
      const auto t = now_ns();
      auto res = handle(parser.get(), t);
      // One buffer, as the server writes its own: Beast's serializer walks a buffer sequence per
      // header field, which made the fake provider, sharing the cores, cost more than it must.
      wire.clear();
      wire += "HTTP/1.1 ";
      wire += std::to_string(res.result_int());
      wire += res.result() == http::status::ok ? " OK" : " Not Found";
      wire += "\r\nContent-Type: application/json\r\nContent-Length: ";
      wire += std::to_string(res.body().size());
      wire += res.keep_alive() ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
      wire += res.body();
      auto [wec, wn] = co_await net::async_write(stream, net::buffer(wire), use_tuple);
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  net::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      auto ex = socket.get_executor();
      net::co_spawn(ex, session(std::move(socket)), [](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            std::fprintf(stderr, "graph session failed: %s\n", x.what());
          }
        }
      });
    }
  }
};

double rusage_cpu_us() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

void rethrow_if(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  const options opt = parse_args(argc, argv);

  net::io_context client_ioc(1);
  net::io_context graph_ioc(opt.graph_threads);
  std::unique_ptr<client> cl;
  try {
    cl = std::make_unique<client>(opt, client_ioc);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return EXIT_FAILURE;
  }
  graph g(opt, client_ioc, *cl);

  tcp::acceptor acceptor(graph_ioc);
  tcp::endpoint gep(net::ip::make_address("127.0.0.1"), opt.graph_port);
  acceptor.open(gep.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  boost::system::error_code bec;
  acceptor.bind(gep, bec);
  if (bec) {
    std::fprintf(stderr, "fake graph api: cannot bind 127.0.0.1:%u: %s\n", opt.graph_port, bec.message().c_str());
    return EXIT_FAILURE;
  }
  acceptor.listen(net::socket_base::max_listen_connections);
  std::printf("fake graph api on http://127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  net::co_spawn(graph_ioc, g.accept_loop(acceptor), rethrow_if);
  auto graph_work = net::make_work_guard(graph_ioc);
  std::vector<std::thread> graph_threads;
  for (int i = 0; i < opt.graph_threads; ++i) graph_threads.emplace_back([&] { graph_ioc.run(); });

  // Results gathered by the controller.
  struct snapshot {
    std::int64_t t = 0;
    std::int64_t server_cpu_us = -1;
    double self_cpu_us = 0;
    long rss_kib = -1;
    std::pair<long long, long long> machine{0, 0};
  } s0, s1;
  long hwm_kib = -1, rss_after_drain_kib = -1;
  double window_s = 0;

  auto controller = [&]() -> net::awaitable<void> {
    auto& c = *cl;
    net::steady_timer t(client_ioc);
    const auto start = now_ns();
    const auto window_start = start + static_cast<std::int64_t>(opt.warmup * 1e9);
    const auto window_end = window_start + static_cast<std::int64_t>(opt.duration * 1e9);
    if (opt.mode == "open") net::co_spawn(client_ioc, c.scheduler(window_end), rethrow_if);
    net::co_spawn(client_ioc, c.sweeper(), rethrow_if);
    for (int i = 0; i < opt.connections; ++i) net::co_spawn(client_ioc, c.connection(), rethrow_if);

    // Warm-up, then the measured window.
    while (now_ns() < window_start && !c.stop_sending) {
      t.expires_after(std::chrono::milliseconds(5));
      co_await t.async_wait(use_tuple);
    }
    c.ph = phase::measure;
    s0 = {now_ns(), opt.server_pid ? aoun::bench::process_cpu_us(opt.server_pid) : -1, rusage_cpu_us(),
          opt.server_pid ? aoun::bench::process_status_kib(opt.server_pid, "VmRSS") : -1,
          aoun::bench::machine_jiffies()};
    for (;;) {
      if (c.stop_sending || now_ns() >= window_end) break;
      if (opt.count > 0 && static_cast<long long>(c.win.sent) >= opt.count) break;
      if (opt.max_per_conversation > 0 && c.exhausted >= opt.conversations) break;
      t.expires_after(std::chrono::milliseconds(2));
      co_await t.async_wait(use_tuple);
    }
    // With a per-conversation limit the window also covers the last replies.
    s1 = {now_ns(), opt.server_pid ? aoun::bench::process_cpu_us(opt.server_pid) : -1, rusage_cpu_us(),
          opt.server_pid ? aoun::bench::process_status_kib(opt.server_pid, "VmRSS") : -1,
          aoun::bench::machine_jiffies()};
    window_s = (s1.t - s0.t) / 1e9;
    c.ph = phase::drain;
    c.stop_sending = true;
    c.notify_all();
    const auto drain_end = now_ns() + static_cast<std::int64_t>(opt.drain * 1e9);
    while (c.outstanding > 0 && now_ns() < drain_end) {
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(use_tuple);
    }
    // Late replies that are still in flight count as missing.
    if (opt.server_pid) {
      rss_after_drain_kib = aoun::bench::process_status_kib(opt.server_pid, "VmRSS");
      hwm_kib = aoun::bench::process_status_kib(opt.server_pid, "VmHWM");
    }
    c.ph = phase::done;
    c.notify_all();
  };
  net::co_spawn(client_ioc, controller(), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "controller failed: %s\n", x.what());
      }
    }
  });
  client_ioc.run();

  graph_work.reset();
  graph_ioc.stop();
  for (auto& th : graph_threads) th.join();

  auto& c = *cl;
  const auto& w = c.win;
  const std::uint64_t unreplied_outstanding = static_cast<std::uint64_t>(c.outstanding);
  auto& ru = c.reply_us;
  auto& au = c.ack_us;
  std::sort(ru.begin(), ru.end());
  std::sort(au.begin(), au.end());
  using aoun::bench::percentile;
  const double acked_per_s = w.acked / window_s;
  const double e2e_per_s = (opt.expect_replies ? w.first_replies : w.acked) / window_s;
  const double sends_per_s = w.reply_sends / window_s;
  const bool server_seen = s0.server_cpu_us >= 0 && s1.server_cpu_us >= 0;
  const double server_cpu_per = (server_seen && w.acked > 0)
                                    ? static_cast<double>(s1.server_cpu_us - s0.server_cpu_us) / w.acked
                                    : -1;
  const double server_cores = server_seen ? (s1.server_cpu_us - s0.server_cpu_us) / (window_s * 1e6) : -1;
  const double self_cpu_per = w.acked > 0 ? (s1.self_cpu_us - s0.self_cpu_us) / w.acked : -1;
  // Cores busy on the whole machine, and what is left after the server and this program: other
  // processes sharing the machine (a noisy neighbour makes every figure worse).
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double machine_cores = (s1.machine.first - s0.machine.first) / hz / window_s;
  const double self_cores = (s1.self_cpu_us - s0.self_cpu_us) / 1e6 / window_s;
  const double other_cores = machine_cores - self_cores - std::max(0.0, server_cores);

  std::printf("mode %s, %d connections, %d conversations, window %.2f s%s\n", opt.mode.c_str(), opt.connections,
              opt.conversations, window_s, opt.mode == "open" ? (" at " + std::to_string(opt.rate) + "/s").c_str() : "");
  std::printf("webhooks sent %llu, answered 200 %llu (%.0f/s), non-200 %llu, i/o errors %llu\n",
              (unsigned long long)w.sent, (unsigned long long)w.acked, acked_per_s, (unsigned long long)w.non200,
              (unsigned long long)w.io_errors);
  for (auto& [st, k] : c.statuses) std::printf("  status %d: %llu\n", st, (unsigned long long)k);
  if (opt.expect_replies)
    std::printf("end to end (first reply delivered) %llu (%.0f/s); message sends %llu (%.0f/s), strays %llu, "
                "missing replies %llu (+%llu still outstanding after drain)\n",
                (unsigned long long)w.first_replies, e2e_per_s, (unsigned long long)w.reply_sends, sends_per_s,
                (unsigned long long)w.stray_replies, (unsigned long long)c.total.missing_replies,
                (unsigned long long)unreplied_outstanding);
  std::printf("graph api: sends %llu, mark-read %llu, other %llu, bad auth %llu, bad path %llu, unknown to %llu, "
              "connections %llu\n",
              (unsigned long long)g.n.sends.load(), (unsigned long long)g.n.reads.load(),
              (unsigned long long)g.n.other.load(), (unsigned long long)g.n.bad_auth.load(),
              (unsigned long long)g.n.bad_path.load(), (unsigned long long)g.n.unknown_to.load(),
              (unsigned long long)g.n.connections.load());
  std::printf("webhook->200   ms: p50 %.3f p90 %.3f p99 %.3f max %.3f (n=%zu)\n", percentile(au, 50, true) / 1e3,
              percentile(au, 90, true) / 1e3, percentile(au, 99, true) / 1e3, au.empty() ? 0 : au.back() / 1e3,
              au.size());
  if (opt.expect_replies)
    std::printf("webhook->reply ms: p50 %.3f p90 %.3f p99 %.3f max %.3f (n=%zu)\n", percentile(ru, 50, true) / 1e3,
                percentile(ru, 90, true) / 1e3, percentile(ru, 99, true) / 1e3, ru.empty() ? 0 : ru.back() / 1e3,
                ru.size());
  if (opt.mode == "open")
    std::printf("open loop: max schedule lag %.3f ms, arrivals with no idle conversation %llu\n",
                c.max_schedule_lag_ns / 1e6, (unsigned long long)w.no_idle_conversation);
  if (opt.server_pid)
    std::printf("server pid %ld: cpu %.1f us/webhook (%.2f cores), VmRSS %.1f MiB -> %.1f MiB (after drain %.1f), "
                "VmHWM %.1f MiB\n",
                opt.server_pid, server_cpu_per, server_cores, s0.rss_kib / 1024.0, s1.rss_kib / 1024.0,
                rss_after_drain_kib / 1024.0, hwm_kib / 1024.0);
  std::printf("load generator: cpu %.1f us/webhook (%.2f cores); machine busy %.2f of %u cores, other processes "
              "%.2f cores\n",
              self_cpu_per, self_cores, machine_cores, std::thread::hardware_concurrency(), other_cores);
  std::printf(
      "RESULT mode=%s window_s=%.3f sent=%llu acked=%llu acked_per_s=%.1f e2e_per_s=%.1f sends_per_s=%.1f "
      "non200=%llu io_errors=%llu missing=%llu outstanding=%llu strays=%llu ack_p50_ms=%.3f ack_p99_ms=%.3f "
      "reply_p50_ms=%.3f reply_p90_ms=%.3f reply_p99_ms=%.3f reply_max_ms=%.3f server_cpu_us=%.1f "
      "server_cores=%.2f rss_mib=%.1f rss_drain_mib=%.1f hwm_mib=%.1f gen_cpu_us=%.1f graph_sends=%llu "
      "graph_reads=%llu bad_auth=%llu bad_path=%llu gen_cores=%.2f machine_cores=%.2f other_cores=%.2f\n",
      opt.mode.c_str(), window_s, (unsigned long long)w.sent, (unsigned long long)w.acked, acked_per_s, e2e_per_s,
      sends_per_s, (unsigned long long)w.non200, (unsigned long long)w.io_errors,
      (unsigned long long)c.total.missing_replies, (unsigned long long)unreplied_outstanding,
      (unsigned long long)w.stray_replies, percentile(au, 50, true) / 1e3, percentile(au, 99, true) / 1e3,
      percentile(ru, 50, true) / 1e3, percentile(ru, 90, true) / 1e3, percentile(ru, 99, true) / 1e3,
      ru.empty() ? 0 : ru.back() / 1e3, server_cpu_per, server_cores, s1.rss_kib / 1024.0,
      rss_after_drain_kib / 1024.0, hwm_kib / 1024.0, self_cpu_per, (unsigned long long)g.n.sends.load(),
      (unsigned long long)g.n.reads.load(), (unsigned long long)g.n.bad_auth.load(),
      (unsigned long long)g.n.bad_path.load(), self_cores, machine_cores, other_cores);
  std::fflush(stdout);
  return (w.acked > 0) ? EXIT_SUCCESS : EXIT_FAILURE;
}

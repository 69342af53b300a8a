// ws_channel over a real loopback WebSocket: what happens when the owner closes it while a
// write is still in flight (the reader saw the client leave while replies were going out).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "bot/ws_channel.hpp"

using namespace aoun::bot;

namespace {

// A client that completes the handshake and then reads nothing until told to, so that a large
// message stays in flight on the server side.
class lazy_client {
 public:
  explicit lazy_client(unsigned short port) {
    thread_ = std::thread([this, port] {
      net::io_context ioc;
      websocket::stream<tcp::socket> ws(ioc);
      boost::system::error_code ec;
      ws.next_layer().connect({net::ip::make_address("127.0.0.1"), port}, ec);
      if (!ec) ws.handshake("127.0.0.1", "/", ec);
      if (ec) {
        done_ = true;
        return;
      }
      connected_ = true;
      while (!start_reading_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ws.read_message_max(0);  // no limit: the test's own large message
      beast::flat_buffer buf;
      for (;;) {
        ws.read(buf, ec);
        if (ec) break;
        buf.consume(buf.size());
      }
      done_ = true;
    });
  }
  ~lazy_client() {
    start_reading_ = true;
    thread_.join();
  }
  void start_reading() { start_reading_ = true; }
  bool connected() const { return connected_; }
  bool done() const { return done_; }

 private:
  std::atomic<bool> connected_{false}, start_reading_{false}, done_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("ws_channel: close() during a write in flight cuts the write, and the channel and the process survive") {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
  lazy_client client(acceptor.local_endpoint().port());

  std::shared_ptr<ws_channel> ch;
  bool accepted = false;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(ioc), use_tuple);
        if (ec) co_return;
        ch = std::make_shared<ws_channel>(beast::tcp_stream(std::move(socket)));
        auto [aec] = co_await ch->ws().async_accept(use_tuple);
        accepted = !aec;
      },
      net::detached);
  ioc.run_for(std::chrono::seconds(10));
  REQUIRE(accepted);
  REQUIRE(ch);
  ioc.restart();

  // More than the loopback socket buffers hold, so the write cannot finish while the client
  // reads nothing; two more messages wait behind it in the queue.
  ch->send(std::string(32 * 1024 * 1024, 'a'));
  ch->send("second");
  ch->send("third");
  ioc.run_for(std::chrono::milliseconds(300));
  CHECK_FALSE(ioc.stopped());  // the write is still in flight

  ch->close();
  ch->send("after close");  // dropped
  // Everything completes: the cut write, and the drain that owned its message.
  ioc.run_for(std::chrono::seconds(10));
  CHECK(ioc.stopped());
  // Later sends and closes are dropped on the channel's executor.
  ioc.restart();
  ch->send("later");
  ch->close();
  ioc.run_for(std::chrono::seconds(2));
  CHECK(ioc.stopped());
  // The last owner lets go (the session's coroutine ends): the client sees the connection end.
  ch.reset();
  client.start_reading();
  for (int i = 0; i < 500 && !client.done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(client.done());
}

TEST_CASE("ws_channel: a client that reads nothing while frames pile up is cut off at the byte limit, not held") {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
  lazy_client client(acceptor.local_endpoint().port());
  std::shared_ptr<ws_channel> ch;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(ioc), use_tuple);
        if (ec) co_return;
        auto c = std::make_shared<ws_channel>(beast::tcp_stream(std::move(socket)));
        auto [aec] = co_await c->ws().async_accept(use_tuple);
        if (!aec) ch = c;
      },
      net::detached);
  ioc.run_for(std::chrono::seconds(10));
  REQUIRE(ch);
  ioc.restart();

  // A frame bigger than the byte limit fits an empty queue (a long history): it goes.
  ch->send(std::string(32 * 1024 * 1024, 'h'));
  // Frames then wait behind it, up to the limit: the channel stays open.
  const std::string frame(8 * 1024, 'f');
  const auto fit = ws_channel::queue_bytes_limit / frame.size() - 1;
  for (std::size_t i = 0; i < fit; ++i) ch->send(frame);
  ioc.run_for(std::chrono::milliseconds(300));
  CHECK_FALSE(ioc.stopped());  // still writing, nothing cut

  // One more than the limit holds: the socket is closed, and the stuck write with it.
  ch->send(frame);
  ch->send(frame);
  ioc.run_for(std::chrono::seconds(10));
  CHECK(ioc.stopped());
  ch.reset();
  client.start_reading();
  for (int i = 0; i < 500 && !client.done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(client.done());
}

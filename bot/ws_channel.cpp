#include "bot/ws_channel.hpp"

namespace aoun::bot {

void ws_channel::send_and_close(std::string payload) {
  net::post(ws_.get_executor(), [self = shared_from_this(), p = std::move(payload)]() mutable {
    if (self->closed_ || self->closing_) return;
    self->closing_ = true;  // the drain closes once it is done
    self->enqueue(std::move(p));
  });
}

void ws_channel::enqueue(std::string payload) {
  queued_bytes_ += payload.size();
  queue_.push_back(std::move(payload));
  if (writing_) return;
  writing_ = true;
  net::co_spawn(ws_.get_executor(), drain(), [self = shared_from_this()](std::exception_ptr) { self->writing_ = false; });
}

void ws_channel::send(std::string payload) {
  net::post(ws_.get_executor(), [self = shared_from_this(), p = std::move(payload)]() mutable {
    if (self->closed_ || self->closing_) return;
    // One frame always fits an empty queue (a long history may be bigger than the byte limit).
    if (self->queue_.size() >= queue_limit ||
        (!self->queue_.empty() && self->queued_bytes_ + p.size() > queue_bytes_limit)) {
      self->shut();
      return;
    }
    self->enqueue(std::move(p));
  });
}

net::awaitable<void> ws_channel::drain() {
  auto self = shared_from_this();
  while (!queue_.empty() && !closed_) {
    // The message being written belongs to this frame, not to the queue: close() may empty
    // the queue while the write is in flight (the reader saw the client leave), and the
    // write's buffer must outlive that.
    std::string message = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= message.size();
    ws_.text(true);
    auto [ec, n] = co_await ws_.async_write(net::buffer(message), use_tuple);
    if (ec) shut();
  }
  writing_ = false;
  if (closing_) shut();
}

void ws_channel::close() {
  net::post(ws_.get_executor(), [self = shared_from_this()] { self->shut(); });
}

void ws_channel::shut() {
  if (closed_) return;
  closed_ = true;
  queue_.clear();
  queued_bytes_ = 0;
  // Cancels the owner's pending read (and a write in flight); the owner's coroutine then ends.
  beast::get_lowest_layer(ws_).cancel();
}

}  // namespace aoun::bot

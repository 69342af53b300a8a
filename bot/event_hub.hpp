#pragma once
// Live events for WebSocket listeners (the staff console stream, web-chat visitors). Publishers
// call publish() after their transaction committed; each subscriber gets the events its filter
// accepts through its own callback, which must only post to the subscriber's executor.
//
// Thread-safe: the mutex is held only to copy the subscriber list (Beast chat-multi), callbacks
// run after it is released. A subscriber is dropped when its owner releases the handle.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aoun::bot {

struct event {
  std::string topic;    ///< "staff" (console stream) or "webchat:<session>" (one visitor)
  std::string payload;  ///< JSON text
};

class event_hub {
 public:
  using callback = std::function<void(const std::string& payload)>;
  struct subscription;
  /// Keep the returned handle alive for as long as events are wanted.
  std::shared_ptr<subscription> subscribe(std::string topic, callback cb);
  void publish(const event& e);
  void publish(const std::vector<event>& events);
  std::size_t subscribers() const;
  /// Whether anyone listens on `topic` now (cheap; a hint, races are harmless).
  bool has_subscribers(std::string_view topic) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<subscription>> subs_;  // GUARDED_BY(mutex_)
};

struct event_hub::subscription {
  std::string topic;
  callback cb;
};

}  // namespace aoun::bot

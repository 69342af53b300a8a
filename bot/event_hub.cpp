#include "bot/event_hub.hpp"

#include <algorithm>

namespace aoun::bot {

std::shared_ptr<event_hub::subscription> event_hub::subscribe(std::string topic, callback cb) {
  auto s = std::make_shared<subscription>(subscription{std::move(topic), std::move(cb)});
  std::lock_guard lock(mutex_);
  subs_.erase(std::remove_if(subs_.begin(), subs_.end(), [](auto& w) { return w.expired(); }), subs_.end());
  subs_.push_back(s);
  return s;
}

void event_hub::publish(const event& e) { publish(std::vector<event>{e}); }

void event_hub::publish(const std::vector<event>& events) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<subscription>> live;
  {
    std::lock_guard lock(mutex_);
    live.reserve(subs_.size());
    for (auto& w : subs_)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& e : events)
    for (auto& s : live)
      if (s->topic == e.topic) s->cb(e.payload);
}

std::size_t event_hub::subscribers() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::count_if(subs_.begin(), subs_.end(), [](auto& w) { return !w.expired(); }));
}

}  // namespace aoun::bot

namespace aoun::bot {
bool event_hub::has_subscribers(std::string_view topic) const {
  std::lock_guard lock(mutex_);
  for (auto& w : subs_)
    if (auto s = w.lock(); s && s->topic == topic) return true;
  return false;
}
}  // namespace aoun::bot

#include "bot/early_receipts.hpp"

#include "storage/outbox.hpp"

namespace aoun::bot {

std::string early_receipts::key(std::string_view channel, std::string_view provider_id) {
  std::string k;
  k.reserve(channel.size() + 1 + provider_id.size());
  k.append(channel).append(1, '\n').append(provider_id);
  return k;
}

void early_receipts::expire(clock::time_point now) {
  // Oldest first; an entry whose status a later receipt raised keeps its first time.
  while (!order_.empty() && (order_.front().first + keep_for_ <= now || entries_.size() > capacity_)) {
    // Only the entry this place was made for: a key forgotten and kept again has a later one.
    if (auto it = entries_.find(order_.front().second); it != entries_.end() && it->second.at == order_.front().first)
      entries_.erase(it);
    order_.pop_front();
  }
  // Keys forgotten already leave their place in order_ behind: drop them when they pile up.
  if (order_.size() > 2 * capacity_ + 16) {
    std::deque<std::pair<clock::time_point, std::string>> live;
    for (auto& o : order_)
      if (auto it = entries_.find(o.second); it != entries_.end() && it->second.at == o.first) live.push_back(std::move(o));
    order_ = std::move(live);
  }
  size_.store(entries_.size(), std::memory_order_relaxed);
}

void early_receipts::keep(std::string_view channel, std::string_view provider_id, receipt r, clock::time_point now) {
  if (capacity_ == 0 || storage::delivery_status_rank(r.status) == 0) return;
  std::lock_guard lock(mutex_);
  auto k = key(channel, provider_id);
  if (auto it = entries_.find(k); it != entries_.end()) {
    if (storage::delivery_status_rank(r.status) > storage::delivery_status_rank(it->second.r.status))
      it->second.r = std::move(r);
  } else {
    entries_.emplace(k, entry{std::move(r), now});
    order_.emplace_back(now, std::move(k));
  }
  expire(now);
}

std::optional<early_receipts::receipt> early_receipts::find(std::string_view channel, std::string_view provider_id) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key(channel, provider_id));
  if (it == entries_.end() || it->second.at + keep_for_ <= clock::now()) return std::nullopt;
  return it->second.r;
}

void early_receipts::forget(std::string_view channel, std::string_view provider_id) {
  std::lock_guard lock(mutex_);
  entries_.erase(key(channel, provider_id));
  size_.store(entries_.size(), std::memory_order_relaxed);
}

}  // namespace aoun::bot

#pragma once
// A bot::config from a fixed environment, for unit tests.
#include <map>
#include <optional>
#include <string>

#include "bot/config.hpp"

namespace aoun::bot::testing {

inline config config_from(const std::map<std::string, std::string>& env) {
  return load_config([&](const std::string& k) -> std::optional<std::string> {
    if (auto it = env.find(k); it != env.end()) return it->second;
    return std::nullopt;
  });
}

}  // namespace aoun::bot::testing

#pragma once
// Reads a file from tests/fixtures/channels as raw bytes.

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace aoun::test {

inline std::string fixture(const std::string& name) {
  std::ifstream in(std::string(AOUN_FIXTURES) + "/channels/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A form fixture is one line; the signature is over it without the trailing newline.
inline std::string form_fixture(const std::string& name) {
  std::string s = fixture(name);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

inline nlohmann::json json_fixture(const std::string& name) { return nlohmann::json::parse(fixture(name)); }

}  // namespace aoun::test

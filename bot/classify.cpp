// `aoun classify`: one message per line on stdin → one JSON object per line on stdout, using
// exactly the dialog engine's own understanding code (engine::classify).
#include <cstdlib>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "bot/app.hpp"
#include "bot/config.hpp"

namespace aoun::bot {

int run_classify(const config& cfg) {
  auto engine = app::load_engine(cfg);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto c = engine->classify(line);
    nlohmann::json j{{"text", line}, {"intent", c.intent}, {"topic", c.topic.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.topic)}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  std::cout.flush();
  return EXIT_SUCCESS;
}

}  // namespace aoun::bot

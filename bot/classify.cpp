#include <cstdlib>
#include <iostream>

#include "bot/config.hpp"

namespace aoun::bot {

// Filled in when the dialogs engine lands (issue 4): prints one JSON object per input line.
int run_classify(const config& cfg) {
  std::cerr << "aoun: classify: the dialogs engine is not built yet" << std::endl;
  return EXIT_FAILURE;
}

}  // namespace aoun::bot

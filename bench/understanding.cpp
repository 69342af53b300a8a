// Classifier accuracy on the labelled corpus tests/understanding/messages.tsv.
// Usage: bench_understanding [--via-cli path/to/aoun] [messages.tsv] [dialogs_dir] [locales_dir]
// With --via-cli the corpus goes through `aoun classify` (one line in, one JSON line out), the
// command SPEC §5 defines, instead of calling engine::classify in-process; figures must match.
// Prints accuracy overall / per split / per intent, and every misclassified line.
// A program, not a test: the figures go to docs/understanding.md.

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "dialogs/engine.hpp"

#ifndef AOUN_SOURCE_DIR
#define AOUN_SOURCE_DIR "."
#endif

namespace {
struct row {
  std::string text, intent, topic, split;
};
std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  for (;;) {
    auto j = line.find('\t', i);
    out.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  std::string cli;
  if (argc > 2 && std::string(argv[1]) == "--via-cli") {
    cli = argv[2];
    argv += 2;
    argc -= 2;
  }
  std::string src = AOUN_SOURCE_DIR;
  std::string tsv = argc > 1 ? argv[1] : src + "/tests/understanding/messages.tsv";
  std::string dialogs = argc > 2 ? argv[2] : src + "/dialogs";
  std::string locales = argc > 3 ? argv[3] : src + "/locales";
  aoun::dialogs::engine eng = [&] {
    try {
      return aoun::dialogs::engine::load(dialogs, locales, {});
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      std::exit(EXIT_FAILURE);
    }
  }();
  std::ifstream f(tsv);
  if (!f) {
    std::cerr << "cannot read " << tsv << "\n";
    return EXIT_FAILURE;
  }
  std::vector<row> rows;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto c = split_tabs(line);
    c.resize(4);
    rows.push_back({c[0], c[1], c[2], c[3]});
  }
  // Through the command line: every text on stdin, one JSON object per line back.
  std::vector<aoun::dialogs::classification> via_cli;
  if (!cli.empty()) {
    std::string in = "/tmp/aoun-understanding-" + std::to_string(::getpid()) + ".txt";
    {
      std::ofstream o(in);
      for (const auto& r : rows) o << r.text << "\n";
    }
    std::string cmd = "AOUN_HOME='" + src + "' '" + cli + "' classify < '" + in + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return EXIT_FAILURE;
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int rc = ::pclose(p);
    std::remove(in.c_str());
    std::size_t i = 0;
    while (i < out.size()) {
      auto j = out.find('\n', i);
      if (j == std::string::npos) j = out.size();
      auto js = nlohmann::json::parse(out.substr(i, j - i), nullptr, false);
      if (!js.is_discarded())
        via_cli.push_back({js.value("intent", ""), js["topic"].is_string() ? js["topic"].get<std::string>() : ""});
      i = j + 1;
    }
    if (rc != 0 || via_cli.size() != rows.size()) {
      std::cerr << "aoun classify failed or returned " << via_cli.size() << " lines for " << rows.size() << "\n";
      return EXIT_FAILURE;
    }
    std::printf("classified through: %s classify\n", cli.c_str());
  }
  struct tally {
    int n = 0, ok = 0;
  };
  std::map<std::string, tally> by_split, by_intent_heldout, by_intent_all;
  std::vector<std::string> wrong;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const auto& r = rows[k];
    auto got = cli.empty() ? eng.classify(r.text) : via_cli[k];
    bool ok = got.intent == r.intent && (r.intent != "inquiry" || got.topic == r.topic);
    for (auto* m : {&by_split}) {
      (*m)[r.split].n++;
      (*m)[r.split].ok += ok;
      (*m)["all"].n++;
      (*m)["all"].ok += ok;
    }
    by_intent_all[r.intent].n++;
    by_intent_all[r.intent].ok += ok;
    if (r.split == "heldout") {
      by_intent_heldout[r.intent].n++;
      by_intent_heldout[r.intent].ok += ok;
    }
    if (!ok)
      wrong.push_back(r.split + "\t" + r.text + "\texpected " + r.intent + (r.topic.empty() ? "" : "/" + r.topic) +
                      "\tgot " + got.intent + (got.topic.empty() ? "" : "/" + got.topic));
  }
  auto pct = [](const tally& t) { return t.n ? 100.0 * t.ok / t.n : 0.0; };
  std::printf("messages: %zu\n", rows.size());
  for (const char* s : {"all", "tune", "heldout"})
    std::printf("accuracy %-8s %5.1f%% (%d/%d)\n", s, pct(by_split[s]), by_split[s].ok, by_split[s].n);
  std::printf("\nper intent        held-out          all\n");
  for (const auto& [intent, t] : by_intent_all)
    std::printf("%-16s %5.1f%% (%2d/%2d)  %5.1f%% (%2d/%2d)\n", intent.c_str(), pct(by_intent_heldout[intent]),
                by_intent_heldout[intent].ok, by_intent_heldout[intent].n, pct(t), t.ok, t.n);
  std::printf("\nmisclassified (split, text, expected, got):\n");
  for (const auto& w : wrong) std::printf("%s\n", w.c_str());
  return 0;
}

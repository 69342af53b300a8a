// Benchmark (not a test): CPU time of one dialog turn as the database writer runs it in
// bot/conversation_ops.cpp handle_inbound: state::parse of the stored state, engine::step,
// state::serialize of the next state. The script is the webhook benchmark's
// (bench/webhook/load.cpp): "السلام عليكم", "1", "2", "1", "القائمة", then "2", "1", "القائمة"
// round and round, over WhatsApp. Conversations take turns, as they do on the server.
// Also times engine::is_danger (which bot/ calls in staff mode) and engine::text on the same texts.
//
//   build/bench/bench_dialog_step [conversations=1000] [turns=20] [rounds=5] [dialogs_dir] [locales_dir]
//
// Prints the best round's µs per turn, split into parse / step / serialize, and a checksum of
// the replies so that two builds can be compared for the same output.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "dialogs/engine.hpp"

#ifndef AOUN_SOURCE_DIR
#define AOUN_SOURCE_DIR "."
#endif

using clk = std::chrono::steady_clock;

namespace {

const std::vector<std::string> script = {"السلام عليكم", "1", "2", "1", "القائمة"};
constexpr std::size_t cycle_from = 2;

const std::string& text_for(std::size_t turn) {
  if (turn < script.size()) return script[turn];
  return script[cycle_from + (turn - script.size()) % (script.size() - cycle_from)];
}

double us(clk::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// FNV-1a over the replies and states, so a faster build can be checked against a slower one.
void mix(std::uint64_t& h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
}

struct round_result {
  double parse = 0, step = 0, serialize = 0, total = 0;
  std::uint64_t checksum = 14695981039346656037ULL;
};

round_result one_round(const aoun::dialogs::engine& eng, std::size_t conversations, std::size_t turns) {
  using namespace aoun::dialogs;
  std::vector<std::string> stored(conversations);  // conversations.dialog_state, "" at first
  round_result r;
  std::int64_t now = 1'780'000'000;
  context ctx;
  ctx.channel = "whatsapp";
  ctx.within_working_hours = true;
  clk::duration p{}, s{}, z{};
  for (std::size_t t = 0; t < turns; ++t) {
    input in;
    in.type = input::kind::text;
    in.text = text_for(t);
    for (std::size_t c = 0; c < conversations; ++c) {
      ctx.now = ++now;
      ctx.channel_phone = "9665" + std::to_string(10000000 + c);
      auto t0 = clk::now();
      state st = state::parse(stored[c]);
      auto t1 = clk::now();
      step_result res = eng.step(st, in, ctx);
      auto t2 = clk::now();
      stored[c] = res.next.serialize();
      auto t3 = clk::now();
      p += t1 - t0;
      s += t2 - t1;
      z += t3 - t2;
      for (const auto& rep : res.replies) {
        mix(r.checksum, rep.text);
        for (const auto& ch : rep.choices) mix(r.checksum, ch.id + ch.title + ch.description);
      }
      for (const auto& e : res.effects) mix(r.checksum, e.type + e.data.dump());
      mix(r.checksum, stored[c]);
    }
  }
  double n = static_cast<double>(conversations * turns);
  r.parse = us(p) / n;
  r.step = us(s) / n;
  r.serialize = us(z) / n;
  r.total = r.parse + r.step + r.serialize;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t conversations = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  std::size_t turns = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  std::string src = AOUN_SOURCE_DIR;
  std::string dialogs = argc > 4 ? argv[4] : src + "/dialogs";
  std::string locales = argc > 5 ? argv[5] : src + "/locales";
  if (conversations == 0 || turns == 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: %s [conversations>0] [turns>0] [rounds>0] [dialogs_dir] [locales_dir]\n", argv[0]);
    return EXIT_FAILURE;
  }
  aoun::dialogs::engine eng = [&] {
    try {
      return aoun::dialogs::engine::load(dialogs, locales, {});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      std::exit(EXIT_FAILURE);
    }
  }();

  std::printf("dialog turn: %zu conversations x %zu turns, best of %d rounds\n", conversations, turns, rounds);
  round_result best;
  best.total = 1e300;
  for (int i = 0; i < rounds; ++i) {
    auto r = one_round(eng, conversations, turns);
    std::printf("  round %d: %6.2f us/turn (parse %5.2f, step %5.2f, serialize %5.2f)  checksum %016llx\n", i + 1,
                r.total, r.parse, r.step, r.serialize, static_cast<unsigned long long>(r.checksum));
    if (r.total < best.total) best = r;
  }
  std::printf("best:      %6.2f us/turn (parse %5.2f, step %5.2f, serialize %5.2f)\n", best.total, best.parse,
              best.step, best.serialize);

  // The other per-message calls bot/ makes: is_danger (staff mode) and a locale text.
  std::size_t sink = 0;
  const std::size_t n = 200'000;
  double danger_best = 1e300, text_best = 1e300;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = clk::now();
    for (std::size_t k = 0; k < n; ++k) sink += eng.is_danger(text_for(k % 8));
    auto t1 = clk::now();
    for (std::size_t k = 0; k < n; ++k) sink += eng.text(k % 2 ? "ar" : "en", "danger").size();
    auto t2 = clk::now();
    danger_best = std::min(danger_best, us(t1 - t0) / n);
    text_best = std::min(text_best, us(t2 - t1) / n);
  }
  std::printf("is_danger: %6.3f us/call; text(\"danger\"): %6.3f us/call  (sink %zu)\n", danger_best, text_best,
              sink);
  return 0;
}

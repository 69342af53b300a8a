// Benchmark (not a test): microseconds per call of the WhatsApp codec functions that run on the
// hot webhook path (parse, verify_signature) and once per reply (render, interpret). Each figure
// is the median of `rounds` rounds of `iterations` calls on one thread.
//
//   build/bench/bench_channels_codec [iterations=20000] [rounds=7] [fixtures_dir]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "channels/whatsapp.hpp"

#ifndef AOUN_FIXTURES
#define AOUN_FIXTURES "tests/fixtures"
#endif

using namespace aoun::channels;
using clk = std::chrono::steady_clock;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Keeps the optimizer from dropping the calls: every result feeds this.
volatile std::size_t sink = 0;

template <class F>
double micros_per_call(long iterations, int rounds, F&& f) {
  for (long i = 0; i < iterations / 10 + 1; ++i) sink = sink + f();  // warm-up
  std::vector<double> per_call;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = clk::now();
    for (long i = 0; i < iterations; ++i) sink = sink + f();
    per_call.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / iterations);
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

void report(const char* name, double us) { std::printf("%-34s %8.3f us/call  (%9.0f calls/s)\n", name, us, 1e6 / us); }

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 20000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 7;
  const std::string dir = std::string(argc > 3 ? argv[3] : AOUN_FIXTURES) + "/channels/";

  const std::string webhook = read_file(dir + "whatsapp_text.json");
  const std::string signature = "sha256=1c041e1c07f50386213ac582d2e17d24d70f1ed42949a6e5a5607057b805b5fc";
  const std::string response = read_file(dir + "whatsapp_send_response.json");
  const whatsapp::config cfg{"vt", "test_app_secret", "TOKEN", "106540352242922", "https://graph.facebook.com/v21.0"};

  // Sanity: the figures mean nothing if the calls fail.
  if (!whatsapp::parse(webhook).ok || !whatsapp::verify_signature(webhook, signature, cfg.app_secret) ||
      whatsapp::interpret(200, response, "").outcome != send_outcome::sent) {
    std::fprintf(stderr, "sanity check failed\n");
    return 1;
  }

  outgoing text;
  text.to = "966501234567";
  text.text = "مرحباً بك في عون. سنساعدك في تقديم طلبك، فضلاً اكتب اسمك الكامل كما في الهوية.";
  text.reply_to = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";

  outgoing buttons;
  buttons.to = "966501234567";
  buttons.text = "كيف يمكننا مساعدتك اليوم؟ اختر أحد الخيارات:";
  buttons.choices = {{"legal_aid", "استشارة قانونية", ""}, {"case_status", "حالة طلبي", ""},
                     {"talk_to_staff", "التحدث مع موظف", ""}};

  std::printf("whatsapp_text.json: %zu bytes; %ld calls x %d rounds (median)\n", webhook.size(), iterations, rounds);
  report("whatsapp::parse (text webhook)",
         micros_per_call(iterations, rounds, [&] { return whatsapp::parse(webhook).events.size(); }));
  report("whatsapp::verify_signature",
         micros_per_call(iterations, rounds,
                         [&] { return std::size_t(whatsapp::verify_signature(webhook, signature, cfg.app_secret)); }));
  report("whatsapp::render (text reply)",
         micros_per_call(iterations, rounds, [&] { return whatsapp::render(text, cfg).body.size(); }));
  report("whatsapp::render (3 buttons)",
         micros_per_call(iterations, rounds, [&] { return whatsapp::render(buttons, cfg).body.size(); }));
  report("whatsapp::interpret (200)",
         micros_per_call(iterations, rounds,
                         [&] { return whatsapp::interpret(200, response, "").provider_message_id.size(); }));
  return 0;
}

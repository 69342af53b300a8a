// Every parser that reads provider bytes, fed the official samples broken in every way we could
// think of: cut at each byte, bytes flipped, inserted and removed at random (fixed seed), and,
// for JSON, every value in the document swapped for a value of another type. A signed payload
// still reaches these parsers whatever is in it, so they must answer with a value or an error,
// never throw or crash (the sanitizer build runs this too), and what they hand on must keep the
// promises bot/ relies on.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "channels/crypto.hpp"
#include "channels/sms.hpp"
#include "channels/telegram.hpp"
#include "channels/whatsapp.hpp"
#include "tests/unit/channels/fixture.hpp"

using namespace aoun::channels;
using aoun::test::fixture;
using aoun::test::form_fixture;
using nlohmann::json;

namespace {

// The bytes every variant of a sample is made from.
std::vector<std::string> byte_variants(const std::string& sample, std::uint64_t seed, int random_count) {
  std::vector<std::string> out;
  for (std::size_t n = 0; n <= sample.size(); ++n) out.push_back(sample.substr(0, n));
  std::mt19937_64 rng(seed);
  const std::string specials = "{}[]\":,\\ \x00\xff\xc3\xd8%+=&0-9.eE";
  for (int i = 0; i < random_count; ++i) {
    std::string s = sample;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      const std::size_t at = rng() % s.size();
      const char c = (rng() % 2) ? specials[rng() % specials.size()] : static_cast<char>(rng() & 0xff);
      switch (rng() % 4) {
        case 0: s[at] = c; break;
        case 1: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 2: s.erase(at, 1 + rng() % 8); break;
        default: s.insert(at, s.substr(at, std::min<std::size_t>(s.size() - at, 1 + rng() % 32))); break;
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// The sample with one value at a time (objects, arrays and leaves alike) replaced by each of a
// set of values of other types.
std::vector<std::string> json_variants(const std::string& sample) {
  const json doc = json::parse(sample);
  const std::vector<json> swaps{nullptr, true, 0, -1, 1.5, 1e300, 18446744073709551615ULL, "", "x",
                                json::array(), json::array({1, "a"}), json::object(), json{{"id", 1}}};
  std::vector<std::string> out;
  std::vector<json::json_pointer> paths;
  std::function<void(const json&, const json::json_pointer&)> walk = [&](const json& j, const json::json_pointer& p) {
    paths.push_back(p);
    if (j.is_object())
      for (auto it = j.begin(); it != j.end(); ++it) walk(it.value(), p / it.key());
    else if (j.is_array())
      for (std::size_t i = 0; i < j.size(); ++i) walk(j[i], p / i);
  };
  walk(doc, json::json_pointer());
  for (const auto& p : paths) {
    for (const auto& v : swaps) {
      json d = doc;
      d[p] = v;
      out.push_back(d.dump());
    }
    if (!p.empty()) {  // and the member or element removed
      json d = doc;
      const auto parent = p.parent_pointer();
      if (d[parent].is_object()) d[parent].erase(p.back());
      else d[parent].erase(static_cast<std::size_t>(std::stoul(p.back())));
      out.push_back(d.dump());
    }
  }
  return out;
}

// What bot/ relies on in a parse result, whatever the input was.
void check_result(const parse_result& r, kind channel) {
  if (!r.ok) {
    CHECK_FALSE(r.error.empty());
    CHECK(r.events.empty());
    return;
  }
  CHECK(r.error.empty());
  for (const auto& e : r.events) {
    CAPTURE(e.raw_type);
    CHECK(e.channel == channel);
    if (e.type == inbound_type::status) {
      CHECK_FALSE(e.status_for.empty());  // the status of which of our messages
      CHECK_FALSE(e.status.empty());  // the four we rank, or the provider's own word (ignored)
    }
    if (e.type == inbound_type::choice) CHECK_FALSE(e.choice_id.empty());
    if (e.type == inbound_type::media) CHECK_FALSE(e.media_id.empty());
  }
}

struct counts {
  std::size_t inputs = 0, accepted = 0;
};

counts sweep(const std::vector<std::string>& inputs, const std::function<parse_result(std::string_view)>& parse,
             kind channel) {
  counts n;
  for (const auto& in : inputs) {
    parse_result r;
    CHECK_NOTHROW(r = parse(in));
    check_result(r, channel);
    ++n.inputs;
    n.accepted += r.ok ? 1 : 0;
  }
  return n;
}

const char* const whatsapp_samples[] = {
    "whatsapp_text.json",          "whatsapp_button_reply.json",     "whatsapp_list_reply.json",
    "whatsapp_location.json",      "whatsapp_image.json",            "whatsapp_document.json",
    "whatsapp_status_sent.json",   "whatsapp_status_delivered.json", "whatsapp_status_read.json",
    "whatsapp_status_failed.json",
};
const char* const telegram_samples[] = {
    "telegram_message.json", "telegram_callback_query.json", "telegram_callback_query_message.json",
    "telegram_contact.json", "telegram_photo.json",          "telegram_document.json",
};
const char* const twilio_samples[] = {
    "twilio_inbound.txt", "twilio_inbound_mms.txt", "twilio_status_delivered.txt", "twilio_status_undelivered.txt"};

// Each sample, still accepted whole, then broken: the sweep must reach past the envelope checks
// (some broken variants are still accepted) and be refused sometimes.
template <std::size_t N>
void sweep_samples(const char* const (&names)[N], const std::function<parse_result(std::string_view)>& parse,
                   kind channel, std::uint64_t seed, int random_count, bool form) {
  for (const char* name : names) {
    const std::string file = name;
    CAPTURE(file);
    const std::string sample = form ? form_fixture(file) : fixture(file);
    REQUIRE(parse(sample).ok);
    auto a = sweep(byte_variants(sample, seed++, random_count), parse, channel);
    CHECK(a.accepted > 0);
    CHECK(a.accepted < a.inputs);
    if (form) continue;
    auto b = sweep(json_variants(sample), parse, channel);
    CHECK(b.accepted > 0);
    CHECK(b.accepted < b.inputs);
  }
}

}  // namespace

TEST_CASE("mutation: WhatsApp webhooks, every official sample broken every way") {
  sweep_samples(whatsapp_samples, [](std::string_view b) { return whatsapp::parse(b); }, kind::whatsapp, 1, 1500, false);
}

TEST_CASE("mutation: Telegram updates, every official sample broken every way") {
  sweep_samples(telegram_samples, telegram::parse, kind::telegram, 100, 1500, false);
}

TEST_CASE("mutation: Twilio form bodies, every official sample broken every way") {
  sweep_samples(twilio_samples, sms::parse_twilio, kind::sms, 200, 3000, true);
}

TEST_CASE("mutation: Unifonic delivery receipts, as form and as JSON, broken every way") {
  const char* const form_samples[] = {"unifonic_dlr.txt"};
  sweep_samples(form_samples, [](std::string_view b) { return sms::parse_unifonic_dlr("application/x-www-form-urlencoded", b, ""); },
                kind::sms, 300, 3000, true);
  // The same receipt in the query string (an empty body), and as a JSON object.
  const auto query = [](std::string_view q) { return sms::parse_unifonic_dlr("", "", q); };
  auto q = sweep(byte_variants(form_fixture("unifonic_dlr.txt"), 301, 2000), query, kind::sms);
  CHECK(q.accepted > 0);
  CHECK(q.accepted < q.inputs);
  json doc = json::object();
  for (const auto& [k, v] : crypto::parse_form(form_fixture("unifonic_dlr.txt"))) doc[k] = v;
  const std::string sample = doc.dump();
  const auto as_json = [](std::string_view b) { return sms::parse_unifonic_dlr("application/json", b, ""); };
  REQUIRE(as_json(sample).ok);
  for (const auto& inputs : {byte_variants(sample, 302, 3000), json_variants(sample)}) {
    auto n = sweep(inputs, as_json, kind::sms);
    CHECK(n.accepted > 0);
    CHECK(n.accepted < n.inputs);
  }
}

TEST_CASE("mutation: provider answers to our sends never throw, and a 2xx is always sent") {
  struct answer {
    const char* file;
    std::function<send_result(int, std::string_view)> interpret;
  };
  const std::vector<answer> answers{
      {"whatsapp_send_response.json", [](int st, std::string_view b) { return whatsapp::interpret(st, b, ""); }},
      {"whatsapp_error_response.json", [](int st, std::string_view b) { return whatsapp::interpret(st, b, ""); }},
      {"telegram_ok_response.json", [](int st, std::string_view b) { return telegram::interpret(st, b, ""); }},
      {"telegram_error_429.json", [](int st, std::string_view b) { return telegram::interpret(st, b, ""); }},
      {"twilio_send_response.json",
       [](int st, std::string_view b) { return sms::interpret(sms::gateway::twilio, st, b, ""); }},
      {"twilio_error_response.json",
       [](int st, std::string_view b) { return sms::interpret(sms::gateway::twilio, st, b, ""); }},
  };
  std::uint64_t seed = 300;
  for (const auto& a : answers) {
    const std::string file = a.file;
    CAPTURE(file);
    const std::string sample = fixture(file);
    auto inputs = byte_variants(sample, seed++, 500);
    auto typed = json_variants(sample);
    inputs.insert(inputs.end(), typed.begin(), typed.end());
    for (const auto& body : inputs) {
      for (int status : {200, 201, 400, 429, 500}) {
        send_result r;
        CHECK_NOTHROW(r = a.interpret(status, body));
        // Whatever the body says, a 2xx may have delivered the message: resending it would
        // risk a duplicate (docs/channels.md).
        CAPTURE(status);
        CAPTURE(body);
        // (Telegram's `"ok": false` is the one answer that says it was not sent.)
        const bool says_failed = file.rfind("telegram", 0) == 0 && [&] {
          const auto j = json::parse(body, nullptr, false);
          return j.is_object() && j.contains("ok") && j["ok"] == false;
        }();
        if (status < 300 && !says_failed) CHECK(r.outcome == send_outcome::sent);
        else CHECK(r.outcome != send_outcome::sent);
        CHECK(r.retry_after.count() >= 0);
      }
    }
  }
}

TEST_CASE("mutation: deep nesting is an error, not a stack overflow") {
  for (std::size_t depth : {64u, 10'000u, 1'000'000u}) {
    const std::string deep = std::string(depth, '[') + std::string(depth, ']');
    const std::string in_object =
        R"({"object":"whatsapp_business_account","entry":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
    CHECK_FALSE(whatsapp::parse(deep).ok);
    CHECK_NOTHROW(whatsapp::parse(in_object));
    CHECK_FALSE(telegram::parse(deep).ok);
    send_result r;
    CHECK_NOTHROW(r = whatsapp::interpret(200, deep, ""));
    CHECK(r.outcome == send_outcome::sent);
  }
}

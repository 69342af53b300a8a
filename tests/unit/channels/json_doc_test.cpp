// Boost.JSON reading of untrusted payloads (channels/detail/json_doc): it must accept and reject
// exactly what nlohmann did before it, and give the same values.
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "channels/detail/json_doc.hpp"
#include "channels/whatsapp.hpp"
#include "tests/unit/channels/fixture.hpp"

using namespace aoun::channels;
using aoun::test::fixture;
using nlohmann::json;

namespace {

bool accepts(std::string_view body) {
  detail::json_doc doc;
  return doc.parse(body);
}

}  // namespace

TEST_CASE("json_doc: accepts and rejects what nlohmann accepts and rejects") {
  const std::vector<std::string> inputs = {
      "", " ", "{}", "[]", "null", "0", "-0", "01", "1.", ".5", "1e5", "1E+5", "-1e-5", "1e400", "-1e400",
      "[1e400]", "1e-400", "5e-324", "18446744073709551616", "-9223372036854775809", "\"a\"", "\"\\u0000\"",
      "\"\\ud83d\\ude00\"", "\"\\x\"", "\"a\x01\"", "\"\xff\"", "\"\xc0\x80\"",
      "\"\xed\xa0\x80\"", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{} {}", "{} x", "{}  \n\t", "/*c*/{}", "tru",
      "\xEF\xBB\xBF{}", "\xEF\xBB{}", "{\"a\":1,\"a\":2}", "1e99999999999", "1e-99999999999",
      "0e99999999999", "[-5e-2147483649, 1]", "\"1e99999999999\"", "[0.5e99999999999]", "NaN", "Infinity"};
  for (const auto& in : inputs) {
    CAPTURE(in);
    CHECK(accepts(in) == !json::parse(in, nullptr, false).is_discarded());
  }
}

TEST_CASE("json_doc: values are nlohmann's, numbers exactly") {
  const std::string body =
      R"({"lat":37.4611978,"lon":-122.2164385,"x":0.1,"inexact":77.793315605466394,"tiny":5e-324,"under":-1e-400,"zero":-0e99999999999,)"
      R"("huge":18446744073709551616,"neg":-9223372036854775808,"u":18446744073709551615,"s":"ثانية",)"
      R"("dup":1,"dup":"last","ts":"1749416383","deep":)" +
      std::string(20000, '[') + std::string(20000, ']') + "}";
  detail::json_doc doc;
  REQUIRE(doc.parse(body));
  const json ref = json::parse(body);
  const auto* root = &doc.root();
  for (const char* k : {"lat", "lon", "x", "inexact", "tiny", "under", "zero", "huge", "neg", "u"}) {
    CAPTURE(k);
    const double want = ref[k].get<double>();
    const auto got = detail::number_member(root, k);
    REQUIRE(got);
    CHECK(std::signbit(*got) == std::signbit(want));
    CHECK(*got == want);  // exact: Boost 1.81 alone reads "inexact" one ulp off
  }
  CHECK(detail::text_member(root, "u") == "18446744073709551615");
  CHECK(detail::text_member(root, "neg") == "-9223372036854775808");
  CHECK(detail::text_member(root, "huge").empty());  // a double, as in nlohmann
  CHECK(detail::text_member(root, "s") == "ثانية");
  CHECK(detail::text_member(root, "dup") == "last");
  CHECK(detail::int_member(root, "ts") == 1749416383);
  CHECK_FALSE(detail::int_member(root, "u"));
  CHECK(detail::array_member(root, "deep"));
  CHECK_FALSE(detail::object_member(root, "deep"));
  CHECK_FALSE(detail::member(nullptr, "x"));
}

TEST_CASE("whatsapp: parse of odd but valid bodies, and of deep or broken ones") {
  const std::string text = fixture("whatsapp_text.json");
  // A byte-order mark is skipped, as nlohmann skips it.
  auto r = whatsapp::parse("\xEF\xBB\xBF" + text);
  REQUIRE(r.ok);
  CHECK(r.events.size() == 1);
  // Deep nesting in a field we ignore is still valid (no depth limit, no crash).
  std::string deep = text;
  deep.insert(deep.find("\"field\""), "\"x\":" + std::string(100000, '[') + std::string(100000, ']') + ",");
  r = whatsapp::parse(deep);
  REQUIRE(r.ok);
  CHECK(r.events.size() == 1);
  deep.pop_back();
  deep.pop_back();
  CHECK(whatsapp::parse(deep).error == "malformed json");
  CHECK(whatsapp::parse(std::string(100000, '[')).error == "malformed json");
  // An exponent too long for Boost but zero for strtod is a zero, as before.
  r = whatsapp::parse(R"({"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[
      {"id":"w1","from":"1","type":"location","location":{"latitude":1e-99999999999,"longitude":2}}]}}]}]})");
  REQUIRE(r.ok);
  CHECK(r.events.at(0).type == inbound_type::location);
  CHECK(r.events.at(0).latitude == 0);
  CHECK_FALSE(whatsapp::parse(R"({"object":"whatsapp_business_account","entry":[],"n":1e99999999999})").ok);
  // Every prefix of a real body is rejected, never a crash.
  for (std::size_t n = 0; n + 1 < text.size(); n += 7) CHECK_FALSE(whatsapp::parse(text.substr(0, n)).ok);
}

TEST_CASE("json_doc: a lone surrogate escape is read as U+FFFD, not the document refused") {
  const std::string fffd = "\xEF\xBF\xBD";
  const auto value_of = [](const std::string& body) -> std::optional<std::string> {
    detail::json_doc doc;
    if (!doc.parse(body)) return std::nullopt;
    return detail::text_member(&doc.root(), "t");
  };
  CHECK(value_of(R"({"t":"a\ud83db"})") == "a" + fffd + "b");           // a high half alone
  CHECK(value_of(R"({"t":"a\ude00"})") == "a" + fffd);                   // a low half alone
  CHECK(value_of(R"({"t":"\ud83d\ud83d\ude00"})") == fffd + "\xF0\x9F\x98\x80");  // then a pair
  CHECK(value_of(R"({"t":"\ud83d\u0041"})") == fffd + "A");             // high, then no low
  CHECK(value_of(R"({"t":"\ud83d"})") == fffd);                          // at the very end
  CHECK(value_of(R"({"t":"\\ud800"})") == "\\ud800");                 // a backslash, then text
  CHECK(value_of(R"({"t":"\ud83d\ude00"})") == "\xF0\x9F\x98\x80");    // a pair, as it was
  // Anything else broken is still refused.
  CHECK_FALSE(value_of(R"({"t":"\ud83d")"));
  CHECK_FALSE(value_of("{\"t\":\"\xff\"}"));
  CHECK_FALSE(value_of(R"({"t":"\ud83d\x"})"));
  CHECK_FALSE(detail::replace_lone_surrogates(R"({"t":"\ud83d\ude00 \u0041\n"})"));
  // A WhatsApp webhook with one is taken, with the rest of its text.
  auto body = fixture("whatsapp_text.json");
  const auto at = body.find("\"body\": \"");
  REQUIRE(at != std::string::npos);
  body.insert(at + 9, "\\ud83d");
  auto r = whatsapp::parse(body);
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].text.rfind(fffd, 0) == 0);
}

TEST_CASE("json_doc: any nesting depth, on either side of the parser switch, without a stack overflow") {
  // Boost parses up to 64 levels; deeper documents go to nlohmann's iterative parser.
  for (std::size_t depth : {1, 63, 64, 65, 66, 1000, 500000}) {
    CAPTURE(depth);
    const std::string open(depth, '['), close(depth, ']');
    const std::string body = "{\"k\":" + open + "\"ثانية\",1e-99999999999,18446744073709551615" + close + ",\"n\":7}";
    detail::json_doc doc;
    REQUIRE(doc.parse(body));
    CHECK(detail::int_member(&doc.root(), "n") == 7);
    const auto* v = detail::array_member(&doc.root(), "k");
    for (std::size_t i = 1; v && i < depth; ++i) v = &v->get_array().at(0);
    REQUIRE(v);
    REQUIRE(v->get_array().size() == 3);
    CHECK(v->get_array()[0].get_string() == "ثانية");
    CHECK(v->get_array()[1].get_double() == 0.0);
    CHECK(v->get_array()[2].get_uint64() == 18446744073709551615ull);
    CHECK_FALSE(accepts(open + close.substr(1)));          // one bracket short
    CHECK_FALSE(accepts(open + "1e400" + close));           // overflow, at any depth
    CHECK_FALSE(accepts(open + "\"\xff\"" + close));       // bad UTF-8, at any depth
  }
  CHECK_FALSE(accepts(std::string(1000000, '[')));
}

#include "channels/detail/json_doc.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include "channels/detail/util.hpp"

namespace aoun::channels::detail {
namespace {

namespace bj = boost::json;

// Boost.JSON's own DOM handler (boost/json/detail/handler.hpp), except for floating-point numbers:
// see on_double.
struct handler {
  static constexpr std::size_t max_object_size = bj::object::max_size();
  static constexpr std::size_t max_array_size = bj::array::max_size();
  static constexpr std::size_t max_key_size = bj::string::max_size();
  static constexpr std::size_t max_string_size = bj::string::max_size();

  bj::value_stack st;
  std::string number;      // the text of a number split across on_number_part calls
  bool overflow = false;   // on_double rejected a number (not Boost's own exponent_overflow)

  handler(bj::storage_ptr temp, unsigned char* buf, std::size_t size) : st(std::move(temp), buf, size) {}

  bool on_document_begin(bj::error_code&) { return true; }
  bool on_document_end(bj::error_code&) { return true; }
  bool on_object_begin(bj::error_code&) { return true; }
  bool on_object_end(std::size_t n, bj::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(bj::error_code&) { return true; }
  bool on_array_end(std::size_t n, bj::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(bj::string_view s, std::size_t, bj::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(bj::string_view s, std::size_t, bj::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(bj::string_view s, std::size_t, bj::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(bj::string_view s, std::size_t, bj::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_number_part(bj::string_view s, bj::error_code&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, bj::string_view, bj::error_code&) {
    number.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, bj::string_view, bj::error_code&) {
    number.clear();
    st.push_uint64(u);
    return true;
  }
  // Boost 1.81 converts decimals quickly but not always to the nearest double, and turns 1e400
  // into infinity. nlohmann uses strtod and rejects infinity; do the same from the number's text.
  bool on_double(double approx, bj::string_view s, bj::error_code& ec) {
    std::string_view text(s.data(), s.size());
    if (!number.empty()) {
      number.append(s.data(), s.size());
      text = number;
    }
    double d = 0;
    const auto [p, err] = std::from_chars(text.data(), text.data() + text.size(), d);
    number.clear();
    if (err == std::errc::result_out_of_range) {
      // Underflow: strtod gives zero or a subnormal, which nlohmann keeps. Overflow: an error.
      if (!(std::fabs(approx) < 1.0)) {
        overflow = true;
        ec = bj::error::exponent_overflow;
        return false;
      }
      d = approx;
    } else if (err != std::errc{} || p != text.data() + text.size()) {
      d = approx;  // not reached: Boost only calls this with a valid JSON number
    }
    if (!std::isfinite(d)) {
      overflow = true;
      ec = bj::error::exponent_overflow;
      return false;
    }
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, bj::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(bj::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(bj::string_view, bj::error_code&) { return true; }
  bool on_comment(bj::string_view, bj::error_code&) { return true; }
};

// Boost's parser recurses once per nesting level on the C++ stack, so a deep document (a
// 1 MB body of '[') would overflow the I/O thread's stack; nlohmann's parser is iterative and
// has no limit. Webhooks nest about ten deep: past this depth, the nlohmann path below decides.
constexpr std::size_t boost_max_depth = 64;

bj::parse_options fast_options() {
  bj::parse_options o;
  o.max_depth = boost_max_depth;
  return o;
}

enum class outcome { ok, malformed, ask_nlohmann };

outcome parse_fast(std::string_view body, bj::monotonic_resource& arena, bj::value& root) {
  unsigned char temp[2048];  // the parser's value stack; spills to the arena when larger
  bj::basic_parser<handler> p(fast_options(), bj::storage_ptr(&arena), temp, sizeof temp);
  p.handler().st.reset(bj::storage_ptr(&arena));
  bj::error_code ec;
  // A single complete buffer (more == false): the parser must reach the end of one value, and
  // every byte after it must be whitespace, else an error.
  const std::size_t n = p.write_some(false, body.data(), body.size(), ec);
  // Too deep for Boost, or an exponent too long for it ("1e-99999999999", which strtod and so
  // nlohmann read as zero): not necessarily malformed.
  if (ec == bj::error::too_deep || (ec == bj::error::exponent_overflow && !p.handler().overflow))
    return outcome::ask_nlohmann;
  if (ec || n != body.size()) return outcome::malformed;
  root = p.handler().st.release();
  return outcome::ok;
}

// The rare documents Boost cannot take are parsed by nlohmann's own (iterative) SAX parser, which
// applies its rules by definition, into the same Boost value.
struct nlohmann_to_boost {
  bj::value_stack& st;
  std::vector<std::size_t> members;  // values so far in each open array / object

  void counted() {
    if (!members.empty()) ++members.back();
  }
  bool null() {
    st.push_null();
    counted();
    return true;
  }
  bool boolean(bool b) {
    st.push_bool(b);
    counted();
    return true;
  }
  bool number_integer(std::int64_t i) {
    st.push_int64(i);
    counted();
    return true;
  }
  bool number_unsigned(std::uint64_t u) {
    st.push_uint64(u);
    counted();
    return true;
  }
  bool number_float(double d, const std::string&) {
    st.push_double(d);
    counted();
    return true;
  }
  bool string(std::string& s) {
    st.push_string(bj::string_view(s.data(), s.size()));
    counted();
    return true;
  }
  bool binary(std::vector<std::uint8_t>&) { return false; }  // never from JSON text
  bool start_object(std::size_t) {
    members.push_back(0);
    return true;
  }
  bool key(std::string& k) {
    st.push_key(bj::string_view(k.data(), k.size()));
    return true;
  }
  bool end_object() {
    st.push_object(members.back());
    members.pop_back();
    counted();
    return true;
  }
  bool start_array(std::size_t) {
    members.push_back(0);
    return true;
  }
  bool end_array() {
    st.push_array(members.back());
    members.pop_back();
    counted();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

bool parse_nlohmann(std::string_view body, bj::monotonic_resource& arena, bj::value& root) {
  bj::value_stack st;  // its working stack on the heap
  st.reset(bj::storage_ptr(&arena));
  nlohmann_to_boost sax{st, {}};
  if (!nlohmann::json::sax_parse(body.begin(), body.end(), &sax)) return false;
  root = st.release();
  return true;
}

int hex4(std::string_view s, std::size_t at) {
  if (at + 4 > s.size()) return -1;
  int v = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    const char c = s[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

bool parse_strict(std::string_view body, bj::monotonic_resource& arena, bj::value& root) {
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  switch (parse_fast(body.substr(0, bom.size()) == bom ? body.substr(bom.size()) : body, arena, root)) {
    case outcome::ok: return true;
    case outcome::malformed: return false;
    case outcome::ask_nlohmann: return parse_nlohmann(body, arena, root);  // it skips the BOM itself
  }
  return false;
}

}  // namespace

std::optional<std::string> replace_lone_surrogates(std::string_view body) {
  std::optional<std::string> out;
  std::size_t copied = 0;
  for (std::size_t i = 0; i + 1 < body.size(); ++i) {
    if (body[i] != '\\') continue;
    if (body[i + 1] != 'u') {
      ++i;  // an escape of one character (\\, \", \n ...): what follows it is text
      continue;
    }
    const int v = hex4(body, i + 2);
    if (v < 0xD800 || v > 0xDFFF) {
      i += 5;
      continue;
    }
    const bool paired = v <= 0xDBFF && i + 7 < body.size() && body[i + 6] == '\\' && body[i + 7] == 'u' &&
                        hex4(body, i + 8) >= 0xDC00 && hex4(body, i + 8) <= 0xDFFF;
    if (paired) {
      i += 11;
      continue;
    }
    if (!out) out.emplace();
    out->append(body.substr(copied, i - copied)).append("\\uFFFD");
    copied = i + 6;
    i += 5;
  }
  if (out) out->append(body.substr(copied));
  return out;
}

bool json_doc::parse(std::string_view body) {
  if (parse_strict(body, arena_, root_)) return true;
  // A lone UTF-16 surrogate in an escape ("\ud83d" without its pair, an emoji cut in two by
  // whoever truncated the text) is read as U+FFFD, not the whole payload refused: a webhook
  // refused for one string is retried, identical, for days, and every message in it is lost.
  // Only on the way out of a failure, so a well-formed payload costs nothing more.
  const auto repaired = replace_lone_surrogates(body);
  return repaired && parse_strict(*repaired, arena_, root_);
}

const jvalue* member(const jvalue* j, std::string_view key) {
  if (!j || !j->is_object()) return nullptr;
  return j->get_object().if_contains(bj::string_view(key.data(), key.size()));
}

const jvalue* object_member(const jvalue* j, std::string_view key) {
  const jvalue* m = member(j, key);
  return m && m->is_object() ? m : nullptr;
}

const jvalue* array_member(const jvalue* j, std::string_view key) {
  const jvalue* m = member(j, key);
  return m && m->is_array() ? m : nullptr;
}

std::string text_member(const jvalue* j, std::string_view key) {
  const jvalue* m = member(j, key);
  if (!m) return {};
  switch (m->kind()) {
    case bj::kind::string: return std::string(m->get_string().data(), m->get_string().size());
    case bj::kind::int64: return std::to_string(m->get_int64());
    case bj::kind::uint64: return std::to_string(m->get_uint64());
    default: return {};
  }
}

std::optional<std::int64_t> int_member(const jvalue* j, std::string_view key) {
  const jvalue* m = member(j, key);
  if (!m) return std::nullopt;
  switch (m->kind()) {
    case bj::kind::int64: return m->get_int64();
    case bj::kind::uint64:
      if (m->get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return std::nullopt;
      return static_cast<std::int64_t>(m->get_uint64());
    case bj::kind::string: return parse_int(std::string_view(m->get_string().data(), m->get_string().size()));
    default: return std::nullopt;
  }
}

std::optional<double> number_member(const jvalue* j, std::string_view key) {
  const jvalue* m = member(j, key);
  if (!m) return std::nullopt;
  double d = 0;
  switch (m->kind()) {
    case bj::kind::int64: d = static_cast<double>(m->get_int64()); break;
    case bj::kind::uint64: d = static_cast<double>(m->get_uint64()); break;
    case bj::kind::double_: d = m->get_double(); break;
    default: return std::nullopt;
  }
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace aoun::channels::detail

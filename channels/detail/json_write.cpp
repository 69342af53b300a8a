#include "channels/detail/json_write.hpp"

#include <array>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace aoun::channels::detail {
namespace {

// Length of the well-formed UTF-8 sequence (Unicode table 3-7) at s[i], or 0 if it is not one.
// The same sequences nlohmann's decoder accepts: no overlong forms, surrogates or > U+10FFFF.
std::size_t valid_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  const std::size_t left = s.size() - i;
  const auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return k < left && b(k) >= lo && b(k) <= hi;
  };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

constexpr char hex[] = "0123456789abcdef";

// What append_json_string does with each byte value: copy it, escape it, check a two-byte
// sequence inline (lead bytes C2-DF: Arabic), or check a longer sequence / refuse the byte.
enum : std::uint8_t { copy = 0, escape = 1, lead2 = 2, other = 3 };
constexpr auto byte_kind = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = escape;
  t['"'] = t['\\'] = escape;
  for (int c = 0x80; c < 0x100; ++c) t[c] = other;
  for (int c = 0xC2; c <= 0xDF; ++c) t[c] = lead2;
  return t;
}();

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t size = s.size();
  for (std::size_t i = 0; i < size;) {
    const std::uint8_t k = byte_kind[p[i]];
    if (k == copy || k == escape) {  // ASCII
      ++i;
      continue;
    }
    if (k == lead2 && i + 1 < size && (p[i + 1] & 0xC0) == 0x80) {
      i += 2;
      continue;
    }
    const std::size_t n = k == lead2 ? 0 : valid_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string scrub_utf8(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = valid_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  // One pass: runs of bytes that need nothing are found a byte at a time, copied in one append;
  // a UTF-8 lead byte has its sequence checked where it stands. This sits on every reply's path
  // (outbox payload, transcript payload, provider request), so it is kept to a single scan.
  const std::size_t mark = out.size();
  out.reserve(mark + s.size() + 2);
  out.push_back('"');
  const std::size_t size = s.size();
  std::size_t run = 0;  // start of the bytes not yet copied
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < size) {
    const unsigned char c = p[i];
    const std::uint8_t k = byte_kind[c];
    if (k == copy) {
      ++i;
      continue;
    }
    // Two-byte sequences (Arabic) are the common case: checked inline.
    if (k == lead2 && i + 1 < size && (p[i + 1] & 0xC0) == 0x80) {
      i += 2;
      continue;
    }
    if (k != escape) {
      const std::size_t n = k == lead2 ? 0 : valid_sequence(s, i);
      if (n == 0) {
        // Invalid UTF-8 is rare (a caller's bug); leave its exact replacement rules to nlohmann.
        out.resize(mark);
        out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return;
      }
      i += n;
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    ++i;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\f': out.push_back('f'); break;
      case '\n': out.push_back('n'); break;
      case '\r': out.push_back('r'); break;
      case '\t': out.push_back('t'); break;
      default:
        out += "u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
  }
  out.append(s.data() + run, size - run);
  out.push_back('"');
}

}  // namespace aoun::channels::detail

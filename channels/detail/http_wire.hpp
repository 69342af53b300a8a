#pragma once
// An HTTP/1.x message with a string body as the exact bytes Beast's serializer writes, in one
// contiguous string, for one `net::async_write` of one buffer.
//
// Why: Beast's serializer hands the socket a buffer sequence of one buffer per header field,
// walked through nested buffers_cat/prefix/suffix views with variant dispatch on every step.
// That walk was ~10% of a webhook's instructions (callgrind, docs/performance.md), for about
// 300 bytes of header. Same output, checked byte for byte against Beast in
// tests/unit/channels/http_wire_test.cpp. Chunked messages are not handled here: callers keep
// Beast's serializer for them (`wire_ok`).

#include <string>

#include "channels/detail/net.hpp"

namespace aoun::channels::detail {

/// False for what to_wire cannot write (chunked transfer coding).
template <bool isRequest>
bool wire_ok(const http::message<isRequest, http::string_body>& m) {
  return !m.chunked();
}

template <bool isRequest>
std::string to_wire(const http::message<isRequest, http::string_body>& m) {
  std::string out;
  std::size_t size = 32 + m.body().size();
  for (const auto& f : m) size += f.name_string().size() + f.value().size() + 4;
  if constexpr (isRequest) size += m.target().size() + m.method_string().size();
  out.reserve(size);
  const char version[] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + m.version() / 10), '.',
                          static_cast<char>('0' + m.version() % 10)};
  if constexpr (isRequest) {
    out.append(m.method_string());
    out += ' ';
    out.append(m.target());
    out += ' ';
    out.append(version, sizeof version);
  } else {
    out.append(version, sizeof version);
    const unsigned status = m.result_int();
    char code[4] = {' ', static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10)};
    out.append(code, sizeof code);
    out += ' ';
    out.append(m.reason());
  }
  out += "\r\n";
  for (const auto& f : m) {
    out.append(f.name_string());
    out += ": ";
    out.append(f.value());
    out += "\r\n";
  }
  out += "\r\n";
  out += m.body();
  return out;
}

}  // namespace aoun::channels::detail

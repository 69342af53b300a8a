#include "bot/media.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "channels/crypto.hpp"
#include "channels/detail/json_write.hpp"

namespace aoun::bot {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

bool tchar(unsigned char c) {
  return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

/// "type/subtype" in lower case, or "" when it is not one.
std::string bare_type(std::string_view raw) {
  std::string t = lower(trim(raw.substr(0, raw.find(';'))));
  auto slash = t.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == t.size() || t.size() > 127) return {};
  if (t.find('/', slash + 1) != std::string::npos) return {};
  for (std::size_t i = 0; i < t.size(); ++i)
    if (i != slash && !tchar(static_cast<unsigned char>(t[i]))) return {};
  return t;
}

/// Types a browser executes or renders as a document of our origin if it ever displays them.
bool active(const std::string& t) {
  if (t == "text/html" || t == "application/xhtml+xml" || t == "image/svg+xml" || t == "text/xml" ||
      t == "application/xml" || t == "text/javascript" || t == "application/javascript" ||
      t == "application/ecmascript" || t == "text/ecmascript" || t == "multipart/x-mixed-replace" ||
      t == "application/x-shockwave-flash" || t == "application/pdf+html")
    return true;
  return t.size() > 4 && t.compare(t.size() - 4, 4, "+xml") == 0;
}

std::string_view extension_for(std::string_view mime) {
  static constexpr std::pair<std::string_view, std::string_view> table[] = {
      {"image/jpeg", ".jpg"},      {"image/png", ".png"},       {"image/webp", ".webp"},
      {"image/gif", ".gif"},       {"image/heic", ".heic"},     {"application/pdf", ".pdf"},
      {"audio/ogg", ".ogg"},       {"audio/mpeg", ".mp3"},      {"audio/mp4", ".m4a"},
      {"audio/aac", ".aac"},       {"audio/amr", ".amr"},       {"video/mp4", ".mp4"},
      {"video/3gpp", ".3gp"},      {"text/plain", ".txt"},      {"application/msword", ".doc"},
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"},
      {"application/vnd.ms-excel", ".xls"},
      {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
  };
  for (const auto& [m, e] : table)
    if (m == mime) return e;
  return "";
}

/// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void cut_utf8(std::string& s, std::size_t max) {
  if (s.size() <= max) return;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  s.resize(n);
}

}  // namespace

struct media_downloader::shared_state {
  std::atomic<int> in_flight{0};
  std::mutex mutex;
  bool stopped = false;                                   // GUARDED_BY(mutex)
  std::set<std::shared_ptr<net::steady_timer>> fetches;   // GUARDED_BY(mutex): one per fetch in flight
};

media_downloader::slot::~slot() {
  if (state_) state_->in_flight.fetch_sub(1);
}

media_downloader::media_downloader(net::any_io_executor ex, const config& cfg)
    : cfg_(cfg), tls_(net::ssl::context::tls_client), state_(std::make_shared<shared_state>()) {
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(net::ssl::verify_peer);
  channels::http_client_options opts;
  opts.max_idle_per_host = 2;
  opts.body_limit = cfg.media.max_bytes;
  client_ = std::make_unique<channels::http_client>(std::move(ex), tls_, opts);
}

media_downloader::~media_downloader() { stop(); }

bool media_downloader::enabled(channels::kind ch) const {
  switch (ch) {
    case channels::kind::whatsapp: return cfg_.whatsapp_enabled;
    case channels::kind::telegram: return cfg_.telegram_enabled;
    case channels::kind::sms: return cfg_.sms_enabled;  // inbound MMS is always Twilio's
    case channels::kind::webchat: return false;
  }
  return false;
}

std::optional<media_downloader::slot> media_downloader::try_acquire() {
  if (state_->in_flight.fetch_add(1) < cfg_.media.max_concurrent) return slot(state_);
  state_->in_flight.fetch_sub(1);
  return std::nullopt;
}

void media_downloader::stop() {
  std::vector<std::shared_ptr<net::steady_timer>> running;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    running.assign(state_->fetches.begin(), state_->fetches.end());
  }
  // A timer is not thread-safe: cancel each on the executor (the session's strand) it waits on.
  for (auto& t : running) net::post(t->get_executor(), [t] { t->cancel(); });
}

net::awaitable<channels::media::fetched> media_downloader::fetch(channels::kind ch, std::string media_id) {
  using boost::asio::experimental::awaitable_operators::operator||;
  channels::media::fetched cut;
  cut.error = channels::media::failure::network;
  // Each fetch races a timer that only stop() ends; winning cancels the provider request.
  auto stopper = std::make_shared<net::steady_timer>(co_await net::this_coro::executor,
                                                     net::steady_timer::time_point::max());
  const std::shared_ptr<shared_state> state = state_;  // the frame may outlive *this (see header)
  {
    std::lock_guard lock(state->mutex);
    if (state->stopped) co_return cut;
    state->fetches.insert(stopper);
  }
  struct deregister {
    std::shared_ptr<shared_state> state;
    std::shared_ptr<net::steady_timer> timer;
    ~deregister() {
      std::lock_guard lock(state->mutex);
      state->fetches.erase(timer);
    }
  } registered{state, stopper};
  // Named first: GCC 12 mishandles temporaries inside a co_await operand.
  net::awaitable<channels::media::fetched> work = fetch_from(ch, std::move(media_id));
  auto stopped = stopper->async_wait(net::as_tuple(net::use_awaitable));
  auto raced = co_await (std::move(work) || std::move(stopped));
  if (raced.index() == 1) co_return cut;
  co_return std::get<0>(std::move(raced));
}

net::awaitable<channels::media::fetched> media_downloader::fetch_from(channels::kind ch, std::string media_id) {
  channels::media::limits lim;
  lim.max_bytes = cfg_.media.max_bytes;
  lim.timeout = cfg_.media.timeout;
  switch (ch) {
    case channels::kind::whatsapp: {
      channels::whatsapp::config w;
      w.token = cfg_.secret.whatsapp_token;
      w.api_base = cfg_.whatsapp_api_base;
      co_return co_await channels::media::fetch_whatsapp(*client_, w, std::move(media_id), lim);
    }
    case channels::kind::telegram: {
      channels::telegram::config t;
      t.token = cfg_.secret.telegram_token;
      t.api_base = cfg_.telegram_api_base;
      co_return co_await channels::media::fetch_telegram(*client_, t, std::move(media_id), lim);
    }
    case channels::kind::sms: {
      channels::sms::config s;
      s.account_sid = cfg_.twilio_account_sid;
      s.auth_token = cfg_.secret.twilio_auth_token;
      s.api_base = cfg_.twilio_api_base;
      co_return co_await channels::media::fetch_twilio(*client_, s, std::move(media_id), lim);
    }
    case channels::kind::webchat: break;
  }
  channels::media::fetched none;
  none.error = channels::media::failure::bad_id;
  co_return none;
}

namespace media_http {

std::string content_type(std::string_view downloaded, std::string_view provider_mime, std::string_view stored_mime) {
  std::string t;
  for (auto candidate : {downloaded, provider_mime, stored_mime}) {
    t = bare_type(candidate);
    if (!t.empty() && t != "application/octet-stream") break;
    t.clear();
  }
  if (t.empty() || active(t)) return "application/octet-stream";
  return t;
}

std::string file_name(std::string_view stored, std::string_view fallback_path, std::string_view kind,
                      std::string_view mime, std::int64_t message_id) {
  std::string name(stored);
  if (name.empty() && !fallback_path.empty()) {
    auto slash = fallback_path.find_last_of('/');
    name = std::string(slash == std::string_view::npos ? fallback_path : fallback_path.substr(slash + 1));
  }
  for (auto& c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '/' || c == '\\' || c == '"' || c == ':' || c == '*' || c == '?' ||
        c == '<' || c == '>' || c == '|' || c == ';' || c == '%')
      c = '_';
  }
  // Unicode direction controls reorder what a download shelf shows: "invoice<RLO>fdp.exe" reads
  // as "invoiceexe.pdf". LRM/RLM (U+200E/F), the embeddings and overrides (U+202A-E), the
  // isolates (U+2066-9) and the Arabic letter mark (U+061C) become "_".
  for (std::string_view control : {"\u200E", "\u200F", "\u202A", "\u202B", "\u202C", "\u202D", "\u202E", "\u2066",
                                   "\u2067", "\u2068", "\u2069", "\u061C"})
    for (auto at = name.find(control); at != std::string::npos; at = name.find(control, at + 1))
      name.replace(at, control.size(), "_");
  // No hidden files and nothing that ends in a dot (Windows drops it, changing the extension).
  while (!name.empty() && (name.front() == '.' || name.front() == ' ')) name.erase(name.begin());
  while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.pop_back();
  constexpr std::size_t max_name = 120;
  if (name.size() > max_name) {
    // Cut the stem, not the extension: a long Arabic name must still open as the PDF it is.
    std::string ext;
    const auto dot = name.rfind('.');
    if (dot != std::string::npos && dot > 0 && dot + 1 < name.size() && name.size() - dot <= 16 &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(dot) + 1, name.end(),
                    [](unsigned char c) { return std::isalnum(c); })) {
      ext = name.substr(dot);
      name.resize(dot);
    }
    cut_utf8(name, max_name - ext.size());
    while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.pop_back();
    name += ext;
  }
  if (name.empty()) {
    std::string k = kind.empty() ? "file" : std::string(kind);
    for (auto& c : k)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    name = k.substr(0, 20) + "-" + std::to_string(message_id) + std::string(extension_for(bare_type(mime)));
  }
  return name;
}

std::string content_disposition(std::string_view name) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string ascii, encoded;
  for (unsigned char c : name) {
    ascii += (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? static_cast<char>(c) : '_';
    // RFC 5987 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
    if (std::isalnum(c) || std::string_view("!#$&+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos) {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += hex[c >> 4];
      encoded += hex[c & 15];
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

std::optional<sniffed> sniff_upload(std::string_view b) {
  auto starts = [b](std::string_view magic, std::size_t at = 0) { return b.size() >= at + magic.size() && b.substr(at, magic.size()) == magic; };
  if (starts("\xFF\xD8\xFF")) return sniffed{"image", "image/jpeg"};
  if (starts(std::string_view("\x89PNG\r\n\x1A\n", 8))) return sniffed{"image", "image/png"};
  if (starts("RIFF") && starts("WEBP", 8)) return sniffed{"image", "image/webp"};
  if (starts("%PDF-")) return sniffed{"document", "application/pdf"};
  return std::nullopt;
}

std::string upload_name(std::string_view given, const sniffed& type) {
  std::string name = channels::detail::scrub_utf8(given);
  name = std::string(channels::crypto::truncate_code_points(name, 200));
  const auto low = lower(name);
  auto ends = [&low](std::string_view ext) { return low.size() > ext.size() && low.ends_with(ext); };
  const auto extension = extension_for(type.mime);
  const bool fits = ends(extension) || (type.mime == "image/jpeg" && ends(".jpeg"));
  if (!name.empty() && !fits) name += extension;
  return name;
}

}  // namespace media_http
}  // namespace aoun::bot

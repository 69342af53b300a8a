// Runs every tests/transcripts/*.txt against the real dialogs/ and locales/.
// The format is documented in tests/transcripts/README.md.

#include "dialogs/engine.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace aoun::dialogs;
namespace fs = std::filesystem;

namespace {

const std::string src = AOUN_SOURCE_DIR;

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r");
  auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string as_string(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

struct runner {
  const engine& eng;
  std::string file;
  state st;
  context ctx;
  step_result last;
  int refs = 0;
  std::map<std::string, case_status> cases;    // reference -> status
  std::map<std::string, std::string> case_ids;  // reference -> national id
  int failures = 0;

  explicit runner(const engine& e, std::string f) : eng(e), file(std::move(f)) {
    ctx.now = 1'800'000'000;
    ctx.channel = "whatsapp";
    ctx.new_case_reference = [this] {
      char buf[32];
      std::snprintf(buf, sizeof buf, "AWN-2026-%06d", 123 + refs++);
      return std::string(buf);
    };
    ctx.find_case = [this](std::string_view ref, std::string_view id) -> std::optional<case_status> {
      auto it = cases.find(std::string(ref));
      if (it == cases.end() || case_ids[it->first] != id) return std::nullopt;
      return it->second;
    };
  }

  void fail(int line, const std::string& what) {
    ++failures;
    std::string replies;
    for (const auto& r : last.replies) {
      replies += "\n    | " + r.text;
      for (const auto& c : r.choices) replies += "\n    | [" + c.id + "] " + c.title;
    }
    std::string effects;
    for (const auto& e : last.effects) effects += " " + e.type + e.data.dump();
    std::string msg = file + ":" + std::to_string(line) + ": " + what + "\n  state: " + st.flow + "/" + st.step +
                      "\n  replies:" + replies + "\n  effects:" + effects;
    FAIL_CHECK(msg);
  }

  void send(const input& in) {
    last = eng.step(st, in, ctx);
    // What bot/ does: store the serialized state, read it back next time.
    st = state::parse(last.next.serialize());
    ctx.now += 10;
  }

  void user(int line, const std::string& arg) {
    input in;
    if (arg.rfind("[choice:", 0) == 0) {
      // "[choice:id]", or "[choice:id] title": the button's title, which the providers send
      // with its id (bot/ hands it on as the text)
      const auto close = arg.find(']');
      in.type = input::kind::choice;
      in.choice_id = arg.substr(8, close - 8);
      if (close + 1 < arg.size()) in.text = trim(arg.substr(close + 1));
    } else if (arg.rfind("[contact:", 0) == 0) {
      in.type = input::kind::contact;
      in.contact_phone = arg.substr(9, arg.size() - 10);
      in.contact_is_sender = true;
    } else if (arg.rfind("[contact-of-another:", 0) == 0) {  // a card from the address book
      in.type = input::kind::contact;
      in.contact_phone = arg.substr(20, arg.size() - 21);
    } else if (arg.rfind("[media:", 0) == 0) {
      // "[media:image]" or "[media:image] caption"; "[media:document:too_large]" is a file
      // staff could never fetch (over Telegram's 20 MB)
      const auto close = arg.find(']');
      in.type = input::kind::media;
      in.media_kind = arg.substr(7, close - 7);
      if (const auto colon = in.media_kind.find(':'); colon != std::string::npos) {
        in.media_too_large = in.media_kind.substr(colon + 1) == "too_large";
        in.media_kind.resize(colon);
      }
      if (close + 1 < arg.size()) in.text = trim(arg.substr(close + 1));
      in.media_id = "m" + std::to_string(ctx.now);
      in.media_mime = in.media_kind == "image" ? "image/jpeg" : "application/pdf";
      in.media_filename = in.media_kind == "image" ? "" : "file.pdf";
    } else if (arg.rfind("[location]", 0) == 0) {
      in.type = input::kind::location;
    } else if (arg.rfind("[wait:", 0) == 0) {
      ctx.now += std::stoll(arg.substr(6, arg.size() - 7));
      return;
    } else {
      in.text = arg;
    }
    send(in);
  }

  void directive(int line, const std::string& d) {
    std::istringstream is(d);
    std::string cmd;
    is >> cmd;
    if (cmd == "@channel") is >> ctx.channel;
    else if (cmd == "@phone") is >> ctx.channel_phone;
    else if (cmd == "@hours") {
      std::string v;
      is >> v;
      ctx.within_working_hours = v != "off";
    } else if (cmd == "@case") {
      case_status c;
      std::string id;
      is >> c.reference >> id >> c.step >> c.verification_method >> c.appointment;
      if (c.verification_method == "-") c.verification_method.clear();
      if (c.appointment == "-") c.appointment.clear();
      cases[c.reference] = c;
      case_ids[c.reference] = id;
    } else if (cmd == "@survey") {
      last = eng.start_survey(st, ctx);
      st = last.next;
    } else if (cmd == "@documents") {
      std::string ref;
      is >> ref;
      last = eng.request_documents(st, ref, ctx);
      st = last.next;
    } else if (cmd == "@back_to_bot") {
      last = eng.back_to_bot(st, ctx);
      st = last.next;
    } else {
      fail(line, "unknown directive " + cmd);
    }
  }

  bool reply_contains(const std::string& s) {
    return std::any_of(last.replies.begin(), last.replies.end(),
                       [&](const reply& r) { return r.text.find(s) != std::string::npos; });
  }

  void expect(int line, const std::string& what, const std::string& arg) {
    if (what == "contains") {
      if (!reply_contains(arg)) fail(line, "no reply contains \"" + arg + "\"");
    } else if (what == "not-contains") {
      if (reply_contains(arg)) fail(line, "a reply contains \"" + arg + "\"");
    } else if (what == "choice") {
      bool found = false;
      for (const auto& r : last.replies)
        for (const auto& c : r.choices) found = found || c.id == arg;
      if (!found) fail(line, "no choice " + arg);
    } else if (what == "effect" || what == "no-effect") {
      std::istringstream is(arg);
      std::string type;
      is >> type;
      std::vector<std::pair<std::string, std::string>> fields;
      std::string kv;
      while (is >> kv) {
        auto eq = kv.find('=');
        fields.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
      }
      bool found = false;
      for (const auto& e : last.effects) {
        if (e.type != type) continue;
        bool all = true;
        for (const auto& [k, v] : fields)
          all = all && e.data.contains(k) && as_string(e.data[k]) == v;
        found = found || all;
      }
      if (what == "effect" && !found) fail(line, "no effect " + arg);
      if (what == "no-effect" && found) fail(line, "unexpected effect " + arg);
    } else if (what == "no-effects") {
      if (!last.effects.empty()) fail(line, "unexpected effects");
    } else if (what == "flow") {
      if (st.flow + "/" + st.step != arg && st.flow != arg) fail(line, "flow is " + st.flow + "/" + st.step);
    } else if (what == "silent") {
      if (!last.replies.empty()) fail(line, "expected no reply");
    } else if (what == "replies") {
      if (last.replies.size() != std::stoul(arg)) fail(line, "reply count " + std::to_string(last.replies.size()));
    } else if (what == "lang") {
      if (st.lang != arg) fail(line, "lang is " + st.lang);
    } else if (what == "consented") {
      if (st.consented != (arg == "yes")) fail(line, "consented differs");
    } else if (what == "request_contact" || what == "request_document") {
      bool any = std::any_of(last.replies.begin(), last.replies.end(), [&](const reply& r) {
        return what == "request_contact" ? r.request_contact : r.request_document;
      });
      if (any != (arg == "yes")) fail(line, what + " differs");
    } else if (what == "slots-empty") {
      for (auto it = st.slots.begin(); it != st.slots.end(); ++it)
        if (it.key()[0] != '_') fail(line, "slot kept: " + it.key());
    } else {
      fail(line, "unknown expectation " + what);
    }
  }

  void run(std::istream& in) {
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::string t = trim(line);
      if (t.empty() || t[0] == '#') continue;
      if (t[0] == '@') {
        directive(n, t);
      } else if (t.rfind(">", 0) == 0) {
        user(n, trim(t.substr(1)));
      } else if (t.rfind("<", 0) == 0) {
        std::string rest = trim(t.substr(1));
        auto colon = rest.find(':');
        std::string what = trim(rest.substr(0, colon));
        std::string arg = colon == std::string::npos ? "" : trim(rest.substr(colon + 1));
        expect(n, what, arg);
      } else {
        fail(n, "unreadable line");
      }
    }
  }
};

}  // namespace

TEST_CASE("transcripts") {
  settings cfg;
  cfg.emergency_numbers = "911 / 1919";
  cfg.phone = "920012345";
  cfg.email = "care@example.org";
  cfg.danger_words = {"ابي اهرب منه"};
  engine eng = engine::load(src + "/dialogs", src + "/locales", cfg);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(src + "/tests/transcripts"))
    if (e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 20);
  int failed_files = 0;
  for (const auto& p : files) {
    CAPTURE(p.filename().string());
    std::ifstream f(p);
    runner r(eng, p.filename().string());
    r.run(f);
    if (r.failures) ++failed_files;
  }
  MESSAGE(files.size() << " transcripts, " << failed_files << " with failures");
}

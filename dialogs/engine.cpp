#include "dialogs/engine.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "dialogs/detail/lexicon.hpp"
#include "dialogs/normalize.hpp"
#include "dialogs/validate.hpp"

namespace aoun::dialogs {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// state

// The stored form is the compact JSON object nlohmann writes for these seven fields: keys in
// sorted order, no spaces. serialize() writes it directly, and parse() reads that exact shape
// without building a document for the fixed fields; anything else (older rows, hand edits,
// strings that need escapes) goes through nlohmann::json as it always did.

namespace {

// Printable ASCII other than '"' and '\\': written and read as is in a JSON string.
bool plain(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') return false;
  return true;
}

void put_string(std::string& out, const std::string& s) {
  if (plain(s)) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

void put_integer(std::string& out, std::int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Reads the stored form front to back; every function returns false if the text is not
// exactly that shape, and the caller falls back to a full parse.
struct canonical_reader {
  std::string_view rest;

  bool literal(std::string_view s) {
    if (rest.substr(0, s.size()) != s) return false;
    rest.remove_prefix(s.size());
    return true;
  }
  bool string(std::string& out) {
    if (!literal("\"")) return false;
    auto end = rest.find('"');
    if (end == std::string_view::npos || !plain(rest.substr(0, end))) return false;
    out.assign(rest.substr(0, end));
    rest.remove_prefix(end + 1);
    return true;
  }
  bool boolean(bool& out) {
    if (literal("true")) return out = true, true;
    if (literal("false")) return out = false, true;
    return false;
  }
  // An integer nlohmann would read as the same int64: no leading zeros, no "-0", 18 digits at most.
  bool integer(std::int64_t& out) {
    std::size_t i = rest.substr(0, 1) == "-" ? 1 : 0;
    std::size_t j = i;
    while (j < rest.size() && rest[j] >= '0' && rest[j] <= '9') ++j;
    std::size_t digits = j - i;
    if (digits == 0 || digits > 18 || (rest[i] == '0' && (digits > 1 || i == 1))) return false;
    std::int64_t v = 0;
    for (std::size_t k = i; k < j; ++k) v = v * 10 + (rest[k] - '0');
    out = i ? -v : v;
    rest.remove_prefix(j);
    return true;
  }
};

// parse() for text serialize() wrote; false if it is anything else.
bool parse_canonical(std::string_view text, state& out) {
  canonical_reader r{text};
  std::string lang;
  std::int64_t misunderstandings = 0;
  if (!(r.literal("{\"consented\":") && r.boolean(out.consented) && r.literal(",\"flow\":") && r.string(out.flow) &&
        r.literal(",\"lang\":") && r.string(lang) && r.literal(",\"last_activity\":") &&
        r.integer(out.last_activity) && r.literal(",\"misunderstandings\":") && r.integer(misunderstandings) &&
        r.literal(",\"slots\":")))
    return false;
  // The slots run up to the closing ,"step":"..."} (a step has no quote, so it is found from the end).
  std::string_view rest = r.rest;
  if (rest.size() < 2 || rest.substr(rest.size() - 2) != "\"}") return false;
  auto open = rest.rfind('"', rest.size() - 3);
  constexpr std::string_view step_key = ",\"step\":";
  if (open == std::string_view::npos || open < step_key.size() ||
      rest.substr(open - step_key.size(), step_key.size()) != step_key)
    return false;
  std::string_view step = rest.substr(open + 1, rest.size() - 2 - (open + 1));
  std::string_view slots = rest.substr(0, open - step_key.size());
  if (!plain(step)) return false;
  if (slots == "{}") {
    out.slots = json::object();
  } else {
    json j = json::parse(slots.begin(), slots.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    out.slots = std::move(j);
  }
  out.step.assign(step);
  if (lang == "ar" || lang == "en") out.lang = std::move(lang);
  out.misunderstandings = std::clamp(static_cast<int>(misunderstandings), 0, 100);
  return true;
}

}  // namespace

std::string state::serialize() const {
  // Sorted keys, as nlohmann::json orders an object.
  std::string out;
  out.reserve(128 + flow.size() + step.size());
  out += "{\"consented\":";
  out += consented ? "true" : "false";
  out += ",\"flow\":";
  put_string(out, flow);
  out += ",\"lang\":";
  put_string(out, lang);
  out += ",\"last_activity\":";
  put_integer(out, last_activity);
  out += ",\"misunderstandings\":";
  put_integer(out, misunderstandings);
  out += ",\"slots\":";
  if (slots.is_object() && slots.empty()) out += "{}";
  else out += slots.dump(-1, ' ', false, json::error_handler_t::replace);
  out += ",\"step\":";
  put_string(out, step);
  out += '}';
  return out;
}

state state::parse(std::string_view text) {
  state s;
  {
    state fast;
    if (parse_canonical(text, fast)) return fast;
  }
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return s;
  state out;
  try {
    auto field = [&](const char* name) -> json* {
      auto it = j.find(name);
      return it == j.end() ? nullptr : &*it;
    };
    if (json* v = field("lang"); v && v->is_string()) {
      const auto& l = v->get_ref<const std::string&>();
      if (l == "ar" || l == "en") out.lang = l;
    }
    if (json* v = field("consented"); v && v->is_boolean()) out.consented = v->get<bool>();
    if (json* v = field("flow"); v && v->is_string()) out.flow = std::move(v->get_ref<std::string&>());
    if (json* v = field("step"); v && v->is_string()) out.step = std::move(v->get_ref<std::string&>());
    if (json* v = field("slots"); v && v->is_object()) out.slots = std::move(*v);
    if (json* v = field("misunderstandings"); v && v->is_number_integer())
      out.misunderstandings = std::clamp(v->get<int>(), 0, 100);
    if (json* v = field("last_activity"); v && v->is_number_integer())
      out.last_activity = v->get<std::int64_t>();
  } catch (const json::exception&) {
    return s;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// loaded data

namespace detail {

struct choice_def {
  std::string id, title, description;  // title/description are text keys
  std::string next, action, value, words, say, intent, return_to;
  // Set once at load, for matching what people type: the id in lower case, the title
  // normalized in each locale (in locale order), and the `words` list (null if none).
  std::string id_lower;
  std::vector<std::string> title_norm;
  std::vector<std::u32string> title_u32;
  const std::vector<phrase>* word_list = nullptr;  // points into engine_data::words
};

struct step_def {
  std::string name;
  std::vector<std::string> prompt;  // text keys; the last one carries the choices
  std::vector<choice_def> choices;
  std::string validator, slot, next, action, on_enter, say, accept, question;
  bool understands = false, silent = false, request_contact = false, request_document = false;
};

struct flow_def {
  std::string name, start, file;
  bool resumable = false;
  std::map<std::string, step_def, std::less<>> steps;
};

struct route {
  std::string say, next;
};

// A locale text ready to say: `fixed` texts have no placeholder and are said as `text` is
// (the leading newlines fill() would trim already trimmed).
// Lets an unordered_map of strings be searched with a string_view, as std::less<> does a map.
struct key_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct text_template {
  std::string text;
  bool fixed = false;
};

struct locale_data {
  std::map<std::string, std::string, std::less<>> texts;
  std::unordered_map<std::string, text_template, key_hash, std::equal_to<>> templates;  // the same texts
  std::vector<std::pair<std::string, std::string>> settings_vars;  // {association} ... {retention_days}
  std::map<std::string, std::vector<std::string>> intents, topics, words;
  std::vector<std::string> danger;
};

struct lexicon_entry {
  std::string intent, topic;
  phrase p;
  std::size_t intent_index = 0;  // in known_intents
  std::size_t topic_index = 0;   // in known_topics, if topic is set
};

struct engine_data {
  settings cfg;
  std::map<std::string, flow_def, std::less<>> flows;
  std::map<std::string, route> intent_routes;  // from the flow file with "intents"
  std::map<std::string, locale_data, std::less<>> locales;
  std::vector<lexicon_entry> lexicon;  // intents and topics from every locale
  std::vector<phrase> danger;
  std::vector<phrase> question_markers;
  // The filters of lexicon[i] and danger[i], side by side: most phrases are ruled out there.
  std::vector<phrase_filter> lexicon_filters, danger_filters;
  std::map<std::string, std::vector<phrase>> words;  // both locales merged
  std::vector<std::string> english_markers;
};

}  // namespace detail

namespace {

using detail::choice_def;
using detail::engine_data;
using detail::flow_def;
using detail::step_def;

const std::vector<std::string> known_intents = {
    "greeting", "help_request", "inquiry", "track_request", "talk_to_staff", "volunteer", "danger",
    "menu",     "cancel",       "delete_data", "switch_language", "thanks", "unknown"};
const std::vector<std::string> known_topics = {"services", "eligibility", "documents",
                                               "channels", "hours",       "contact"};

// Named actions and the text keys each one says by itself (checked at load).
const std::map<std::string, std::vector<std::string>, std::less<>>& action_table() {
  static const std::map<std::string, std::vector<std::string>, std::less<>> t = {
      {"consent", {}},
      {"decline", {}},
      {"toggle_language", {}},
      {"route_mobile", {}},
      {"use_channel_phone", {}},
      {"add_document", {"intake.too_many_documents"}},
      {"create_case", {}},
      {"find_case", {"track.found", "track.appointment_line"}},
      {"queue_for_staff", {"handoff.queued", "after_hours"}},
      {"leave_queue", {}},
      {"register_volunteer", {}},
      {"survey_answer", {}},
      {"survey_complete", {}},
      {"attach_document", {}},
      {"erase", {}},
      {"go_back", {}},
      {"resume", {}},
      {"clear", {}},
  };
  return t;
}

// Text keys the engine itself uses (checked at load in both locales).
const std::vector<std::string> engine_keys = {
    "danger",          "not_understood",    "misunderstood_handoff", "language_switched",
    "cancelled",       "nothing_to_cancel", "media_not_expected",    "handoff.left", "handoff.kept", "media_too_large",
    "old_choice",
    "unsupported_message",
    "queued",          "staff_joined",      "staff_left",            "after_hours",
    "outside_window_notice", "thanks_reply", "survey.cancelled",
    "case_step.submitted", "case_step.collecting_info", "case_step.evaluating",
    "case_step.approved", "case_step.rejected", "case_step.closed", "method.document_check",
    "method.interview", "method.field_visit", "service.legal", "service.psychological",
    "service.social", "service.financial", "service.other"};

[[noreturn]] void fail(const std::string& file, const std::string& what, const std::string& key) {
  throw std::runtime_error(file + ": " + what + " '" + key + "'");
}

json read_json_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(p.filename().string(), "cannot read file", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(p.filename().string(), "invalid JSON in", p.filename().string());
  return j;
}

void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string, std::less<>>& out,
             const std::string& file) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_string()) out[key] = it->get<std::string>();
    else if (it->is_object()) flatten(*it, key, out, file);
    else if (it->is_array()) {
      std::string joined;
      for (const auto& line : *it) {
        if (!line.is_string()) fail(file, "text must be a string or an array of strings", key);
        if (!joined.empty()) joined += "\n";
        joined += line.get<std::string>();
      }
      out[key] = joined;
    } else {
      fail(file, "text must be a string", key);
    }
  }
}

std::vector<std::string> string_list(const json& j, const std::string& file, const std::string& key) {
  std::vector<std::string> out;
  if (!j.is_array()) fail(file, "expected a list of strings at", key);
  for (const auto& e : j) {
    if (!e.is_string()) fail(file, "expected a list of strings at", key);
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string str_field(const json& j, const char* name, const std::string& file, const std::string& where) {
  if (!j.contains(name)) return {};
  if (!j[name].is_string()) fail(file, std::string("field '") + name + "' must be a string in", where);
  return j[name].get<std::string>();
}

bool bool_field(const json& j, const char* name, const std::string& file, const std::string& where) {
  if (!j.contains(name)) return false;
  if (!j[name].is_boolean()) fail(file, std::string("field '") + name + "' must be true or false in", where);
  return j[name].get<bool>();
}

detail::locale_data load_locale(const std::filesystem::path& p) {
  std::string file = p.filename().string();
  json j = read_json_file(p);
  detail::locale_data l;
  if (!j.contains("texts") || !j["texts"].is_object()) fail(file, "missing object", "texts");
  flatten(j["texts"], "", l.texts, file);
  auto lists = [&](const char* section, std::map<std::string, std::vector<std::string>>& out) {
    if (!j.contains(section)) return;
    if (!j[section].is_object()) fail(file, "expected an object at", section);
    for (auto it = j[section].begin(); it != j[section].end(); ++it)
      out[it.key()] = string_list(*it, file, std::string(section) + "." + it.key());
  };
  lists("intents", l.intents);
  lists("topics", l.topics);
  lists("words", l.words);
  if (j.contains("danger")) l.danger = string_list(j["danger"], file, "danger");
  for (const auto& [k, _] : l.intents)
    if (std::find(known_intents.begin(), known_intents.end(), k) == known_intents.end())
      fail(file, "unknown intent", k);
  for (const auto& [k, _] : l.topics)
    if (std::find(known_topics.begin(), known_topics.end(), k) == known_topics.end())
      fail(file, "unknown topic", k);
  return l;
}

std::vector<std::string> prompt_list(const json& j, const std::string& file, const std::string& where) {
  if (!j.contains("prompt") || j["prompt"].is_null()) return {};
  if (j["prompt"].is_string()) return {j["prompt"].get<std::string>()};
  return string_list(j["prompt"], file, where + ".prompt");
}

flow_def load_flow(const std::filesystem::path& p, std::map<std::string, detail::route>& routes) {
  std::string file = p.filename().string();
  json j = read_json_file(p);
  flow_def f;
  f.file = file;
  f.name = str_field(j, "flow", file, "flow");
  if (f.name.empty()) fail(file, "missing field", "flow");
  f.start = str_field(j, "start", file, "start");
  f.resumable = bool_field(j, "resumable", file, "resumable");
  if (!j.contains("steps") || !j["steps"].is_object()) fail(file, "missing object", "steps");
  for (auto it = j["steps"].begin(); it != j["steps"].end(); ++it) {
    const json& sj = *it;
    std::string where = it.key();
    if (!sj.is_object()) fail(file, "step must be an object", where);
    step_def st;
    st.name = it.key();
    st.prompt = prompt_list(sj, file, where);
    st.validator = str_field(sj, "validator", file, where);
    st.slot = str_field(sj, "slot", file, where);
    st.next = str_field(sj, "next", file, where);
    st.action = str_field(sj, "action", file, where);
    st.on_enter = str_field(sj, "on_enter", file, where);
    st.say = str_field(sj, "say", file, where);
    st.accept = str_field(sj, "accept", file, where);
    st.question = str_field(sj, "question", file, where);
    st.understands = bool_field(sj, "understands", file, where);
    st.silent = bool_field(sj, "silent", file, where);
    st.request_contact = bool_field(sj, "request_contact", file, where);
    st.request_document = bool_field(sj, "request_document", file, where);
    if (!st.accept.empty() && st.accept != "media") fail(file, "unknown input kind", st.accept);
    if (sj.contains("choices")) {
      if (!sj["choices"].is_array()) fail(file, "choices must be a list in", where);
      for (const auto& cj : sj["choices"]) {
        if (!cj.is_object()) fail(file, "choice must be an object in", where);
        choice_def c;
        c.id = str_field(cj, "id", file, where);
        c.title = str_field(cj, "title", file, where);
        c.description = str_field(cj, "description", file, where);
        c.next = str_field(cj, "next", file, where);
        c.action = str_field(cj, "action", file, where);
        c.value = str_field(cj, "value", file, where);
        c.words = str_field(cj, "words", file, where);
        c.say = str_field(cj, "say", file, where);
        c.intent = str_field(cj, "intent", file, where);
        c.return_to = str_field(cj, "return_to", file, where);
        if (c.id.empty()) fail(file, "choice without id in", where);
        if (c.id.size() > 64) fail(file, "choice id longer than 64 bytes", c.id);
        for (unsigned char ch : c.id)
          if (ch >= 0x80 || ch <= 0x20) fail(file, "choice id must be printable ASCII", c.id);
        if (c.title.empty()) fail(file, "choice without title", c.id);
        st.choices.push_back(std::move(c));
      }
    }
    f.steps.emplace(st.name, std::move(st));
  }
  if (f.start.empty() || !f.steps.count(f.start)) fail(file, "unknown step", f.start);
  if (j.contains("intents")) {
    if (!j["intents"].is_object()) fail(file, "expected an object at", "intents");
    for (auto it = j["intents"].begin(); it != j["intents"].end(); ++it) {
      if (std::find(known_intents.begin(), known_intents.end(), it.key()) == known_intents.end())
        fail(file, "unknown intent", it.key());
      routes[it.key()] = {str_field(*it, "say", file, it.key()), str_field(*it, "next", file, it.key())};
    }
  }
  return f;
}

// "step", "flow/step" or "flow" → (flow, step); empty if unknown.
std::pair<std::string, std::string> resolve(const engine_data& d, std::string_view current_flow,
                                            std::string_view target) {
  auto slash = target.find('/');
  if (slash != std::string_view::npos) {
    std::string fl(target.substr(0, slash)), st(target.substr(slash + 1));
    auto f = d.flows.find(fl);
    if (f == d.flows.end() || !f->second.steps.count(st)) return {};
    return {fl, st};
  }
  auto cf = d.flows.find(current_flow);
  if (cf != d.flows.end() && cf->second.steps.count(target))
    return {std::string(current_flow), std::string(target)};
  auto f = d.flows.find(target);
  if (f != d.flows.end()) return {f->first, f->second.start};
  return {};
}

void check_flows(const engine_data& d) {
  auto has_key = [&](const std::string& key) {
    for (const auto& [lang, l] : d.locales)
      if (!l.texts.count(key)) return false;
    return true;
  };
  auto check_key = [&](const std::string& file, const std::string& key) {
    if (key.empty()) return;
    if (key.find("{topic}") != std::string::npos) {
      for (const auto& t : known_topics) {
        std::string k = key;
        k.replace(k.find("{topic}"), 7, t);
        if (!has_key(k)) fail(file, "unknown text key", k);
      }
      return;
    }
    if (!has_key(key)) fail(file, "unknown text key", key);
  };
  auto check_target = [&](const flow_def& f, const std::string& target) {
    if (target.empty()) return;
    if (resolve(d, f.name, target).first.empty()) fail(f.file, "unknown step", target);
  };
  auto check_action = [&](const std::string& file, const std::string& a) {
    if (a.empty()) return;
    auto it = action_table().find(a);
    if (it == action_table().end()) fail(file, "unknown action", a);
    for (const auto& k : it->second) check_key(file, k);
  };
  auto check_words = [&](const std::string& file, const std::string& w) {
    if (w.empty()) return;
    for (const auto& [lang, l] : d.locales)
      if (!l.words.count(w)) fail(file, "unknown word list", w);
  };
  for (const auto& [name, f] : d.flows) {
    for (const auto& [sname, st] : f.steps) {
      for (const auto& k : st.prompt) check_key(f.file, k);
      check_key(f.file, st.say);
      check_target(f, st.next);
      check_action(f.file, st.action);
      check_action(f.file, st.on_enter);
      if (!st.validator.empty()) {
        const auto& names = validator_names();
        if (std::find(names.begin(), names.end(), st.validator) == names.end())
          fail(f.file, "unknown validator", st.validator);
        for (const auto& e : validator_errors(st.validator))
          check_key(f.file, "invalid." + st.validator + "." + e);
      }
      std::set<std::string> ids;
      for (const auto& c : st.choices) {
        if (!ids.insert(c.id).second) fail(f.file, "duplicate choice id", c.id);
        check_key(f.file, c.title);
        check_key(f.file, c.description);
        check_key(f.file, c.say);
        check_target(f, c.next);
        check_target(f, c.return_to);
        check_action(f.file, c.action);
        check_words(f.file, c.words);
        if (!c.value.empty() && c.value[0] == '@') check_key(f.file, c.value.substr(1));
        if (!c.intent.empty() &&
            std::find(known_intents.begin(), known_intents.end(), c.intent) == known_intents.end())
          fail(f.file, "unknown intent", c.intent);
      }
    }
  }
  for (const auto& [intent, r] : d.intent_routes) {
    // Routes are resolved from the menu flow.
    const flow_def* menu = nullptr;
    for (const auto& [n, f] : d.flows)
      if (n == "menu") menu = &f;
    std::string file = menu ? menu->file : "menu.json";
    check_key(file, r.say);
    if (!r.next.empty() && resolve(d, "menu", r.next).first.empty()) fail(file, "unknown step", r.next);
  }
  for (const char* needed : {"welcome", "menu", "handoff", "erase", "resume", "survey", "documents",
                             "intake", "track", "inquiry", "volunteer"})
    if (!d.flows.count(needed)) fail("flows", "missing flow", needed);
  for (const char* st : {"main", "idle"})
    if (!d.flows.at("menu").steps.count(st)) fail(d.flows.at("menu").file, "unknown step", st);
  if (!d.flows.at("handoff").steps.count("waiting"))
    fail(d.flows.at("handoff").file, "unknown step", "waiting");
  for (const auto& k : engine_keys) {
    for (const auto& [lang, l] : d.locales)
      if (!l.texts.count(k)) fail(lang + ".json", "missing text key", k);
  }
  for (const auto& t : known_topics) check_key("locales", "faq." + t);
}

std::string lower_ascii(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// lower_ascii(a) == b, for b already in lower case, without a copy.
bool equals_lower_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

std::size_t index_of(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

// Everything a turn would otherwise work out again on every message: text templates, the
// settings' placeholder values, choice titles as typed answers, classifier score slots.
void prepare(engine_data& d) {
  const settings& c = d.cfg;
  for (auto& [lang, l] : d.locales) {
    bool en = lang == "en";
    l.settings_vars = {{"association", en ? c.association_name_en : c.association_name},
                       {"emergency", c.emergency_numbers},
                       {"hours", en ? c.working_hours_en : c.working_hours},
                       {"phone", c.phone},
                       {"email", c.email},
                       {"website", c.website},
                       {"address", c.address},
                       {"retention_days", std::to_string(c.retention_days)}};
    for (const auto& [key, text] : l.texts) {
      detail::text_template t;
      t.fixed = text.find('{') == std::string::npos;
      t.text = t.fixed ? text.substr(std::min(text.find_first_not_of('\n'), text.size())) : text;
      l.templates.emplace(key, std::move(t));
    }
  }
  for (auto& [fname, f] : d.flows)
    for (auto& [sname, st] : f.steps)
      for (auto& ch : st.choices) {
        ch.id_lower = lower_ascii(ch.id);
        for (const auto& [lang, l] : d.locales) {
          auto it = l.texts.find(ch.title);
          std::u32string u = it == l.texts.end() ? std::u32string() : normalize_u32(it->second);
          ch.title_norm.push_back(utf8_encode(u));
          ch.title_u32.push_back(std::move(u));
        }
        auto w = d.words.find(ch.words);
        ch.word_list = w == d.words.end() ? nullptr : &w->second;
      }
  for (auto& e : d.lexicon) {
    e.intent_index = index_of(known_intents, e.intent);
    if (!e.topic.empty()) e.topic_index = index_of(known_topics, e.topic);
    d.lexicon_filters.push_back(e.p.filter);
  }
  for (const auto& p : d.danger) d.danger_filters.push_back(p.filter);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// load

engine::engine(std::shared_ptr<const detail::engine_data> d) : d_(std::move(d)) {}
engine::engine(engine&&) noexcept = default;
engine& engine::operator=(engine&&) noexcept = default;
engine::engine(const engine&) = default;
engine& engine::operator=(const engine&) = default;
engine::~engine() = default;

const settings& engine::config() const { return d_->cfg; }

engine engine::load(const std::string& dialogs_dir, const std::string& locales_dir, settings s) {
  namespace fs = std::filesystem;
  auto d = std::make_shared<engine_data>();
  d->cfg = std::move(s);

  for (const char* lang : {"ar", "en"}) {
    fs::path p = fs::path(locales_dir) / (std::string(lang) + ".json");
    if (!fs::exists(p)) fail(std::string(lang) + ".json", "missing locale file", p.string());
    d->locales[lang] = load_locale(p);
  }
  // Every text key in both locales.
  const auto& ar = d->locales["ar"];
  const auto& en = d->locales["en"];
  for (const auto& [k, _] : ar.texts)
    if (!en.texts.count(k)) fail("en.json", "missing text key", k);
  for (const auto& [k, _] : en.texts)
    if (!ar.texts.count(k)) fail("ar.json", "missing text key", k);

  fs::path flows_dir = fs::path(dialogs_dir) / "flows";
  if (!fs::is_directory(flows_dir)) flows_dir = fs::path(dialogs_dir);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(flows_dir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    flow_def f = load_flow(p, d->intent_routes);
    if (d->flows.count(f.name)) fail(f.file, "duplicate flow", f.name);
    std::string name = f.name;
    d->flows.emplace(name, std::move(f));
  }
  check_flows(*d);

  // Lexicons: every locale contributes, because people mix languages.
  for (const auto& [lang, l] : d->locales) {
    for (const auto& [intent, kws] : l.intents) {
      if (intent == "danger") continue;
      for (const auto& kw : kws) {
        auto p = detail::make_phrase(kw);
        if (!p.tokens.empty()) d->lexicon.push_back({intent, "", std::move(p)});
      }
    }
    for (const auto& [topic, kws] : l.topics)
      for (const auto& kw : kws) {
        auto p = detail::make_phrase(kw);
        if (!p.tokens.empty()) d->lexicon.push_back({"inquiry", topic, std::move(p)});
      }
    auto add_danger = [&](const std::vector<std::string>& kws) {
      for (const auto& kw : kws) {
        auto p = detail::make_phrase(kw);
        if (!p.tokens.empty()) d->danger.push_back(std::move(p));
      }
    };
    add_danger(l.danger);
    if (auto it = l.intents.find("danger"); it != l.intents.end()) add_danger(it->second);
    for (const auto& [w, kws] : l.words)
      for (const auto& kw : kws) {
        auto p = detail::make_phrase(kw);
        if (p.tokens.empty()) continue;
        if (w == "question") d->question_markers.push_back(p);
        d->words[w].push_back(std::move(p));
      }
  }
  for (const auto& kw : d->cfg.danger_words) {
    auto p = detail::make_phrase(kw);
    if (!p.tokens.empty()) d->danger.push_back(std::move(p));
  }
  if (auto it = en.words.find("english"); it != en.words.end())
    for (const auto& w : it->second) d->english_markers.push_back(normalize(w));
  prepare(*d);
  return engine(std::move(d));
}

// ---------------------------------------------------------------------------------------------
// texts

namespace {

// Placeholders are {name}. A line whose placeholders are all known but one of them is empty
// is dropped, so optional settings (phone, email ...) leave no empty labels behind.
// `lookup(name, scratch)` returns the value of a placeholder, or null if it is not one; it may
// point into `scratch`, whose value is used before the next call.
template <class Lookup>
std::string fill(std::string_view tmpl, Lookup&& lookup) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  std::string scratch;
  std::size_t pos = 0;
  while (pos <= tmpl.size()) {
    std::size_t eol = tmpl.find('\n', pos);
    if (eol == std::string_view::npos) eol = tmpl.size();
    const std::string_view line = tmpl.substr(pos, eol - pos);
    const std::size_t mark = out.size();
    if (!out.empty() || pos > 0) out += '\n';
    bool drop = false;
    std::size_t i = 0;
    while (i < line.size()) {
      if (line[i] == '{') {
        std::size_t close = line.find('}', i);
        if (close != std::string_view::npos) {
          if (const std::string* v = lookup(line.substr(i + 1, close - i - 1), scratch)) {
            if (v->empty()) drop = true;
            out += *v;
            i = close + 1;
            continue;
          }
        }
      }
      // Up to the next '{' (a '{' that named nothing is kept as it is).
      std::size_t next = line.find('{', i + 1);
      if (next == std::string_view::npos) next = line.size();
      out.append(line.substr(i, next - i));
      i = next;
    }
    if (drop) out.resize(mark);
    pos = eol + 1;
  }
  // Trim a leading newline produced by a dropped first line.
  std::size_t lead = out.find_first_not_of('\n');
  out.erase(0, lead == std::string::npos ? out.size() : lead);
  return out;
}

// The text `key` in `lang` ("ar" if unknown; the key itself if there is no such text), its
// placeholders filled by `lookup` first, then from the settings.
template <class Lookup>
std::string render(const engine_data& d, std::string_view lang, std::string_view key, Lookup&& lookup) {
  auto lit = d.locales.find(lang);
  if (lit == d.locales.end()) lit = d.locales.find("ar");
  const detail::locale_data& l = lit->second;
  auto it = l.templates.find(key);
  if (it == l.templates.end()) return std::string(key);
  if (it->second.fixed) return it->second.text;
  return fill(it->second.text, [&](std::string_view name, std::string& scratch) -> const std::string* {
    if (const std::string* v = lookup(name, scratch)) return v;
    for (const auto& [k, v] : l.settings_vars)
      if (k == name) return &v;
    return nullptr;
  });
}

}  // namespace

std::string engine::text(std::string_view lang, std::string_view key,
                         const std::map<std::string, std::string>& vars) const {
  return render(*d_, lang, key, [&](std::string_view name, std::string&) -> const std::string* {
    if (vars.empty()) return nullptr;
    auto it = vars.find(std::string(name));
    return it == vars.end() ? nullptr : &it->second;
  });
}

// ---------------------------------------------------------------------------------------------
// understanding

namespace {

bool danger_in(const engine_data& d, const detail::message& toks) {
  if (toks.empty()) return false;
  for (std::size_t i = 0; i < d.danger.size(); ++i)
    if (d.danger_filters[i].may_match(toks) && detail::match_phrase(d.danger[i], toks, /*fuzzy=*/false) > 0) return true;
  return false;
}

// classify() for a message already split into words (toks == message_tokens(text)).
classification classify_in(const engine_data& d, std::string_view text, const detail::message& toks) {
  if (toks.empty()) return {"unknown", ""};
  if (danger_in(d, toks)) return {"danger", ""};
  const auto& menu = d.flows.at("menu").steps.at("main");
  // A menu number or a menu button id.
  if (auto n = parse_choice_number(text, static_cast<int>(menu.choices.size()))) {
    const auto& c = menu.choices[static_cast<std::size_t>(*n - 1)];
    return {c.intent, ""};
  }
  for (const auto& c : menu.choices)
    if (equals_lower_ascii(text, c.id_lower)) return {c.intent, ""};
  // A case reference ("AWN-2026-000123") means tracking.
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const std::u32string& w = toks.words[i].text;
    bool digits_follow = i + 1 < toks.size() && !toks.words[i + 1].text.empty() &&
                         toks.words[i + 1].text[0] >= U'0' && toks.words[i + 1].text[0] <= U'9';
    if (w.size() >= 3 && w[0] == U'a' && w[1] == U'w' && w[2] == U'n' &&
        (digits_follow || (w.size() > 3 && w[3] >= U'0' && w[3] <= U'9')))
      return {"track_request", ""};
  }

  // Scores by index in known_intents / known_topics; 0 is "not said".
  std::array<double, 16> score{};  // known_intents and known_topics are shorter
  std::array<double, 16> topic_score{};
  for (std::size_t i = 0; i < d.lexicon.size(); ++i) {
    if (!d.lexicon_filters[i].may_match(toks)) continue;
    const auto& e = d.lexicon[i];
    double m = detail::match_phrase(e.p, toks);
    if (m <= 0) continue;
    double& slot = e.topic.empty() ? score[e.intent_index] : topic_score[e.topic_index];
    slot = std::max(slot, m) + 0.01 * m;
  }
  // The best topic; a tie goes to the first in alphabetical order.
  static const std::vector<std::size_t> topics_by_name = [] {
    std::vector<std::size_t> v(known_topics.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = i;
    std::sort(v.begin(), v.end(), [](std::size_t a, std::size_t b) { return known_topics[a] < known_topics[b]; });
    return v;
  }();
  std::size_t best_topic = known_topics.size();
  double best_topic_score = 0;
  for (std::size_t t : topics_by_name)
    if (topic_score[t] > best_topic_score) best_topic = t, best_topic_score = topic_score[t];
  if (best_topic != known_topics.size()) {
    bool question = text.find('?') != std::string_view::npos || text.find("؟") != std::string_view::npos ||
                    std::any_of(d.question_markers.begin(), d.question_markers.end(),
                                [&](const detail::phrase& p) { return detail::match_phrase(p, toks) > 0; });
    double v = best_topic_score + (question ? 3.0 : 0.0);
    double& inquiry = score[index_of(known_intents, "inquiry")];
    inquiry = std::max(inquiry, v);
  }
  // Greetings and thanks only win when nothing else is said.
  for (const char* weak : {"greeting", "thanks"}) score[index_of(known_intents, weak)] *= 0.4;
  // Ties: the more specific intent wins.
  static const std::vector<std::size_t> priority = [] {
    std::vector<std::size_t> v;
    for (const char* i : {"delete_data", "switch_language", "talk_to_staff", "track_request", "volunteer",
                          "help_request", "inquiry", "cancel", "menu", "thanks", "greeting"})
      v.push_back(index_of(known_intents, i));
    return v;
  }();
  std::size_t best = known_intents.size();
  double best_score = 0;
  for (std::size_t intent : priority)
    if (score[intent] > best_score + 1e-9) best = intent, best_score = score[intent];
  if (best == known_intents.size()) return {"unknown", ""};
  if (known_intents[best] == "inquiry")
    return {"inquiry", best_topic == known_topics.size() ? "services" : known_topics[best_topic]};
  return {known_intents[best], ""};
}

}  // namespace

bool engine::is_danger(std::string_view text) const { return danger_in(*d_, detail::message_tokens(text)); }

classification engine::classify(std::string_view text) const {
  return classify_in(*d_, text, detail::message_tokens(text));
}

// ---------------------------------------------------------------------------------------------
// the step machine

namespace {

const std::set<std::string, std::less<>> global_intents = {"menu", "cancel", "talk_to_staff",
                                                           "switch_language", "delete_data"};

/// A word that negates what follows (negation_words(), as a message's words are held).
bool is_negation(std::u32string_view w) {
  static const std::vector<std::u32string> words = [] {
    std::vector<std::u32string> v;
    for (const auto& n : negation_words()) v.push_back(utf8_decode(n));
    return v;
  }();
  return std::find(words.begin(), words.end(), w) != words.end();
}

struct runner {
  runner(const engine& e, const engine_data& data, const context& c, const state& s)
      : eng(e), d(data), ctx(c) {
    res.next = s;
  }
  const engine& eng;
  const engine_data& d;
  const context& ctx;
  step_result res;
  bool misunderstood = false;

  // The message, normalized and split once per turn, for danger words, choices and the
  // classifier alike.
  struct analysis {
    std::string text;  // what it was made from
    std::u32string norm32;
    std::string norm;
    detail::message msg;
    std::optional<classification> intent;
  };
  std::optional<analysis> analysis_;
  const analysis& analyse(std::string_view text) {
    if (!analysis_ || analysis_->text != text) {
      analysis_.emplace();
      analysis_->text = text;
      analysis_->norm32 = normalize_u32(text);
      analysis_->norm = utf8_encode(analysis_->norm32);
      analysis_->msg = detail::make_message(analysis_->norm32);
    }
    return *analysis_;
  }
  const classification& classified(std::string_view text) {
    analyse(text);
    if (!analysis_->intent) analysis_->intent = classify_in(d, text, analysis_->msg);
    return *analysis_->intent;
  }

  // A global word said as such: the whole message is one of the lexicon's phrases for it, word
  // for word (a proclitic allowed, no typo, no other word). At a step that takes an answer in
  // words, or one of its choices, or while waiting for staff, a looser reading took a name
  // ("محمد الغيث", one letter from الغي) for "cancel", a description ("موظف في الشركة سرق
  // راتبي") for "staff", "أرجو الرد" for "menu" (leaving the queue), and "4" for the main
  // menu's fourth choice.
  classification said_exactly(std::string_view text) {
    // Politeness aside ("English please", "موظف لو سمحت").
    static const std::vector<std::u32string> polite = [] {
      std::vector<std::u32string> v;
      // ... and the words of asking ("ابي اكلم موظف", "التحدث مع موظف", "I want to talk to staff").
      for (const char* w : {"please", "plz", "pls", "لو", "سمحت", "سمحتوا", "لوسمحت", "من", "فضلك", "فضلكم", "رجاء", "ابي", "ابغى",
                            "ابغا", "اريد", "ودي", "بدي", "احتاج", "اكلم", "اتكلم", "اتحدث", "التحدث", "تحدث", "مع", "i", "want",
                            "need", "would", "like", "to", "talk", "speak", "with", "a", "an", "the", "go", "back"})
        v.push_back(normalize_u32(w));
      return v;
    }();
    std::u32string kept;
    for (const auto& w : analyse(text).msg.words) {
      if (std::find(polite.begin(), polite.end(), w.text) != polite.end()) continue;
      if (!kept.empty()) kept += U' ';
      kept += w.text;
    }
    const detail::message polite_aside = detail::make_message(kept);
    static const char* const order[] = {"delete_data", "switch_language", "talk_to_staff", "cancel", "menu"};
    std::size_t best = std::size(order);
    for (const detail::message* toks : {&analyse(text).msg, &polite_aside}) {
      if (toks->empty()) continue;
      for (const auto& e : d.lexicon) {
        if (!e.topic.empty() || e.p.tokens.size() != toks->size()) continue;
        const auto rank = static_cast<std::size_t>(std::find_if(std::begin(order), std::end(order),
                                                                [&](const char* i) { return e.intent == i; }) -
                                                   std::begin(order));
        if (rank >= best || detail::match_phrase(e.p, *toks, /*fuzzy=*/false) <= 0) continue;
        best = rank;
      }
    }
    return best == std::size(order) ? classification{"unknown", ""} : classification{order[best], ""};
  }

  state& st() { return res.next; }
  // A text in the conversation's language. Placeholders come from `extra`, then the slots
  // (strings and integers, plus {documents_count}, {service_type_title} and {national_id_masked}),
  // then the settings.
  std::string t(std::string_view key, const std::map<std::string, std::string>& extra = {}) {
    return render(d, st().lang, key, [&](std::string_view name, std::string& scratch) -> const std::string* {
      if (!extra.empty())
        if (auto it = extra.find(std::string(name)); it != extra.end()) return &it->second;
      const json& slots = st().slots;
      if (name == "documents_count") {
        auto docs = slots.find("documents");
        scratch = to_local_digits(std::to_string(docs != slots.end() && docs->is_array() ? docs->size() : 0));
        return &scratch;
      }
      if (name == "national_id_masked") {
        // The summary shows the ID's last four digits only: the chat stays on the phone, and
        // the rest was just typed (and checksum-checked); "edit" still asks for it again.
        if (const std::string* id = slot_text(slots, "national_id", scratch)) {
          const std::string tail = id->size() > 4 ? id->substr(id->size() - 4) : *id;
          scratch = "\u2066\u2022\u2022\u2022\u2022\u2022\u2022" + tail + "\u2069";
          return &scratch;
        }
      }
      if (name == "service_type_title") {
        if (const std::string* type = slot_text(slots, "service_type", scratch)) {
          scratch = eng.text(st().lang, "service." + *type);
          return &scratch;
        }
      }
      const std::string* v = slot_text(slots, name, scratch);
      if (v && !v->empty() && (*v)[0] == '+') {
        // A number with its sign ("+966…") inside an Arabic line: isolated left to right, or the
        // sign lands at the wrong end ("966…+").
        scratch = "\u2066" + *v + "\u2069";
        return &scratch;
      }
      return v;
    });
  }

  // A slot as a placeholder value: strings as they are, integers in ASCII digits.
  static const std::string* slot_text(const json& slots, std::string_view name, std::string& scratch) {
    auto it = slots.find(name);
    if (it == slots.end()) return nullptr;
    if (it->is_string()) return &it->get_ref<const std::string&>();
    if (it->is_number_integer()) {
      scratch = std::to_string(it->get<long long>());
      return &scratch;
    }
    return nullptr;
  }

  std::string to_local_digits(const std::string& s) {
    if (st().lang != "ar") return s;
    std::u32string out;
    for (char c : s) out.push_back(c >= '0' && c <= '9' ? U'\u0660' + (c - '0') : static_cast<char32_t>(c));
    return utf8_encode(out);
  }

  void say(std::string_view key, const std::map<std::string, std::string>& extra = {}) {
    if (key.empty()) return;
    res.replies.push_back({t(key, extra), {}, false, false});
  }

  void effect(std::string type, json data = json::object()) {
    res.effects.push_back({std::move(type), std::move(data)});
  }

  const step_def* current() {
    auto f = d.flows.find(st().flow);
    if (f == d.flows.end()) return nullptr;
    auto s = f->second.steps.find(st().step);
    return s == f->second.steps.end() ? nullptr : &s->second;
  }

  std::vector<choice> render_choices(const step_def& s) {
    std::vector<choice> out;
    out.reserve(s.choices.size());
    for (const auto& c : s.choices)
      out.push_back({c.id, t(c.title), c.description.empty() ? std::string() : t(c.description)});
    return out;
  }

  /// Telegram's share-contact button, labelled in the conversation's language (the provider's
  /// renderer takes the first choice's title as the label).
  void contact_button(reply& r, const step_def& s) {
    r.request_contact = s.request_contact && ctx.channel == "telegram";
    if (r.request_contact && r.choices.empty()) r.choices.push_back({"share_contact", t("choice.share_contact")});
  }

  void prompt(const step_def& s) {
    for (std::size_t i = 0; i < s.prompt.size(); ++i) {
      reply r{t(s.prompt[i]), {}, false, false};
      if (i + 1 == s.prompt.size()) {
        r.choices = render_choices(s);
        contact_button(r, s);
        r.request_document = s.request_document;
      }
      res.replies.push_back(std::move(r));
    }
  }

  // Moves to `target` ("step", "flow/step" or "flow"), runs its on_enter action and prompts.
  void enter(std::string_view target) {
    for (int hops = 0; hops < 8; ++hops) {
      auto [fl, sn] = resolve(d, st().flow, target);
      if (fl.empty()) {
        fl = "menu";
        sn = "main";
      }
      if (fl == "menu") clear_slots();  // nothing collected outlives its flow
      st().flow = fl;
      st().step = sn;
      const step_def& s = d.flows.at(fl).steps.at(sn);
      if (!s.on_enter.empty()) {
        std::string redirect = act(s.on_enter, s, "");
        if (redirect == "!stop") return;
        if (!redirect.empty()) {
          target = redirect_store(redirect);
          continue;
        }
      }
      prompt(s);
      return;
    }
  }
  std::string redirect_buf;
  std::string_view redirect_store(std::string r) {
    redirect_buf = std::move(r);
    return redirect_buf;
  }

  void clear_slots() { st().slots = json::object(); }

  // Moves on after a valid answer: to the pending "return to" step if one is set, else `next`.
  void advance(const std::string& next) {
    st().misunderstandings = 0;
    if (st().slots.contains("_return") && st().slots["_return"].is_string()) {
      std::string back = st().slots["_return"].get<std::string>();
      st().slots.erase("_return");
      enter(back);
      return;
    }
    if (!next.empty()) enter(next);
  }

  // -- actions ------------------------------------------------------------------------------
  // Returns "" to continue to the usual next step, a target to go there instead, or "!stop".
  std::string act(const std::string& name, const step_def& s, const std::string& value) {
    if (name.empty()) return {};
    if (name == "consent") {
      st().consented = true;
      effect("consent_given");
    } else if (name == "decline") {
      clear_slots();
    } else if (name == "toggle_language") {
      st().lang = st().lang == "ar" ? "en" : "ar";
      effect("language_changed", {{"lang", st().lang}});
    } else if (name == "route_mobile") {
      auto v = validate_mobile(ctx.channel_phone);
      if (v.ok()) {
        st().slots["_channel_mobile"] = v.value;
        return "mobile_confirm";
      }
      return "mobile_ask";
    } else if (name == "use_channel_phone") {
      if (st().slots.contains("_channel_mobile")) st().slots["mobile"] = st().slots["_channel_mobile"];
    } else if (name == "add_document" || name == "attach_document") {
      return document_received(name == "attach_document");
    } else if (name == "create_case") {
      std::string ref = ctx.new_case_reference ? ctx.new_case_reference() : std::string();
      json docs = json::array();
      if (st().slots.contains("documents") && st().slots["documents"].is_array()) docs = st().slots["documents"];
      auto get = [&](const char* k) {
        return st().slots.contains(k) && st().slots[k].is_string() ? st().slots[k].get<std::string>() : std::string();
      };
      effect("create_case", {{"reference", ref},
                             {"full_name", get("full_name")},
                             {"national_id", get("national_id")},
                             {"mobile", get("mobile")},
                             {"city", get("city")},
                             {"service_type", get("service_type")},
                             {"description", get("description")},
                             {"documents", docs}});
      clear_slots();
      st().slots["reference"] = ref;  // shown by the "say" text; cleared by the next flow
    } else if (name == "find_case") {
      auto get = [&](const char* k) {
        return st().slots.contains(k) && st().slots[k].is_string() ? st().slots[k].get<std::string>() : std::string();
      };
      std::string ref = get("reference"), nid = get("national_id");
      std::optional<case_status> found;
      if (ctx.find_case) found = ctx.find_case(ref, nid);
      clear_slots();  // the national ID is not kept in the dialog state
      if (!found) return "not_found";
      std::map<std::string, std::string> vars = {
          {"reference", found->reference},
          {"method", found->verification_method.empty() ? std::string()
                                                        : t("method." + found->verification_method)},
          {"appointment", found->appointment}};
      std::string step_text = t("case_step." + found->step, vars);
      if (step_text == "case_step." + found->step) step_text = found->step;
      std::string appt = found->appointment.empty() || step_text.find(found->appointment) != std::string::npos
                             ? std::string()
                             : t("track.appointment_line", vars);
      vars["status"] = step_text;
      vars["appointment_line"] = appt;
      res.replies.push_back({t("track.found", vars), {}, false, false});
    } else if (name == "queue_for_staff") {
      queue(value.empty() ? "requested" : value);
      return "waiting";
    } else if (name == "leave_queue") {
      effect("leave_queue");
    } else if (name == "register_volunteer") {
      auto get = [&](const char* k) {
        return st().slots.contains(k) && st().slots[k].is_string() ? st().slots[k].get<std::string>() : std::string();
      };
      effect("register_volunteer", {{"name", get("name")},
                                    {"city", get("city")},
                                    {"skills", get("skills")},
                                    {"availability", get("availability")}});
      clear_slots();
    } else if (name == "survey_answer") {
      int score = std::atoi(value.c_str());
      if (score >= 1 && score <= 5 && !s.question.empty()) {
        st().slots[s.question] = score;
        effect("survey_answer", {{"question", s.question}, {"score", score}});
      }
    } else if (name == "survey_complete") {
      json data = json::object();
      for (const char* q : {"overall", "speed", "courtesy"})
        data[q] = st().slots.contains(q) ? st().slots[q] : json(nullptr);
      data["comment"] = st().slots.contains("comment") && st().slots["comment"].is_string()
                            ? st().slots["comment"]
                            : json("");
      effect("survey_complete", data);
      clear_slots();
    } else if (name == "erase") {
      // Confirmed: out of the staff queue too, if they were waiting (bot/ keeps a conversation
      // there after danger words).
      effect("leave_queue", {{"erased", true}});
      effect("erase_data");
      std::string lang = st().lang;
      state fresh;
      fresh.lang = lang;
      st() = fresh;
      say("erase.done");
      return "!stop";
    } else if (name == "go_back" || name == "resume") {
      const char* key = name == "go_back" ? "_back" : "_resume";
      std::string back = st().slots.contains(key) && st().slots[key].is_string()
                             ? st().slots[key].get<std::string>()
                             : std::string("menu/main");
      st().slots.erase(key);
      if (resolve(d, "", back).first.empty()) back = "menu/main";
      return back;
    } else if (name == "clear") {
      clear_slots();
    }
    return {};
  }

  static json document_of(const input& m) {
    return {{"media_id", m.media_id}, {"media_kind", m.media_kind}, {"mime", m.media_mime}, {"filename", m.media_filename}};
  }

  // Whether the flow gathers documents for a case it has yet to create (intake's add_document).
  bool flow_collects_documents(const std::string& flow) const {
    auto f = d.flows.find(flow);
    if (f == d.flows.end()) return false;
    for (const auto& [name, step] : f->second.steps)
      if (step.action == "add_document") return true;
    return false;
  }

  std::string document_received(bool attach) {
    json docs = st().slots.contains("documents") && st().slots["documents"].is_array() ? st().slots["documents"]
                                                                                       : json::array();
    if (docs.size() >= 10) {
      say("intake.too_many_documents");
      return "!stop";
    }
    json doc = document_of(pending_media);
    if (attach) {
      json data = doc;
      data["reference"] = st().slots.value("reference", std::string());
      effect("attach_document", data);
      // Only a count is kept: the document itself is with the case.
      docs.push_back(json::object());
    } else {
      docs.push_back(doc);
    }
    st().slots["documents"] = docs;
    return {};
  }
  input pending_media;
  bool caption_turn = false;  ///< handling the caption of a file as the answer (see handle)
  bool went_global = false;   ///< the last text was taken as a global intent (menu, cancel, staff, …)

  void queue(const std::string& reason) {
    effect("queue_for_staff", {{"reason", reason}, {"priority", reason == "danger" ? 1 : 0}});
    if (reason == "danger") return;
    std::string msg = t(reason == "misunderstood" ? "misunderstood_handoff" : "handoff.queued");
    if (!ctx.within_working_hours) msg += "\n" + t("after_hours");
    res.replies.push_back({msg, {}, false, false});
  }

  // -- input handling ----------------------------------------------------------------------

  /// `counts`: whether it counts toward the three that hand the conversation to staff (and
  /// clear the answers so far). A file where none is expected does not: a WhatsApp album or an
  /// MMS arrives as one message per picture, and three of them would wipe an intake.
  void misunderstanding(const step_def& s, const std::string& key_asked, bool counts = true) {
    misunderstood = true;
    // A photo whose caption does not answer the question ("my ID card" under a picture of it)
    // is still a file where none is expected: no count, and that is what the person is told.
    const std::string key = caption_turn ? "media_not_expected" : key_asked;
    if (counts && !caption_turn) st().misunderstandings += 1;
    if (st().misunderstandings >= 3) {
      st().misunderstandings = 0;
      clear_slots();
      queue("misunderstood");
      st().flow = "handoff";
      st().step = "waiting";
      return;
    }
    reply r{t(key), render_choices(s), false, false};
    contact_button(r, s);
    r.request_document = s.request_document;
    res.replies.push_back(std::move(r));
  }

  std::optional<std::size_t> match_choice(const step_def& s, const input& in, const std::string& text) {
    if (s.choices.empty()) return std::nullopt;
    if (in.type == input::kind::choice && !in.choice_id.empty()) {
      // A button is its id: one of another step's (an earlier message's) is none of these,
      // whatever its title says ("أوافق" from the consent is not the summary's "confirm").
      for (std::size_t i = 0; i < s.choices.size(); ++i)
        if (s.choices[i].id == in.choice_id) return i;
      return std::nullopt;
    }
    if (text.empty()) return std::nullopt;
    if (auto n = parse_choice_number(text, static_cast<int>(s.choices.size())))
      return static_cast<std::size_t>(*n - 1);
    for (std::size_t i = 0; i < s.choices.size(); ++i)
      if (equals_lower_ascii(text, s.choices[i].id_lower)) return i;
    const analysis& a = analyse(text);
    if (a.norm.empty()) return std::nullopt;
    // Exact title in either language, then the choice's word list, then a fuzzy title.
    for (std::size_t i = 0; i < s.choices.size(); ++i)
      for (const auto& title : s.choices[i].title_norm)
        if (title == a.norm) return i;
    // Of the word lists, the longest phrase found wins ("ما أوافق", a refusal, over the "أوافق"
    // it contains), and a phrase is not taken when the message negates it: a negation
    // ("ما", "مو", "غير", "not") that the phrase itself does not have ("مو موافق", "مو صح",
    // "not sure" are no yes).
    const auto negated = [&a](const detail::phrase& p) {
      for (const auto& w : a.msg.words)
        if (is_negation(w.text) && std::find(p.tokens.begin(), p.tokens.end(), w.text) == p.tokens.end()) return true;
      return false;
    };
    std::optional<std::size_t> listed;
    double listed_score = 0;
    for (std::size_t i = 0; i < s.choices.size(); ++i) {
      if (!s.choices[i].word_list) continue;
      for (const auto& p : *s.choices[i].word_list) {
        if (a.msg.size() > p.tokens.size() + 1) continue;
        const double m = detail::match_phrase(p, a.msg);
        if (m > listed_score && !negated(p)) listed = i, listed_score = m;
      }
    }
    if (listed) return listed;
    // A fuzzy title, but not for a message with a digit or a negation: "٣ جيد" is not "٤ جيد".
    for (const auto& w : a.msg.words)
      if (is_negation(w.text) || std::any_of(w.text.begin(), w.text.end(), [](char32_t c) { return c >= U'0' && c <= U'9'; }))
        return std::nullopt;
    std::optional<std::size_t> best;
    std::size_t best_d = 100;
    for (std::size_t i = 0; i < s.choices.size(); ++i)
      for (const auto& title : s.choices[i].title_u32) {
        std::size_t tol = title.size() >= 8 ? 2 : title.size() >= 4 ? 1 : 0;
        std::size_t dist = edit_distance_at_most(a.norm32, title, tol);
        if (dist <= tol && dist < best_d) best = i, best_d = dist;
      }
    return best;
  }

  void apply_choice(const step_def& s, const choice_def& c) {
    st().misunderstandings = 0;
    if (!c.return_to.empty()) st().slots["_return"] = resolve_full(c.return_to);
    // "value": "@text.key" stores that text as the person read it (e.g. an availability).
    if (!s.slot.empty() && !c.value.empty())
      st().slots[s.slot] = c.value[0] == '@' ? t(c.value.substr(1)) : c.value;
    std::string redirect = act(c.action, s, c.value.empty() ? c.id : c.value);
    if (redirect == "!stop") return;
    say(c.say);
    if (!redirect.empty()) {
      enter(redirect);
      return;
    }
    if (!c.return_to.empty()) {
      enter(c.next);  // editing one answer: the pending return applies after it
      return;
    }
    if (c.action.empty() && c.value.empty() && !c.next.empty() && st().slots.contains("_return")) {
      // A choice that answers nothing but leads to another question ("another number", while
      // editing the mobile from the summary): that question first; the return applies after
      // its answer, not in its place.
      enter(c.next);
      return;
    }
    advance(c.next.empty() ? s.next : c.next);
  }

  std::string resolve_full(const std::string& target) {
    auto [fl, sn] = resolve(d, st().flow, target);
    return fl + "/" + sn;
  }

  std::string here() { return st().flow + "/" + st().step; }

  // Global words. Returns true if handled.
  bool global(const std::string& intent, const std::string& text) {
    const bool in_queue = st().flow == "handoff";
    // Understood: the misunderstandings before it no longer run in a row.
    st().misunderstandings = 0;
    if (intent == "switch_language") {
      std::string n = normalize(text);
      std::string target = st().lang == "ar" ? "en" : "ar";
      auto has = [&](const char* w) { return n.find(normalize(w)) != std::string::npos; };
      if (has("english") || has("انجليزي") || has("انقليزي") || has("انجلش") || has("inglizi")) target = "en";
      else if (has("عربي") || has("العربيه") || has("arabic") || has("3arabi") || has("arabi")) target = "ar";
      if (target != st().lang) {
        st().lang = target;
        effect("language_changed", {{"lang", target}});
      }
      say("language_switched");
      if (const step_def* s = current()) prompt(*s);
      return true;
    }
    if (intent == "talk_to_staff") {
      if (in_queue) return true;  // already queued: stay silent
      clear_slots();
      enter("handoff");
      return true;
    }
    if (intent == "delete_data") {
      // Waiting for staff, the person stays in the queue until the erasure is confirmed (which
      // ends everything); declined, they are back in it where they were.
      std::string back = here();
      if (!st().consented) back = "welcome/consent";
      st().slots["_back"] = back;
      enter("erase/confirm");
      return true;
    }
    if (!st().consented) {
      // Before consent, "menu" and "cancel" bring back the consent question.
      enter("welcome/consent");
      return true;
    }
    if (intent == "menu" || intent == "cancel") {
      if (in_queue && ctx.danger_queued) {
        say("handoff.kept");  // still first in the queue: a person will be in touch
      } else if (in_queue) {
        effect("leave_queue");
        say("handoff.left");
      } else if (intent == "cancel") {
        bool had = st().flow != "menu" && st().flow != "inquiry";
        if (st().flow == "survey") say("survey.cancelled");
        else say(had ? "cancelled" : "nothing_to_cancel");
      }
      clear_slots();
      enter("menu/main");
      return true;
    }
    return false;
  }

  void route_intent(const step_def& s, const classification& c) {
    auto it = d.intent_routes.find(c.intent);
    if (c.intent == "unknown" || it == d.intent_routes.end()) {
      misunderstanding(s, "not_understood");
      return;
    }
    st().misunderstandings = 0;
    std::string say_key = it->second.say;
    if (auto p = say_key.find("{topic}"); p != std::string::npos) say_key.replace(p, 7, c.topic);
    clear_slots();
    say(say_key);
    if (!it->second.next.empty()) enter(it->second.next);
  }

  void handle(const input& in, const std::string& text) {
    const step_def* s = current();
    if (!s) {
      enter(st().consented ? "menu/main" : "welcome/consent");
      return;
    }
    if (in.type == input::kind::media && s->accept != "media" && !s->silent && !text.empty()) {
      // A photo whose caption answers the question (the description of what happened, say):
      // the caption is the answer. The file stays in the transcript for staff and, in a flow
      // that gathers documents for the case it will create (intake), it is one of them: the
      // picture of the damage sent with the description reaches the case. Kept only if the
      // caption is taken; a caption that does not answer leaves the documents as they were.
      std::optional<json> documents_before;
      std::size_t kept_at = 0;  // where the file went in the list
      if (!in.media_too_large && flow_collects_documents(st().flow)) {
        json docs = st().slots.contains("documents") && st().slots["documents"].is_array() ? st().slots["documents"]
                                                                                           : json::array();
        if (docs.size() < 10) {
          documents_before = st().slots.contains("documents") ? st().slots["documents"] : json();
          kept_at = docs.size();
          docs.push_back(document_of(in));
          st().slots["documents"] = std::move(docs);
        }
      }
      const bool misunderstood_before = misunderstood;
      misunderstood = false;
      went_global = false;
      input caption;
      caption.type = input::kind::text;
      caption.text = text;
      caption_turn = true;
      handle(caption, text);
      caption_turn = false;
      // Kept only if the caption answered the question: not if it was refused, nor if it was a
      // word the whole dialog understands ("English", "delete my data", "staff"). The list is
      // put back only while it still holds the file where it went: a "cancel" or "menu" that
      // cleared the answers must not have them back.
      if ((misunderstood || went_global) && documents_before && st().slots.contains("documents") &&
          st().slots["documents"].is_array() && st().slots["documents"].size() == kept_at + 1 &&
          st().slots["documents"].back() == document_of(in)) {
        if (documents_before->is_null()) st().slots.erase("documents");
        else st().slots["documents"] = std::move(*documents_before);
      }
      misunderstood = misunderstood || misunderstood_before;
      return;
    }
    if (auto i = match_choice(*s, in, text)) {
      apply_choice(*s, s->choices[*i]);
      return;
    }
    if (!text.empty() && in.type != input::kind::media) {
      if (analyse(text).msg.size() <= 6) {
        // Where the person may say anything (the menu, an inquiry), the classifier's reading;
        // elsewhere, only a global word said as such (said_exactly).
        const classification c = s->understands ? classified(text) : said_exactly(text);
        if (global_intents.count(c.intent) && global(c.intent, text)) {
          went_global = true;
          return;
        }
      }
      if (in.type == input::kind::choice) {
        // An old button's id: the main menu's ids work from anywhere.
        for (const auto& [id, intent] : std::initializer_list<std::pair<const char*, const char*>>{
                 {"menu", "menu"}, {"cancel", "cancel"}, {"staff", "talk_to_staff"}, {"menu.staff", "talk_to_staff"},
                 {"lang.en", "switch_language"}, {"lang.ar", "switch_language"}})
          if (in.choice_id == id && global(intent, in.choice_id == std::string("lang.en") ? "english" : in.choice_id == std::string("lang.ar") ? "عربي" : text)) {
            went_global = true;
            return;
          }
      }
    }
    if (s->silent) return;
    if (in.type == input::kind::media) {
      if (s->accept == "media" && in.media_too_large) {
        // Recorded in the transcript, but no document staff could open: asked for another copy.
        misunderstanding(*s, "media_too_large", false);
        return;
      }
      if (s->accept == "media") {
        pending_media = in;
        std::string redirect = act(s->action, *s, "");
        if (redirect == "!stop") return;
        say(s->say);
        advance(redirect.empty() ? s->next : redirect);
        return;
      }
      misunderstanding(*s, "media_not_expected", false);
      return;
    }
    if (in.type == input::kind::contact && !s->validator.empty() && (s->validator != "mobile" || !in.contact_is_sender)) {
      // A contact card is a number: it answers a question for the person's mobile, and only
      // when it is their own. Another person's card (from the address book, perhaps the
      // abuser's) is not taken as theirs: a number they mean is typed. Nor is a card the
      // answer to any other question (a description, a name).
      // (Elsewhere the person is asked again for what the step wants: "please write the city".)
      misunderstanding(*s, s->validator == "mobile" ? "invalid.mobile.not_yours" : "invalid." + s->validator + ".empty");
      return;
    }
    if (!s->understands && in.type == input::kind::choice && !in.choice_id.empty()) {
      // A button of an earlier message (Telegram and WhatsApp keep them pressable), none of
      // this step's: its title is no answer to a question asked in words ("أوافق" for what
      // happened, "تأكيد" for a name), nor one of this step's choices (the consent's "أوافق"
      // at the summary is not "confirm"). The question is asked again; no misunderstanding
      // counted. (Where the person may say anything, the menu or an inquiry, its title is read
      // as words: an earlier answer's topic button still answers.)
      misunderstood = true;
      res.replies.push_back(reply{t("old_choice"), {}, false, false});
      prompt(*s);
      return;
    }
    if (!s->validator.empty() && (in.type == input::kind::text || in.type == input::kind::contact ||
                                  in.type == input::kind::choice)) {
      validation v = run_validator(s->validator, text);
      if (v.ok()) {
        if (!s->slot.empty()) st().slots[s->slot] = v.value;
        std::string redirect = act(s->action, *s, v.value);
        if (redirect == "!stop") return;
        say(s->say);
        if (!redirect.empty()) {
          st().misunderstandings = 0;
          enter(redirect);
        } else {
          advance(s->next);
        }
        return;
      }
      misunderstanding(*s, "invalid." + s->validator + "." + v.error);
      return;
    }
    if (s->understands && in.type != input::kind::location) {
      route_intent(*s, classified(text));
      return;
    }
    misunderstanding(*s, "not_understood");
  }
};

bool looks_english(const engine_data& d, std::string_view text) {
  if (has_arabic_letter(text) || !has_latin_letter(text)) return false;
  for (const auto& t : tokenize(text))
    if (std::find(d.english_markers.begin(), d.english_markers.end(), t) != d.english_markers.end())
      return true;
  return false;
}

}  // namespace

step_result engine::step(const state& s, const input& in, const context& ctx) const {
  runner r(*this, *d_, ctx, s);
  std::string text = in.type == input::kind::contact ? in.contact_phone : in.text;
  if (text.size() > 4096) text.resize(4096);  // bounded work on hostile input

  auto finish = [&]() {
    r.st().last_activity = ctx.now;
    return std::move(r.res);
  };

  // 1. Danger, at any point, even before consent. The conversation otherwise stays where it is.
  if (!text.empty() && danger_in(*d_, r.analyse(text).msg)) {
    r.say("danger");
    // Outside working hours, when a person will be there: the emergency numbers are for now.
    if (!ctx.within_working_hours) r.say("after_hours");
    r.effect("queue_for_staff", {{"reason", "danger"}, {"priority", 1}});
    // If the message is also a valid answer to the current question (a description that
    // mentions a threat), take it, so nobody has to write it twice.
    const step_def* cur = r.current();
    if (cur && !cur->validator.empty() && !cur->silent && run_validator(cur->validator, text).ok())
      r.handle(in, text);
    return finish();
  }
  // 2. A first message (or a state this engine does not know): welcome and consent.
  if (s.flow.empty() || !r.current()) {
    if (s.flow.empty() && looks_english(*d_, text) && r.st().lang != "en") r.st().lang = "en";
    if (s.consented && !s.flow.empty()) {
      r.clear_slots();
      r.enter("menu/main");
      return finish();
    }
    r.clear_slots();
    r.enter("welcome/consent");
    return finish();
  }
  // 3. Idle mid-flow: offer to resume or restart before anything else. So does Telegram's
  // /start (its Start or Restart button, a t.me link, the command menu), which answers no
  // question: "/start" is not what happened, nor a name. Outside such a flow it shows the menu.
  auto f = d_->flows.find(s.flow);
  const bool start_command = ctx.channel == "telegram" && in.type == input::kind::text &&
                             (text == "/start" || text.rfind("/start ", 0) == 0 || text.rfind("/start@", 0) == 0);
  if (start_command && s.flow == "handoff") return finish();  // waiting for staff: as anything else then
  if (start_command && s.flow == "resume") {
    r.enter("resume/offer");  // the offer again, with what it would resume
    return finish();
  }
  if (start_command && !(f != d_->flows.end() && f->second.resumable)) {
    r.clear_slots();
    r.st().misunderstandings = 0;
    r.enter(s.consented ? "menu/main" : "welcome/consent");
    return finish();
  }
  if (f != d_->flows.end() && f->second.resumable && s.last_activity > 0 &&
      (start_command || ctx.now - s.last_activity > d_->cfg.idle_timeout_seconds)) {
    std::string here = r.here();
    r.st().slots["_resume"] = here;
    r.st().misunderstandings = 0;
    r.enter("resume/offer");
    return finish();
  }
  r.handle(in, text);
  return finish();
}

bool engine::busy(const state& s) const {
  auto f = d_->flows.find(s.flow);
  // The offer to resume holds what it would resume.
  if (f == d_->flows.end() || !(f->second.resumable || s.flow == "resume") || !s.slots.is_object()) return false;
  for (const auto& [k, v] : s.slots.items())
    if (!k.empty() && k[0] != '_') return true;
  return false;
}

step_result engine::start_survey(const state& s, const context& ctx) const {
  runner r(*this, *d_, ctx, s);
  r.st().misunderstandings = 0;
  r.clear_slots();
  r.enter("survey");
  r.st().last_activity = ctx.now;
  return std::move(r.res);
}

step_result engine::request_documents(const state& s, std::string_view case_reference,
                                      const context& ctx) const {
  runner r(*this, *d_, ctx, s);
  r.st().misunderstandings = 0;
  r.clear_slots();
  r.st().slots["reference"] = std::string(case_reference);
  r.enter("documents");
  r.st().last_activity = ctx.now;
  return std::move(r.res);
}

step_result engine::back_to_bot(const state& s, const context& ctx) const {
  runner r(*this, *d_, ctx, s);
  r.st().misunderstandings = 0;
  r.clear_slots();
  r.enter(s.consented ? "menu/main" : "welcome/consent");
  r.st().last_activity = ctx.now;
  return std::move(r.res);
}

}  // namespace aoun::dialogs

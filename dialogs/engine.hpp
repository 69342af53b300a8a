#pragma once

// The dialog engine: a pure function from (state, input, context) to (next state, replies,
// effects). It never does I/O except reading its JSON files in engine::load(), and it never logs.
//
// Thread-safety: an engine is immutable after load(); every const member may be called
// concurrently from any thread. To reload texts, bot/ builds a new engine and swaps it in.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace aoun::dialogs {

/// One button / list row / numbered option. `id` is ASCII (≤ 64 bytes); `title` is short
/// (≤ 20 characters for WhatsApp buttons, ≤ 24 for list rows); `description` is optional.
struct choice {
  std::string id;
  std::string title;
  std::string description;
};

/// One message to send. `choices` may be empty. `request_contact`: Telegram shows a
/// "share my number" keyboard. `request_document`: the bot expects a photo / file next.
struct reply {
  std::string text;
  std::vector<choice> choices;
  bool request_contact = false;
  bool request_document = false;
};

/// What the beneficiary sent, already translated from the channel's model by bot/.
struct input {
  enum class kind { text, choice, contact, location, media };
  kind type = kind::text;
  std::string text;       // raw text / caption / button title
  std::string choice_id;  // button or list id or callback data
  std::string contact_phone;
  bool contact_is_sender = false;
  std::string media_id, media_kind, media_mime, media_filename;
  /// The file is one staff could never fetch (Telegram lets bots download 20 MB at most): it is
  /// not taken as a document, and the person is asked for a smaller copy.
  bool media_too_large = false;
};

/// The conversation's dialog state; bot/ stores serialize() in SQLite.
struct state {
  std::string lang = "ar";  // "ar" | "en"
  bool consented = false;
  // "" = not started; "welcome", "menu", "intake", "inquiry", "track", "handoff",
  // "volunteer", "survey", "documents", "erase", "resume"
  std::string flow;
  std::string step;
  nlohmann::json slots = nlohmann::json::object();  // collected answers, pending choices, etc.
  int misunderstandings = 0;
  std::int64_t last_activity = 0;  // unix seconds

  /// Compact JSON.
  std::string serialize() const;
  /// Tolerant: empty or invalid JSON, or fields of the wrong type, give a fresh state.
  static state parse(std::string_view json);
};

/// What bot/ knows about a case, for "track a request".
struct case_status {
  std::string reference, step, verification_method, appointment;
};

/// Per-call facts the engine cannot know by itself.
struct context {
  std::int64_t now = 0;           // unix seconds
  std::string channel;            // "whatsapp" | "telegram" | "sms" | "webchat"
  std::string channel_phone;      // the mobile known from the channel, "" if unknown
  bool within_working_hours = true;
  // Raised for staff by danger words: such a conversation keeps its place in the queue, whatever
  // the person asks of the bot since (bot/ does not take it out).
  bool danger_queued = false;
  // Called once when a case is created, e.g. "AWN-2026-000123". May be empty in tests.
  std::function<std::string()> new_case_reference;
  // Returns the case only when both the reference and the national ID (ASCII digits) match.
  std::function<std::optional<case_status>(std::string_view reference, std::string_view national_id)>
      find_case;
};

/// Something bot/ must do, in the same DB transaction as the new state. Types and data:
///  "consent_given" {}, "language_changed" {"lang"},
///  "create_case" {"reference","full_name","national_id","mobile","city","service_type",
///                 "description","documents":[{"media_id","media_kind","mime","filename"}]},
///  "queue_for_staff" {"reason":"requested"|"misunderstood"|"danger","priority":0|1},
///  "leave_queue" {}, "register_volunteer" {"name","city","skills","availability"},
///  "survey_answer" {"question":"overall"|"speed"|"courtesy","score":1..5},
///  "survey_complete" {"overall","speed","courtesy","comment"},
///  "attach_document" {"reference","media_id","media_kind","mime","filename"}, "erase_data" {}
struct effect {
  std::string type;
  nlohmann::json data;
};

struct step_result {
  state next;
  std::vector<reply> replies;
  std::vector<effect> effects;
};

/// SPEC §5: intent is one of greeting, help_request, inquiry, track_request, talk_to_staff,
/// volunteer, danger, menu, cancel, delete_data, switch_language, thanks, unknown; topic is
/// set only for inquiry (services, eligibility, documents, channels, hours, contact).
struct classification {
  std::string intent;
  std::string topic;
};

/// From bot/ configuration; the association's own names, numbers and hours are never
/// hard-coded in the texts (they are `{association}`, `{emergency}`, `{hours}` ... placeholders).
struct settings {
  std::string association_name = "جمعية عون لرعاية ضحايا الجريمة";
  std::string association_name_en = "Aoun Association for the Care of Crime Victims";
  std::string emergency_numbers = "911";  // shown in danger replies
  std::string phone, email, website, address;
  std::string working_hours = "الأحد–الخميس ٨:٠٠–١٦:٠٠";
  std::string working_hours_en = "Sun–Thu 8:00–16:00";
  std::vector<std::string> danger_words;  // added to the locale's list
  int idle_timeout_seconds = 1800;        // mid-flow idle -> offer resume or restart
  int retention_days = 365;               // said in the privacy notice
};

namespace detail {
struct engine_data;
}

class engine {
 public:
  /// Loads dialogs_dir/flows/*.json (or dialogs_dir/*.json if there is no flows/ folder) and
  /// locales_dir/{ar,en}.json; cross-checks every step, text key and validator.
  /// Throws std::runtime_error("<file>: <what> '<key>'") naming the file and key on any
  /// inconsistency (the only place this module throws).
  static engine load(const std::string& dialogs_dir, const std::string& locales_dir, settings s);

  /// Pure. Never throws for any input or state (a corrupt state restarts the conversation).
  step_result step(const state& s, const input& in, const context& ctx) const;
  /// bot/: a case closed or a staff conversation resolved.
  step_result start_survey(const state& s, const context& ctx) const;
  /// Whether the person is answering questions in a flow that can be resumed (an intake, a
  /// volunteer form ...), with answers kept: starting something else now would lose them.
  bool busy(const state& s) const;
  /// Staff asked for documents for `case_reference`; media then go out as attach_document.
  step_result request_documents(const state& s, std::string_view case_reference,
                                const context& ctx) const;
  /// Staff released the conversation: main menu again.
  step_result back_to_bot(const state& s, const context& ctx) const;
  /// What the engine understands `text` to mean at the main menu (SPEC §5 `aoun classify`).
  classification classify(std::string_view text) const;
  /// Danger / self-harm words (locale lists + settings.danger_words); used by bot/ even in
  /// staff mode.
  bool is_danger(std::string_view text) const;
  /// A locale text with `{var}` filled from `vars`, then from settings ({association},
  /// {emergency}, {hours}, {phone}, {email}, {website}, {address}, {retention_days}).
  /// Keys for bot/: "queued", "staff_joined" ({name}), "staff_left", "after_hours" ({hours}),
  /// "case_step.<step>" ({reference}, {method}, {appointment}), "method.<method>",
  /// "outside_window_notice", "danger", "survey_thanks". Unknown lang -> "ar"; unknown key ->
  /// the key itself.
  std::string text(std::string_view lang, std::string_view key,
                   const std::map<std::string, std::string>& vars = {}) const;

  /// The settings the engine was loaded with.
  const settings& config() const;

  engine(engine&&) noexcept;
  engine& operator=(engine&&) noexcept;
  engine(const engine&);
  engine& operator=(const engine&);
  ~engine();

 private:
  explicit engine(std::shared_ptr<const detail::engine_data> d);
  std::shared_ptr<const detail::engine_data> d_;
};

}  // namespace aoun::dialogs

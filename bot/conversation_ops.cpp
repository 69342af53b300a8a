#include "bot/conversation_ops.hpp"

#include <algorithm>
#include <cstdio>

#include "bot/log.hpp"
#include "bot/outgoing_json.hpp"
#include "channels/crypto.hpp"
#include "channels/telegram.hpp"
#include "channels/whatsapp.hpp"
#include "storage/media_copies.hpp"
#include "storage/outbox.hpp"
#include "storage/staff.hpp"

namespace aoun::bot {
namespace {

/// What a person sent that the bot cannot read and that deserves an answer: WhatsApp's
/// "unsupported" (optionally "unsupported.<what>"), and what Telegram's parser names (a poll,
/// a dice, a game, a story, paid media) in a private chat.
bool answers_unsupported(channels::kind channel, std::string_view raw_type) {
  if (channel == channels::kind::telegram)
    return raw_type == "poll" || raw_type == "dice" || raw_type == "game" || raw_type == "story" || raw_type == "paid_media";
  if (channel != channels::kind::whatsapp) return false;
  if (raw_type == "unsupported") return true;
  if (raw_type.rfind("unsupported.", 0) != 0) return false;
  const auto what = raw_type.substr(12);
  for (std::string_view silent : {"pin", "unpin", "keep_in_chat", "poll_update", "reaction", "edit", "revoke"})
    if (what == silent) return false;
  return true;
}

using boost::system::error_code;
using nlohmann::json;

constexpr std::int64_t riyadh_offset = 3 * 3600;  // Asia/Riyadh has no daylight saving time
constexpr std::int64_t window_seconds = 24 * 3600;

std::string json_str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

channels::kind channel_of(const storage::conversation_row& conv) {
  return channels::kind_from_string(conv.channel).value_or(channels::kind::webchat);
}

/// Whether a message was written long before it came: more than ten minutes (Meta retries a
/// webhook for up to a week, after an outage of ours, say).
/// Not an edit (its date is the original message's) nor a live location's move.
bool delivered_late(const channels::inbound& in, std::int64_t now) {
  return in.timestamp > 0 && in.timestamp + 600 < now && !in.location_update &&
         in.raw_type.find("edited_message") == std::string::npos;
}

std::string inbound_payload(const channels::inbound& in, std::int64_t now) {
  const bool late = delivered_late(in, now);
  // Plain text (most messages) carries nothing beyond its text.
  if (in.choice_id.empty() && in.written_from.empty() && !in.forwarded && !late &&
      (in.type == channels::inbound_type::text || in.type == channels::inbound_type::status))
    return "{}";
  json p = json::object();
  if (!in.written_from.empty()) p["written_from"] = in.written_from;
  // Staff see when it was written, not only when it came.
  if (late) p["written_at"] = in.timestamp;
  if (in.forwarded) {
    p["forwarded"] = json::object();
    if (!in.forwarded_from.empty()) p["forwarded"]["from"] = in.forwarded_from;
    if (in.forwarded_at > 0) p["forwarded"]["at"] = in.forwarded_at;
  }
  if (!in.choice_id.empty()) p["choice_id"] = in.choice_id;
  if (in.type == channels::inbound_type::media) {
    p["media"] = {{"kind", in.media_kind}, {"id", in.media_id}, {"mime", in.media_mime}, {"filename", in.media_filename}};
    if (in.media_size > 0) p["media"]["size"] = in.media_size;
  }
  if (in.type == channels::inbound_type::location || in.location_update) {
    p["location"] = {{"latitude", in.latitude}, {"longitude", in.longitude}};
    // Telegram: which message it is (its live updates name it) and for how long it is live.
    if (!in.message_ref.empty()) p["location"]["message_ref"] = in.message_ref;
    if (in.live_period > 0) p["location"]["live_period"] = in.live_period;
    // When it was shared (an update's own message date), from which live_period runs.
    if ((in.live_period > 0 || in.location_update) && in.timestamp > 0) p["location"]["shared_at"] = in.timestamp;
  }
  if (in.type == channels::inbound_type::contact) p["contact"] = {{"phone", in.contact_phone}, {"is_sender", in.contact_is_sender}};
  if (in.type == channels::inbound_type::unsupported) p["raw_type"] = in.raw_type;
  return p.dump();
}

/// A Telegram file over what the Bot API lets a bot download: never fetched, never a document.
bool telegram_too_large(const channels::inbound& in) {
  return in.channel == channels::kind::telegram && in.media_size > channels::telegram::max_download_bytes;
}

/// Whether a file sent on `channel` (declared `size`, 0 when unknown) is worth a kept copy: one
/// a provider holds (the web chat's are in the database already) that Telegram can hand out and
/// that is not over the download limit.
bool copy_worthy(const config& cfg, std::string_view channel, std::int64_t size) {
  if (channel == "webchat") return false;
  if (channel == "telegram" && size > channels::telegram::max_download_bytes) return false;
  return size <= 0 || static_cast<std::uint64_t>(size) <= cfg.media.max_bytes;
}

dialogs::input to_input(const channels::inbound& in) {
  dialogs::input d;
  d.text = in.text;
  switch (in.type) {
    case channels::inbound_type::choice:
      d.type = dialogs::input::kind::choice;
      d.choice_id = in.choice_id;
      break;
    case channels::inbound_type::contact:
      d.type = dialogs::input::kind::contact;
      d.contact_phone = in.contact_phone;
      d.contact_is_sender = in.contact_is_sender;
      break;
    case channels::inbound_type::location: d.type = dialogs::input::kind::location; break;
    case channels::inbound_type::media:
      d.type = dialogs::input::kind::media;
      d.media_id = in.media_id;
      d.media_kind = in.media_kind;
      d.media_mime = in.media_mime;
      d.media_filename = in.media_filename;
      d.media_too_large = telegram_too_large(in);
      break;
    default: d.type = dialogs::input::kind::text;
  }
  return d;
}

}  // namespace

conversation_ops::conversation_ops(const config& cfg, std::shared_ptr<const dialogs::engine> engine)
    : cfg_(cfg), engine_(std::move(engine)) {}

std::shared_ptr<const dialogs::engine> conversation_ops::engine() const {
  std::lock_guard lock(engine_mutex_);
  return engine_;
}

void conversation_ops::set_engine(std::shared_ptr<const dialogs::engine> e) {
  std::lock_guard lock(engine_mutex_);
  engine_ = std::move(e);
}

bool conversation_ops::within_working_hours(std::int64_t now) const {
  std::int64_t local = now + riyadh_offset;
  int day = static_cast<int>(((local / 86400) + 4) % 7);  // 1970-01-01 was a Thursday (4)
  int minute = static_cast<int>((local % 86400) / 60);
  if (std::find(cfg_.work_days.begin(), cfg_.work_days.end(), day) == cfg_.work_days.end()) return false;
  return minute >= cfg_.work_start_minute && minute < cfg_.work_end_minute;
}

bool conversation_ops::window_open(const storage::conversation_row& conv, std::int64_t now) {
  if (conv.channel != "whatsapp") return true;
  return conv.last_inbound_at && now - *conv.last_inbound_at < window_seconds;
}

dialogs::context conversation_ops::make_context(storage::connection& c, const storage::conversation_row& conv,
                                                std::int64_t now) const {
  dialogs::context ctx;
  ctx.now = now;
  ctx.channel = conv.channel;
  if (conv.channel == "whatsapp" && !conv.address.empty() &&
      std::all_of(conv.address.begin(), conv.address.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    ctx.channel_phone = "+" + conv.address;
  else if (conv.channel == "sms")
    ctx.channel_phone = conv.address;
  ctx.within_working_hours = within_working_hours(now);
  ctx.danger_queued = conv.mode == "waiting" && conv.priority >= 1;
  // Both run inside the caller's transaction, on the writer thread, before it returns.
  ctx.new_case_reference = [&c, now]() -> std::string {
    auto n = storage::next_counter(c, "case_reference");
    std::int64_t year = 1970 + (now + riyadh_offset) / 31556952;  // reference readability only
    char buf[32];
    std::snprintf(buf, sizeof buf, "AWN-%lld-%06lld", static_cast<long long>(year),
                  static_cast<long long>(n ? *n : 0));
    return buf;
  };
  // Only the person's own case: a reference is sequential and a national ID is often known to
  // the family, perhaps to the very person the beneficiary fears; answered for anyone, the
  // pair would tell them that she asked for help, where her case stands and when her
  // appointment is. A case of someone else answers exactly as one that does not exist.
  ctx.find_case = [&c, owner = conv.beneficiary_id](std::string_view reference,
                                                    std::string_view national_id) -> std::optional<dialogs::case_status> {
    auto k = storage::find_case_by_reference(c, reference);
    if (!k || k->national_id != national_id || k->beneficiary_id != owner) return std::nullopt;
    return dialogs::case_status{k->reference, k->step, k->verification_method.value_or(""), k->appointment.value_or("")};
  };
  return ctx;
}

void conversation_ops::queue(storage::conversation_row& conv, std::string_view reason, int priority,
                             std::int64_t now) const {
  conv.priority = std::max(conv.priority, priority);
  if (conv.mode == "staff") return;  // already with a person; the priority still rises
  if (conv.mode != "waiting") {
    conv.mode = "waiting";
    conv.queued_at = now;
    conv.queue_reason = std::string(reason);
  } else if (priority > 0) {
    conv.queue_reason = std::string(reason);
  }
}

std::string conversation_ops::message_status_event(std::optional<std::int64_t> conversation_id, std::int64_t message_id,
                                                   std::string_view status, std::string_view error) {
  json ev{{"type", "message.status"},
          {"conversation_id", conversation_id.value_or(0)},
          {"message_id", message_id},
          {"delivery_status", status}};
  if (!error.empty()) ev["delivery_error"] = error;
  return ev.dump(-1, ' ', false, json::error_handler_t::replace);
}

boost::system::error_code conversation_ops::after_failure(storage::connection& c, std::string_view channel,
                                                         std::string_view error,
                                                         const std::vector<storage::delivery_change>& changed,
                                                         std::int64_t now) {
  // WhatsApp may accept a message and fail it later with 131047: its 24-hour window had
  // closed. Then it is closed here too (unless the person wrote since that send), so that
  // staff are offered the template instead of replies that fail the same way.
  if (channel == "whatsapp" && error.rfind("131047", 0) == 0)
    for (const auto& d : changed) {
      if (!d.conversation_id) continue;
      // Moved back to a day before that send, not cleared: when they last wrote is also read
      // when a number changes hands (storage::move_address).
      auto q = c.prepare(
          "UPDATE beneficiaries SET last_inbound_at = min(last_inbound_at, (SELECT coalesce(sent_at, created_at) "
          "FROM outbox WHERE id = ?2) - ?3) WHERE id = (SELECT beneficiary_id FROM conversations WHERE id = ?1) "
          "AND last_inbound_at <= (SELECT coalesce(sent_at, created_at) FROM outbox WHERE id = ?2)");
      if (!q) return q.error();
      if (auto ec = q->bind(1, *d.conversation_id).bind(2, d.outbox_id).bind(3, window_seconds).exec()) return ec;
    }
  // Twilio may accept an SMS and fail it later with 21610 (the recipient opted out with it;
  // a Messaging Service reports it so): from now on we know too, as when a send is refused
  // with it (bot/outbox.cpp), unless the person wrote after that message (a START since).
  if (channel == "sms" && error == "21610")
    for (const auto& d : changed) {
      if (!d.conversation_id || !d.message_id) continue;
      auto since = storage::inbound_after(c, *d.conversation_id, *d.message_id);
      if (!since) return since.error();
      if (*since) continue;
      auto to = c.prepare("SELECT recipient FROM outbox WHERE id = ?1");
      if (!to) return to.error();
      to->bind(1, d.outbox_id);
      auto row = to->step();
      if (!row) return row.error();
      if (!*row) continue;
      const std::string recipient = to->text(0);
      if (auto ec = storage::set_opt_out(c, channel, recipient, now)) return ec;
      if (auto ec = storage::outbox_refuse_unsent(c, channel, recipient, opted_out_reason(channel))) return ec;
      log::info("opt_out", {{"conversation_id", *d.conversation_id}, {"channel", std::string(channel)}, {"opt_out", "stop"}});
      break;
    }
  return {};
}

storage::result<bool> conversation_ops::handle_inbound(storage::connection& c, const channels::inbound& in,
                                                       std::int64_t now, after_commit& fx) const {
  const auto channel = std::string(channels::to_string(in.channel));
  if (in.type == channels::inbound_type::status) {
    // Not deduped by provider id: applying a status twice changes nothing the second time.
    // The provider's reason for a failure is kept for staff (at most 300 code points).
    const auto reason = channels::crypto::truncate_code_points(in.status_error, 300);
    auto changed = storage::outbox_delivery_status(c, channel, in.status_for, in.status, reason);
    if (!changed) return storage::result<bool>(boost::system::in_place_error, changed.error());
    if (changed->empty() && storage::delivery_status_rank(in.status) > storage::delivery_status_rank("sent")) {
      // No row moved: a repeat, a stale status, or one that came before the outbox committed
      // the id it names. The last is kept for the outbox to apply (idempotent if run twice).
      // Not an early "sent": recording the send says as much, and every message gets one.
      auto known = storage::outbox_has_provider_id(c, channel, in.status_for);
      if (!known) return known;
      if (!*known) receipts_.keep(channel, in.status_for, early_receipts::receipt{in.status, std::string(reason)});
    }
    if (in.status == "failed")
      for (const auto& d : *changed) fx.delivery_failed.emplace_back(channel, d.outbox_id);
    if (in.status == "failed")
      if (auto ec = after_failure(c, channel, in.status_error, *changed, now))
        return storage::result<bool>(boost::system::in_place_error, ec);
    if (fx.staff_listening)
      for (const auto& d : *changed) {
        if (!d.message_id) continue;
        fx.events.push_back(
            {"staff", message_status_event(d.conversation_id, *d.message_id, in.status, in.status == "failed" ? reason : "")});
      }
    return true;
  }
  if (!in.provider_id.empty()) {
    auto fresh = storage::mark_processed(c, channel, in.provider_id, now);
    if (!fresh) return fresh;
    if (!*fresh) return false;
  }
  if (in.from.empty()) {
    // A signed event with no sender we can read (a provider's new shape, or a broken one): no
    // beneficiary to file it under. Failing the job would answer 503, lose the other events of
    // the same request and have the provider retry it for days; so it is recorded for admins
    // (ids and kind only, no content), its dedupe key is kept, and the request answered 200.
    json detail{{"type", std::string(channels::to_string(in.type))}, {"raw_type", in.raw_type}};
    if (auto ec = storage::audit(c, std::nullopt, "webhook_event_unroutable", channel + ":" + in.provider_id,
                                 detail.dump(-1, ' ', false, json::error_handler_t::replace), now))
      return storage::result<bool>(boost::system::in_place_error, ec);
    fx.unroutable.push_back(in.provider_id);
    return true;
  }
  // The person's number (or WhatsApp user id) changed, on the provider's word: whoever was
  // filed under the old one is them, and what is still to be sent to the old number (which
  // may soon be someone else's) goes to the new one.
  for (const auto& previous : in.previous_addresses) {
    // WhatsApp's user ids (BSUIDs, "CC.xxx") are never handed on; phone numbers are digits.
    storage::address_change change;
    change.at = in.timestamp;
    change.now = now;
    change.same_person = channels::whatsapp::is_user_id(previous);
    auto moved = storage::move_address(c, channel, previous, in.from, change);
    if (!moved) return storage::result<bool>(boost::system::in_place_error, moved.error());
    if (moved->retired_beneficiary) fx.readdressed.push_back(channel + "\n" + in.from);
    if (moved->what != storage::address_move::none) fx.readdressed.push_back(channel + "\n" + previous);
    if (auto ec = announce_move(c, *moved, now, fx)) return storage::result<bool>(boost::system::in_place_error, ec);
    if (moved->what == storage::address_move::none && !moved->retired_beneficiary) continue;
    const bool merged = moved->what == storage::address_move::merged;
    log::info("beneficiary_address_changed", {{"channel", channel},
                                              {"beneficiary_id", moved->beneficiary_id},
                                              {"merged", merged},
                                              {"retired_beneficiary_id", moved->retired_beneficiary.value_or(0)}});
    if (auto ec = storage::audit(c, std::nullopt, "beneficiary_address_changed",
                                 "beneficiary:" + std::to_string(moved->beneficiary_id),
                                 json{{"channel", channel}, {"raw_type", in.raw_type}, {"merged", merged},
                                      {"retired_beneficiary_id", moved->retired_beneficiary.value_or(0)}}
                                     .dump(),
                                 now))
      return storage::result<bool>(boost::system::in_place_error, ec);
  }
  auto b = storage::upsert_beneficiary(c, channel, in.from, in.display_name, now, true, in.timestamp);
  if (!b) return storage::result<bool>(boost::system::in_place_error, b.error());
  // A number's previous holder, set aside (storage::move_address), whose late message
  // handle_all filed with them: recorded for staff, and nothing more. Nothing can reach them.
  const bool set_aside = retired_address(in.from);
  // A late message from an address the writer has left carries that address's user id, which
  // says nothing of who they are now: not linked (it would pass for a next holder).
  if (!set_aside && in.written_from.empty() && in.channel == channels::kind::whatsapp && !in.user_id.empty() && in.user_id != in.from && b->user_id != in.user_id) {
    // A notice records the person's new id (the moves above made them who they are); an old
    // message (Meta retries for days, unordered) says nothing of who holds the number now, so
    // it is filed and nothing changes hands.
    const bool notice = !in.previous_addresses.empty() || in.raw_type.rfind("system.", 0) == 0;
    const bool stale = in.timestamp > 0 && in.timestamp + 600 < now;
    const bool other_id = b->user_id.has_value() && !notice;
    if (other_id && !stale) {
      // The number's record knows another user id. WhatsApp makes a new user id with a new
      // number and never hands one on: whoever writes from this number under another id is its
      // next holder (operators recycle numbers), not the person we knew. That record is set
      // aside as for a changed number (docs/channels.md), and this person starts afresh (or
      // carries on from a message of theirs that named the user id alone, joined below).
      auto retired = storage::retire_address(c, channel, in.from, now);
      if (!retired) return storage::result<bool>(boost::system::in_place_error, retired.error());
      if (*retired) {
        fx.readdressed.push_back(channel + "\n" + in.from);
        log::info("beneficiary_number_reassigned", {{"channel", channel}, {"retired_beneficiary_id", **retired}});
        if (auto ec = storage::audit(c, std::nullopt, "beneficiary_number_reassigned",
                                     "beneficiary:" + std::to_string(**retired), json{{"channel", channel}}.dump(), now))
          return storage::result<bool>(boost::system::in_place_error, ec);
        if (auto ec = announce_retired(c, **retired, now, fx))
          return storage::result<bool>(boost::system::in_place_error, ec);
      }
    }
    if (!other_id || !stale) {
      // The phone number and WhatsApp's user id of one person, side by side. Someone we only
      // knew by that user id (a message without the number came first) is them: that younger
      // record joins the number's.
      storage::address_change same;
      same.at = in.timestamp;
      same.now = now;
      same.same_person = true;
      same.keep_to = true;
      auto moved = storage::move_address(c, channel, in.user_id, in.from, same);
      if (!moved) return storage::result<bool>(boost::system::in_place_error, moved.error());
      if (moved->what == storage::address_move::merged) {
        fx.readdressed.push_back(channel + "\n" + in.user_id);
        log::info("beneficiary_user_id_joined", {{"channel", channel}, {"beneficiary_id", moved->beneficiary_id}});
        if (auto ec = storage::audit(c, std::nullopt, "beneficiary_user_id_joined",
                                     "beneficiary:" + std::to_string(moved->beneficiary_id),
                                     json{{"channel", channel}}.dump(), now))
          return storage::result<bool>(boost::system::in_place_error, ec);
        if (auto ec = announce_move(c, *moved, now, fx)) return storage::result<bool>(boost::system::in_place_error, ec);
      }
      b = storage::upsert_beneficiary(c, channel, in.from, in.display_name, now, true, in.timestamp);
      if (!b) return storage::result<bool>(boost::system::in_place_error, b.error());
      // Remembered, so that a message with the user id alone finds them (handle_all).
      if (auto ec = storage::set_user_id(c, b->id, channel, in.user_id))
        return storage::result<bool>(boost::system::in_place_error, ec);
      b->user_id = in.user_id;
    }
  }
  auto convr = storage::conversation_for(c, b->id, now);
  if (!convr) return storage::result<bool>(boost::system::in_place_error, convr.error());
  auto conv = std::move(*convr);
  const auto before = conv;  // save_conversation writes the queue fields only if they change

  bool erased_share = false;  // a live location's move, shared before an erasure (below)
  if (in.location_update) {
    // A Telegram live location moving (an edit of the message that shared it, every few
    // seconds for up to hours): that message's place is updated and shown to staff live. A row
    // per update would bury the conversation. Nothing is said.
    auto shared = storage::find_shared_location(c, conv.id, in.message_ref);
    if (shared && shared->kind != "location") return true;  // a share from before an erasure (below)
    if (shared) {
      json p = json::parse(shared->payload, nullptr, false);
      if (!p.is_object()) p = json::object();
      if (!p["location"].is_object()) p["location"] = json::object();
      json& loc = p["location"];
      // A stopped share never moves again: the update that stopped it carried the last place,
      // and an older one delivered late must not put back an earlier place.
      if (loc.contains("stopped_at")) return true;
      loc["latitude"] = in.latitude;
      loc["longitude"] = in.longitude;
      loc["updated_at"] = now;
      // Telegram gives live_period while the place is shared (the person may extend it), and
      // none in the update that stops it.
      if (in.live_period > 0)
        loc["live_period"] = in.live_period;
      else
        loc["stopped_at"] = now;
      shared->payload = p.dump();
      if (auto ec = storage::set_message_payload(c, shared->id, shared->payload))
        return storage::result<bool>(boost::system::in_place_error, ec);
      if (fx.staff_listening)
        fx.events.push_back(
            {"staff", json{{"type", "message.updated"}, {"conversation_id", conv.id}, {"message", message_json(*shared)}}.dump()});
      return true;
    }
    if (shared.error() != storage::errc::not_found) return storage::result<bool>(boost::system::in_place_error, shared.error());
    // Its message is not in this conversation (shared before a new one began): recorded as a
    // location of its own, which the next updates move. Unless it was shared before the person
    // had their data erased: where they are is not taken up again from an old share. Such an
    // update is recorded as the edit it is, naming the share but not the place, and its later
    // moves match that record and are dropped (their update ids stay recorded).
    erased_share = b->erased_at && in.timestamp <= *b->erased_at;
  }

  storage::message_row m;
  m.conversation_id = conv.id;
  m.direction = "in";
  m.sender = "beneficiary";
  m.kind = in.location_update && !erased_share ? "location" : std::string(channels::to_string(in.type));
  m.text = in.text;
  m.payload = erased_share ? json{{"raw_type", in.raw_type}, {"location", {{"message_ref", in.message_ref}}}}.dump()
                           : inbound_payload(in, now);
  m.provider_id = in.provider_id;
  m.created_at = now;
  auto mid = storage::insert_message(c, m);
  if (!mid) return storage::result<bool>(boost::system::in_place_error, mid.error());
  m.id = *mid;
  conv.last_message_at = now;
  conv.updated_at = now;
  if (fx.staff_listening)
    fx.events.push_back({"staff", json{{"type", "message.new"}, {"conversation_id", conv.id}, {"message", message_json(m)}}.dump()});
  if (in.type == channels::inbound_type::media) {
    if (in.channel == channels::kind::webchat) {
      // A file sent from the website chat is shown in every tab of the session, ahead of the
      // replies (a text is shown by the tab that sent it, and by the others' history).
      fx.events.push_back({"webchat:" + conv.address, json{{"type", "message"}, {"message", visitor_message_json(m)}}.dump()});
    } else if (cfg_.media.keep_copies && b->consented_at && !in.media_id.empty() && copy_worthy(cfg_, channel, in.media_size)) {
      // A file sent on a provider's channel is copied here soon, before the provider lets it
      // go: once the person has agreed to the privacy notice (the files sent before are asked
      // for when they agree, in apply()).
      if (auto ec = storage::want_media_copy(c, channel, in.media_id, conv.beneficiary_id, now))
        return storage::result<bool>(boost::system::in_place_error, ec);
      fx.media_wanted = true;
    }
  }

  // Opting out (docs/channels.md, "Opting out"). SMS: STOP, which Twilio confirms to the person
  // itself; START (or YES) is back in, and an ordinary turn (the first "Start", or "yes" to
  // consent, must be answered). Telegram: blocking the bot (my_chat_member "kicked"); anything
  // the person then writes or presses means the chat is open again. STOP and a block are
  // recorded, not a dialog turn, and what was still waiting to go to them will not go.
  bool stop = in.opt_out == "stop" && (channel == "sms" || channel == "telegram");
  bool past_news = false;
  if (stop && channel == "telegram") {
    // Telegram may deliver updates out of order (several webhook connections): a block older
    // than something the person has since written (a higher update_id, in the last minutes)
    // is past news, and changes nothing either way.
    auto newer = storage::inbound_update_after(c, conv.id, in.provider_id, now - 600);
    if (!newer) return storage::result<bool>(boost::system::in_place_error, newer.error());
    past_news = *newer;
    stop = !past_news;
  }
  // On Telegram, what the person writes or presses (an edit or a reaction proves nothing: it
  // may be made in a chat that still blocks the bot).
  bool back = channel == "sms" ? in.opt_out == "start"
                               : channel == "telegram" && !stop && !past_news && !telegram_group(in.from) &&
                                     in.raw_type != "edited_message" && in.raw_type.rfind("message_reaction", 0) != 0;
  if (back && channel == "telegram" && b->opted_out_at) {
    // The same out-of-order delivery the other way: a message written before a newer block,
    // delivered after it, does not unblock.
    auto later = storage::block_after(c, conv.id, in.provider_id, now - 600);
    if (!later) return storage::result<bool>(boost::system::in_place_error, later.error());
    back = !*later;
  }
  if (stop || back) {
    if (auto ec = storage::set_opt_out(c, channel, in.from, stop ? std::optional<std::int64_t>(now) : std::nullopt))
      return storage::result<bool>(boost::system::in_place_error, ec);
    const bool changed = c.changes() > 0;
    if (stop)
      if (auto ec = storage::outbox_refuse_unsent(c, channel, in.from, opted_out_reason(channel)))
        return storage::result<bool>(boost::system::in_place_error, ec);
    if (changed)
      log::info("opt_out", {{"conversation_id", conv.id}, {"channel", channel}, {"opt_out", stop ? "stop" : "start"}});
  }

  // A button press on Telegram shows a spinner until it is acknowledged, whatever happens next.
  if (!in.callback_query_id.empty()) {
    channels::outgoing ack;
    ack.channel = in.channel;
    ack.to = in.from;
    ack.callback_query_id = in.callback_query_id;
    storage::outbox_row row;
    row.conversation_id = conv.id;
    row.channel = channel;
    row.recipient = in.from;
    row.payload = to_json_text(ack);
    row.created_at = now;
    if (auto ec = enqueue(c, row, ack, fx)) return storage::result<bool>(boost::system::in_place_error, ec);
  }

  auto eng = engine();
  std::string previous_mode = conv.mode;
  // Danger words outside a dialog turn (while staff hold the conversation, or in an edit): the
  // emergency numbers at once, and the conversation first in the queue (or, held, its priority
  // raised).
  auto danger_outside_turn = [&]() -> boost::system::error_code {
    channels::outgoing o;
    o.channel = in.channel;
    o.to = conv.address;
    o.text = eng->text(conv.lang, "danger");
    if (auto r = record_outbound(c, conv, o, "bot", std::nullopt, now, fx); !r) return r.error();
    queue(conv, "danger", 1, now);
    conv.queue_reason = "danger";
    return {};
  };
  // A late message from an address the person has left, written long before it came (Meta
  // retries for a week): the dialog has moved on since, and an old "1" must not answer today's
  // question. Recorded for staff, not a turn.
  const bool old_news = !in.written_from.empty() && delivered_late(in, now);
  // A WhatsApp message written more than 24 hours before it came (Meta retries for up to a
  // week, after an outage of ours): nothing could answer it (Meta refuses a reply outside the
  // window, unless the person has written since), and the dialog, if it went on, has moved on.
  // Recorded, not a turn, and put before staff, who can reach the person with a template.
  const bool past_window = in.channel == channels::kind::whatsapp && delivered_late(in, now) &&
                           in.timestamp + window_seconds < now && in.raw_type.rfind("system.", 0) != 0;
  if (set_aside || old_news || past_window) {
    // Not a turn. A set-aside record cannot be answered (the outbox refuses the address), nor
    // queued for staff who could not reply either, except for danger words: a person must look,
    // whoever can still reach them (the emergency numbers go only where the person is now, and
    // only while a message can reach them there).
    if (!in.text.empty() && in.type != channels::inbound_type::choice && eng->is_danger(in.text)) {
      if (set_aside || !window_open(conv, now)) {
        queue(conv, "danger", 1, now);
        conv.queue_reason = "danger";
      } else if (auto ec = danger_outside_turn()) {
        return storage::result<bool>(boost::system::in_place_error, ec);
      }
    } else if (past_window && !set_aside && in.type != channels::inbound_type::unsupported) {
      queue(conv, "late_message", 0, now);
    }
  } else if (in.type == channels::inbound_type::unsupported || stop ||
             (in.type == channels::inbound_type::media && in.media_kind == "sticker")) {
    // Reactions, orders, system notices, edits, group messages, stickers, STOP: recorded for
    // staff, not a dialog turn (a "thank you" sticker is neither an answer nor a case document).
    if (in.raw_type == "edited_message" && !in.text.empty() && eng->is_danger(in.text)) {
      if (auto ec = danger_outside_turn()) return storage::result<bool>(boost::system::in_place_error, ec);
    } else if ((conv.mode == "bot" || conv.mode == "resolved") && answers_unsupported(in.channel, in.raw_type)) {
      // What WhatsApp itself could not hand over (its "unsupported" type: a view-once photo, a
      // file too large, a kind it does not know), or a Telegram poll, dice or story, was meant
      // for us: while the bot answers, the
      // person is told, once in ten minutes at most (another bot on WhatsApp must not start a
      // ping-pong). Not for what is no message to answer: pins, poll votes, reactions, edits.
      channels::outgoing o;
      o.channel = in.channel;
      o.to = conv.address;
      o.text = eng->text(conv.lang, "unsupported_message");
      auto said = storage::bot_said_since(c, conv.id, o.text, now - 600);
      if (!said) return storage::result<bool>(boost::system::in_place_error, said.error());
      if (!*said)
        if (auto r = record_outbound(c, conv, o, "bot", std::nullopt, now, fx); !r)
          return storage::result<bool>(boost::system::in_place_error, r.error());
    }
  } else if (conv.mode == "staff") {
    // The person holding the conversation answers; the bot stays silent, except that danger
    // words still get the emergency numbers at once and raise the conversation's priority,
    // whether they come as text or as the caption of a photo or an MMS.
    if (!in.text.empty() && in.type != channels::inbound_type::choice && eng->is_danger(in.text))
      if (auto ec = danger_outside_turn()) return storage::result<bool>(boost::system::in_place_error, ec);
  } else {
    if (conv.mode == "resolved") conv.mode = "bot";  // a new message reopens it (a survey answer, say)
    auto st = dialogs::state::parse(conv.dialog_state);
    auto ctx = make_context(c, conv, now);
    auto r = eng->step(st, to_input(in), ctx);
    if (auto ec = apply(c, conv, r, m.id, now, fx)) return storage::result<bool>(boost::system::in_place_error, ec);
  }
  if (auto ec = storage::save_conversation(c, conv, before))
    return storage::result<bool>(boost::system::in_place_error, ec);
  conversation_event(c, conv, now, fx,
                     conv.mode == "waiting" && previous_mode != "waiting" ? "conversation.waiting" : "conversation.updated");
  return true;
}

error_code conversation_ops::announce_move(storage::connection& c, const storage::address_moved& moved,
                                           std::int64_t now, after_commit& fx) const {
  if (moved.retired_beneficiary)
    if (auto ec = announce_retired(c, *moved.retired_beneficiary, now, fx)) return ec;
  if (fx.staff_listening && moved.folded_conversation && moved.into_conversation)
    fx.events.push_back({"staff", json{{"type", "conversation.merged"},
                                       {"conversation_id", *moved.folded_conversation},
                                       {"into", *moved.into_conversation}}
                                      .dump()});
  return {};
}

error_code conversation_ops::announce_retired(storage::connection& c, std::int64_t beneficiary_id, std::int64_t now,
                                              after_commit& fx) const {
  auto rc = storage::conversation_for(c, beneficiary_id, now);
  if (!rc) return rc.error();
  conversation_event(c, *rc, now, fx, "conversation.updated");
  return {};
}

storage::result<int> conversation_ops::handle_all(storage::connection& c, std::span<const channels::inbound> events,
                                                  std::int64_t now, after_commit& fx) const {
  fx.clear();  // a second run starts from scratch
  int fresh = 0;
  for (const auto& e : events) {
    // A WhatsApp user who took a username may write with their user id alone: the person we
    // know by their phone number, once a message named both (handle_inbound), stays that person.
    const channels::inbound* ev = &e;
    std::optional<channels::inbound> as_known;
    if (e.channel == channels::kind::whatsapp && !e.user_id.empty() && e.from == e.user_id) {
      auto known = storage::address_for_user_id(c, "whatsapp", e.user_id);
      if (!known) return known.error();
      if (*known && **known != e.from) {
        as_known = e;
        as_known->from = **known;
        ev = &*as_known;
      } else if (!*known) {
        // A new user id for someone whose number can no longer be shared (user_changed_user_id:
        // Meta makes a new id when the number changes): the person known by the previous id now
        // lives at the new one, and the number we knew is no longer theirs to be written to.
        for (const auto& previous : e.previous_addresses) {
          if (!channels::whatsapp::is_user_id(previous)) continue;
          auto by_previous = storage::address_for_user_id(c, "whatsapp", previous);
          if (!by_previous) return by_previous.error();
          if (*by_previous && **by_previous != e.from) {
            as_known = e;
            as_known->previous_addresses.push_back(**by_previous);
            ev = &*as_known;
            break;
          }
        }
      }
    }
    if (!as_known && moves_maybe_.load(std::memory_order_relaxed) && ev->channel == channels::kind::whatsapp &&
        ev->type != channels::inbound_type::status &&
        !ev->from.empty() && ev->previous_addresses.empty() && ev->raw_type.rfind("system.", 0) != 0) {
      // Written from a number its writer has since left (a changed number, or one that passed
      // to someone else), delivered late (Meta retries for a week, unordered): filed with the
      // writer, never with the number's next holder, and never answered at the old number.
      auto moved = storage::moved_address_for(c, "whatsapp", ev->from, ev->timestamp, ev->user_id);
      if (!moved) return moved.error();
      if (*moved && **moved != ev->from) {
        as_known = e;
        as_known->written_from = e.from;
        as_known->from = **moved;
        ev = &*as_known;
      }
    }
    auto handled = handle_inbound(c, *ev, now, fx);
    if (!handled) return handled.error();
    fresh += *handled ? 1 : 0;
    // A move or a previous holder set aside leaves a route (storage::address_moves): the next
    // messages, this job's included, are looked up. (A job run again sets it again; a rolled
    // back one leaves it set, which only costs lookups until the next prune.)
    if (!fx.readdressed.empty()) moves_maybe_.store(true, std::memory_order_relaxed);
  }
  return fresh;
}

error_code conversation_ops::apply(storage::connection& c, storage::conversation_row& conv,
                                   const dialogs::step_result& r, std::optional<std::int64_t> inbound_message_id,
                                   std::int64_t now, after_commit& fx) const {
  for (const auto& e : r.effects) {
    const auto& d = e.data;
    if (e.type == "consent_given") {
      if (auto ec = storage::set_consented(c, conv.beneficiary_id, now)) return ec;
      // The files sent before the person agreed stayed with the provider alone (a victim may
      // send a photo of the police report first): now they are copied like the later ones.
      // Bounded, as a turn's work must be: a person sends few files before agreeing.
      if (cfg_.media.keep_copies && conv.channel != "webchat") {
        auto files = storage::files_sent_by(c, conv.beneficiary_id, 100);
        if (!files) return files.error();
        for (const auto& f : *files) {
          if (!copy_worthy(cfg_, conv.channel, f.size)) continue;
          if (auto ec = storage::want_media_copy(c, conv.channel, f.media_id, conv.beneficiary_id, now)) return ec;
          fx.media_wanted = true;
        }
      }
    } else if (e.type == "language_changed") {
      conv.lang = json_str(d, "lang") == "en" ? "en" : "ar";
      if (auto ec = storage::set_beneficiary_lang(c, conv.beneficiary_id, conv.lang)) return ec;
    } else if (e.type == "create_case") {
      storage::case_row k;
      k.reference = json_str(d, "reference");
      k.beneficiary_id = conv.beneficiary_id;
      k.conversation_id = conv.id;
      k.channel = conv.channel;
      k.full_name = json_str(d, "full_name");
      k.national_id = json_str(d, "national_id");
      k.mobile = json_str(d, "mobile");
      k.city = json_str(d, "city");
      k.service_type = json_str(d, "service_type");
      k.description = json_str(d, "description");
      k.created_at = now;
      auto id = storage::insert_case(c, k);
      if (!id) return id.error();
      k.id = *id;
      if (auto ec = storage::insert_case_event(c, k.id, std::nullopt, "submitted", std::nullopt, "", now)) return ec;
      if (d.contains("documents") && d["documents"].is_array())
        for (auto& doc : d["documents"]) {
          storage::case_document_row row{k.id, std::nullopt, json_str(doc, "media_kind"), json_str(doc, "media_id"),
                                         json_str(doc, "mime"), json_str(doc, "filename"), now};
          if (auto ec = storage::insert_case_document(c, row)) return ec;
        }
      fx.events.push_back({"staff", json{{"type", "case.updated"}, {"case", case_listed_json(k)}}.dump()});
    } else if (e.type == "queue_for_staff") {
      int priority = d.value("priority", 0);
      queue(conv, json_str(d, "reason").empty() ? "requested" : json_str(d, "reason"), priority, now);
    } else if (e.type == "leave_queue") {
      // Not after danger words: staff must look whatever the person asks of the bot since (it
      // answers them meanwhile; the conversation keeps its place and its priority).
      // An erasure the person confirmed takes it out all the same.
      if (conv.mode == "waiting" && (conv.priority < 1 || d.value("erased", false))) {
        conv.mode = "bot";
        conv.queued_at.reset();
        conv.priority = 0;
        conv.queue_reason.clear();
      }
    } else if (e.type == "register_volunteer") {
      storage::volunteer_row v{conv.beneficiary_id, json_str(d, "name"), json_str(d, "city"), json_str(d, "skills"),
                               json_str(d, "availability"), now};
      if (auto ec = storage::insert_volunteer(c, v)) return ec;
    } else if (e.type == "survey_answer") {
      if (auto ec = storage::survey_answer(c, conv.id, json_str(d, "question"), d.value("score", 0))) return ec;
    } else if (e.type == "survey_complete") {
      if (auto ec = storage::survey_complete(c, conv.id, json_str(d, "comment"), now)) return ec;
    } else if (e.type == "attach_document") {
      auto k = storage::find_case_by_reference(c, json_str(d, "reference"));
      // Only to a case of this beneficiary; anything else is ignored rather than misfiled.
      if (k && k->beneficiary_id == conv.beneficiary_id) {
        storage::case_document_row row{k->id, inbound_message_id, json_str(d, "media_kind"), json_str(d, "media_id"),
                                       json_str(d, "mime"), json_str(d, "filename"), now};
        if (auto ec = storage::insert_case_document(c, row)) return ec;
        fx.events.push_back({"staff", json{{"type", "case.updated"}, {"case", case_listed_json(*k)}}.dump()});
      }
    } else if (e.type == "erase_data") {
      if (auto ec = storage::erase_beneficiary(c, conv.beneficiary_id, now)) return ec;
      // The same audit row as a retention erasure, so the log answers "when was this person's
      // data erased, and why" whichever way it happened.
      if (auto ec = storage::audit(c, std::nullopt, "beneficiary.erase",
                                   "beneficiary:" + std::to_string(conv.beneficiary_id),
                                   json{{"reason", "requested"}, {"channel", conv.channel}}.dump(), now))
        return ec;
      fx.erased.push_back(conv.beneficiary_id);
      conv.display_name.clear();
      // The visitor's open pages (every tab on this session) drop what they show: the erased
      // transcript must not stay on a shared computer's screen. The confirmation follows.
      if (conv.channel == "webchat") fx.events.push_back({"webchat:" + conv.address, json{{"type", "erased"}}.dump()});
    }
  }
  conv.dialog_state = r.next.serialize();
  if (r.next.lang != conv.lang && (r.next.lang == "ar" || r.next.lang == "en")) {
    conv.lang = r.next.lang;
    if (auto ec = storage::set_beneficiary_lang(c, conv.beneficiary_id, conv.lang)) return ec;
  }
  for (const auto& reply : r.replies) {
    auto o = to_outgoing(reply, channel_of(conv), conv.address, conv.lang);
    if (auto id = record_outbound(c, conv, o, "bot", std::nullopt, now, fx); !id) return id.error();
  }
  return {};
}

storage::result<std::int64_t> conversation_ops::record_outbound(storage::connection& c,
                                                                storage::conversation_row& conv,
                                                                const channels::outgoing& o, std::string_view sender,
                                                                std::optional<std::int64_t> staff_id, std::int64_t now,
                                                                after_commit& fx) const {
  storage::message_row m;
  m.conversation_id = conv.id;
  m.direction = "out";
  m.sender = std::string(sender);
  m.staff_id = staff_id;
  m.kind = o.template_name.empty() ? "text" : "template";
  m.text = o.text;
  m.payload = outbound_payload_text(o);
  m.created_at = now;
  auto mid = storage::insert_message(c, m);
  if (!mid) return mid.error();
  m.id = *mid;
  storage::outbox_row row;
  row.message_id = m.id;
  row.conversation_id = conv.id;
  row.channel = conv.channel;
  row.recipient = conv.address;
  row.payload = to_json_text(o);
  row.created_at = now;
  if (auto ec = enqueue(c, row, o, fx)) return ec;
  // What staff see live: "pending", or "dead" with the reason for a row refused at once.
  m.outbox_state = row.state == "dead" ? "dead" : "pending";
  if (row.state == "dead") m.outbox_error = row.last_error;
  conv.last_message_at = now;
  // Events only for someone who can receive them: the console stream, or the visitor's page.
  bool webchat = conv.channel == "webchat";
  if (fx.staff_listening || webchat) {
    auto mj = message_json(m);
    if (staff_id) {
      if (auto s = storage::find_staff(c, *staff_id)) mj["staff_name"] = s->display_name;
    }
    if (fx.staff_listening)
      fx.events.push_back({"staff", json{{"type", "message.new"}, {"conversation_id", conv.id}, {"message", mj}}.dump()});
    if (webchat)
      fx.events.push_back({"webchat:" + conv.address, json{{"type", "message"}, {"message", visitor_message_json(m)}}.dump()});
  }
  return m.id;
}

error_code conversation_ops::enqueue(storage::connection& c, storage::outbox_row& row, const channels::outgoing& o,
                                     after_commit& fx) const {
  // Refused before any attempt, kept dead with the reason so staff see why it did not go:
  // - an SMS to someone who texted STOP, a Telegram message to someone who blocked the bot
  //   (staff replies included);
  // - anything to a Telegram group or channel (negative chat ids): a group's messages are
  //   recorded, never answered, and staff taking it over must not post a case into the group.
  const bool group = row.channel == "telegram" && telegram_group(row.recipient) && o.callback_query_id.empty();
  // - anything to a WhatsApp number that passed to someone else (storage::move_address).
  const bool retired = retired_address(row.recipient);
  bool opted_out = false;
  if (!group && !retired && !opted_out_reason(row.channel).empty()) {
    auto out = storage::opted_out(c, row.channel, row.recipient);
    if (!out) return out.error();
    opted_out = *out;
  }
  if (group || retired || opted_out) {
    row.state = "dead";
    row.last_error = group     ? std::string(telegram_group_reason)
                     : retired ? std::string(number_reassigned_reason)
                               : std::string(opted_out_reason(row.channel));
    auto id = storage::outbox_enqueue(c, row);
    if (!id) return id.error();
    row.id = *id;
    return {};
  }
  // Claim at once when nothing older is waiting for this recipient (or what is waiting was
  // claimed by this same job): the worker gets the row right after the commit, with no claim
  // transaction and no claim query on the reply's path. Otherwise the row waits its turn.
  std::string key = row.channel + "\n" + row.recipient;
  bool claim = fx.chains.count(key) > 0;
  if (!claim) {
    auto busy = storage::outbox_has_unsent(c, row.channel, row.recipient);
    if (!busy) return busy.error();
    claim = !*busy;
  }
  row.state = claim ? "sending" : "pending";
  row.attempts = claim ? 1 : 0;
  auto id = storage::outbox_enqueue(c, row);
  if (!id) return id.error();
  row.id = *id;
  if (!claim) {
    fx.wake_outbox = true;
    return {};
  }
  fx.chains.insert(std::move(key));
  // The worker renders from this copy instead of parsing the payload back: the same request
  // (tests/unit/bot/outbox_render_test.cpp), except for text that is not valid UTF-8, which
  // the payload carries with U+FFFD instead.
  auto& sent = fx.claimed.emplace_back(outbox_send{row, std::nullopt});
  if (survives_json(o)) {
    sent.out = o;
    sent.out->channel = channels::kind_from_string(row.channel).value_or(o.channel);
    sent.out->to = row.recipient;
  }
  return {};
}

storage::result<std::int64_t> conversation_ops::send(storage::connection& c, storage::conversation_row& conv,
                                                     const channels::outgoing& o, std::string_view sender,
                                                     std::optional<std::int64_t> staff_id, std::int64_t now,
                                                     after_commit& fx) const {
  auto id = record_outbound(c, conv, o, sender, staff_id, now, fx);
  if (!id) return id;
  if (auto ec = storage::save_conversation(c, conv)) return ec;
  return id;
}

error_code conversation_ops::mark_read(storage::connection& c, const storage::conversation_row& conv, std::int64_t now,
                                       after_commit& fx) const {
  if (conv.channel != "whatsapp" || !window_open(conv, now)) return {};
  auto q = c.prepare(
      "SELECT provider_id FROM messages WHERE conversation_id = ? AND direction = 'in' AND provider_id LIKE 'wamid.%' "
      "ORDER BY id DESC LIMIT 1");
  if (!q) return q.error();
  q->bind(1, conv.id);
  auto found = q->step();
  if (!found) return found.error();
  if (!*found) return {};
  channels::outgoing o;
  o.channel = channels::kind::whatsapp;
  o.to = conv.address;
  o.mark_read_id = q->text(0);
  storage::outbox_row row;
  row.conversation_id = conv.id;
  row.channel = conv.channel;
  row.recipient = conv.address;
  row.payload = to_json_text(o);
  row.created_at = now;
  // Once per message: the next staff reply to the same message marks nothing again. Looked for
  // among the last 2,000 outbox rows only (a range of row ids, no index on the conversation):
  // a receipt sent again for an older message costs one request and changes nothing.
  auto seen = c.prepare(
      "SELECT 1 FROM outbox WHERE id > (SELECT coalesce(max(id), 0) - 2000 FROM outbox) AND conversation_id = ? "
      "AND payload = ? LIMIT 1");
  if (!seen) return seen.error();
  seen->bind(1, conv.id).bind(2, row.payload);
  auto already = seen->step();
  if (!already) return already.error();
  if (*already) return {};
  return enqueue(c, row, o, fx);
}

error_code conversation_ops::notify(storage::connection& c, storage::conversation_row& conv, std::string_view key,
                                    const std::map<std::string, std::string>& vars, std::int64_t now,
                                    after_commit& fx) const {
  channels::outgoing o;
  o.channel = channel_of(conv);
  o.to = conv.address;
  o.text = engine()->text(conv.lang, key, vars);
  auto id = record_outbound(c, conv, o, "system", std::nullopt, now, fx);
  return id ? error_code{} : id.error();
}

error_code conversation_ops::start_survey(storage::connection& c, storage::conversation_row& conv,
                                          std::string_view trigger, std::optional<std::int64_t> case_id,
                                          std::optional<std::int64_t> staff_id, std::optional<std::string> service_type,
                                          std::int64_t now, after_commit& fx) const {
  auto sid = storage::open_survey(c, conv.id, case_id, staff_id, conv.channel, std::move(service_type), trigger, now);
  if (!sid) return sid.error();
  auto eng = engine();
  auto r = eng->start_survey(dialogs::state::parse(conv.dialog_state), make_context(c, conv, now));
  return apply(c, conv, r, std::nullopt, now, fx);
}

error_code conversation_ops::request_documents(storage::connection& c, storage::conversation_row& conv,
                                               std::string_view reference, std::int64_t now, after_commit& fx) const {
  auto eng = engine();
  auto r = eng->request_documents(dialogs::state::parse(conv.dialog_state), reference, make_context(c, conv, now));
  return apply(c, conv, r, std::nullopt, now, fx);
}

error_code conversation_ops::back_to_bot(storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                                         after_commit& fx, bool quiet) const {
  auto eng = engine();
  auto r = eng->back_to_bot(dialogs::state::parse(conv.dialog_state), make_context(c, conv, now));
  if (quiet) r.replies.clear();
  return apply(c, conv, r, std::nullopt, now, fx);
}

json conversation_ops::visitor_message_json(const storage::message_row& m) {
  json p = json::parse(m.payload, nullptr, false);
  const bool choices = p.is_object() && p.contains("choices") && p["choices"].is_array();
  json j{{"id", m.id},
         {"direction", m.direction},
         {"text", m.text},
         {"choices", choices ? p["choices"] : json::array()},
         {"created_at", m.created_at}};
  // The page's own id for what the visitor sent ("web:<session>:<client_id>"): a message whose
  // acknowledgement was lost in a reconnect is known to be stored, and not sent again.
  if (m.direction == "in" && m.provider_id && m.provider_id->rfind("web:", 0) == 0)
    if (auto colon = m.provider_id->find(':', 4); colon != std::string::npos) j["client_id"] = m.provider_id->substr(colon + 1);
  // A file the visitor sent: its kind and name, never its id (the page cannot fetch it back).
  if (m.direction == "in" && p.is_object() && p.contains("media") && p["media"].is_object()) {
    const auto& media = p["media"];
    auto str = [&media](const char* k) { return media.contains(k) && media[k].is_string() ? media[k].get<std::string>() : std::string(); };
    j["file"] = {{"kind", str("kind")}, {"name", str("filename")}};
  }
  return j;
}

json conversation_ops::message_json(const storage::message_row& m) {
  json p = json::parse(m.payload, nullptr, false);
  if (p.is_discarded() || !p.is_object()) p = json::object();
  json j{{"id", m.id},
         {"conversation_id", m.conversation_id},
         {"direction", m.direction},
         {"sender", m.sender},
         {"staff_name", m.staff_name},
         {"kind", m.kind},
         {"text", m.text},
         {"choices", p.contains("choices") ? p["choices"] : json::array()},
         {"media", p.contains("media") ? p["media"] : json(nullptr)},
         {"created_at", m.created_at}};
  if (p.contains("location")) j["location"] = p["location"];
  if (p.contains("contact")) j["contact"] = p["contact"];
  if (p.contains("raw_type")) j["raw_type"] = p["raw_type"];
  if (p.contains("choice_id")) j["choice_id"] = p["choice_id"];
  if (p.contains("written_from")) j["written_from"] = p["written_from"];
  if (p.contains("written_at")) j["written_at"] = p["written_at"];
  if (p.contains("forwarded")) j["forwarded"] = p["forwarded"];
  if (m.direction == "out") {
    std::string st = m.outbox_state.value_or("");
    if (st == "sent" && m.delivery_status) st = *m.delivery_status;
    if (st == "sending" || st == "uncertain") st = "pending";
    j["delivery_status"] = st.empty() ? json(nullptr) : json(st);
    // Why it did not arrive: the provider's reason for a failure, or the last send error of a
    // dead letter. Staff only; never shown to beneficiaries.
    if ((st == "failed" || st == "dead") && m.outbox_error && !m.outbox_error->empty())
      j["delivery_error"] = *m.outbox_error;
  } else {
    j["delivery_status"] = nullptr;
  }
  return j;
}

json conversation_ops::case_json(const storage::case_row& k) {
  return json{{"reference", k.reference},
              {"channel", k.channel},
              {"step", k.step},
              {"verification_method", k.verification_method ? json(*k.verification_method) : json(nullptr)},
              {"appointment", k.appointment ? json(*k.appointment) : json(nullptr)},
              {"full_name", k.full_name},
              {"national_id", k.national_id},
              {"mobile", k.mobile},
              {"city", k.city},
              {"service_type", k.service_type},
              {"description", k.description},
              {"conversation_id", k.conversation_id ? json(*k.conversation_id) : json(nullptr)},
              {"created_at", k.created_at},
              {"updated_at", k.updated_at}};
}

json conversation_ops::case_listed_json(const storage::case_row& k) {
  json j = case_json(k);
  for (const char* personal : {"national_id", "mobile", "description"}) j.erase(personal);
  return j;
}

json conversation_ops::conversation_json(storage::connection& c, const storage::conversation_row& conv,
                                         std::int64_t now) const {
  json assigned = nullptr;
  if (conv.assigned_staff_id)
    if (auto s = storage::find_staff(c, *conv.assigned_staff_id))
      assigned = {{"id", s->id}, {"display_name", s->display_name}};
  std::string preview;
  if (auto q = c.prepare("SELECT text FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT 1")) {
    q->bind(1, conv.id);
    if (auto r = q->step(); r && *r) preview = q->text(0);
  }
  if (preview.size() > 120) {
    std::size_t cut = 120;
    while (cut > 0 && (static_cast<unsigned char>(preview[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
    preview = preview.substr(0, cut) + "…";
  }
  json refs = json::array();
  if (auto ks = storage::cases_of_conversation(c, conv.id))
    for (auto& k : *ks) refs.push_back(k.reference);
  auto opt = [](const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); };
  // A web-chat address is the visitor's session id, the key to their chat: staff see enough of
  // it to tell visitors apart, never enough to open the chat as them.
  std::string address = conv.channel == "webchat" ? "web:" + conv.address.substr(0, 8) : conv.address;
  return json{{"id", conv.id},
              {"channel", conv.channel},
              {"address", address},
              {"display_name", conv.display_name},
              {"mode", conv.mode},
              {"priority", conv.priority},
              {"queue_reason", conv.queue_reason.empty() ? json(nullptr) : json(conv.queue_reason)},
              {"queued_at", opt(conv.queued_at)},
              {"assigned_staff", assigned},
              {"last_message_at", opt(conv.last_message_at)},
              {"last_inbound_at", opt(conv.last_inbound_at)},
              {"last_message_preview", preview},
              {"lang", conv.lang},
              {"window_open", window_open(conv, now)},
              {"cases", refs}};
}

void conversation_ops::conversation_event(storage::connection& c, const storage::conversation_row& conv,
                                          std::int64_t now, after_commit& fx, const char* type) const {
  if (!fx.staff_listening) return;
  fx.events.push_back({"staff", json{{"type", type}, {"conversation", conversation_json(c, conv, now)}}.dump()});
}

}  // namespace aoun::bot

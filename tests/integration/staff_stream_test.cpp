// The console's WebSocket stream: refused before the upgrade without a valid token, delivers a
// new waiting conversation within a second of its webhook, closes when the token expires.
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

TEST_CASE("stream: 401 before the upgrade without a valid token") {
  staff_env e;
  {
    stream_client none(e.port(), "/api/v1/stream");
    CHECK(none.status == 401);
  }
  {
    stream_client bad(e.port(), "/api/v1/stream?token=nope");
    CHECK(bad.status == 401);
  }
  auto token = login(e.port());
  stream_client header(e.port(), "/api/v1/stream", token);  // Authorization header works too
  CHECK(header.status == 101);
  CHECK(header.wait_for([](const json& ev) { return ev["type"] == "ready"; }));
  // As the console sends it: the token as a subprotocol, out of the URL that proxies log. The
  // server chooses "aoun.stream" (a browser drops the connection otherwise), never the token.
  stream_client console(e.port(), "/api/v1/stream", "", "aoun.stream, token." + token);
  CHECK(console.status == 101);
  CHECK(console.chosen == "aoun.stream");
  CHECK(console.wait_for([](const json& ev) { return ev["type"] == "ready"; }));
  stream_client wrong(e.port(), "/api/v1/stream", "", "aoun.stream, token.nope");
  CHECK(wrong.status == 401);
  // A plain GET (no upgrade) is REST: a token in the URL is not read there.
  CHECK(http_call(e.port(), "GET", "/api/v1/stream?token=" + token).status == 401);
  CHECK(http_call(e.port(), "GET", "/api/v1/stream", "", {{"Authorization", "Bearer " + token}}).status == 400);
}

TEST_CASE("stream: a new waiting conversation arrives within a second of its webhook") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  stream_client live(e.port(), "/api/v1/stream?token=" + agent);
  REQUIRE(live.status == 101);
  REQUIRE(live.wait_for([](const json& ev) { return ev["type"] == "ready"; }));
  wa_user b{e.port(), "966500000601"};
  b.text("السلام عليكم");
  b.button("consent.yes", "أوافق");
  auto sent = std::chrono::steady_clock::now();
  b.text("موظف");
  bool got = live.wait_for(
      [&](const json& ev) {
        return ev["type"] == "conversation.waiting" && ev["conversation"]["address"] == b.from &&
               ev["conversation"]["mode"] == "waiting";
      },
      std::chrono::seconds(1));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent).count();
  CHECK(got);
  CAPTURE(took);
  CHECK(took < 1000);
  // Messages and their delivery status follow.
  CHECK(live.wait_for([&](const json& ev) { return ev["type"] == "message.new" && ev["message"]["text"] == "موظف"; }));
}

TEST_CASE("stream: closes when the token expires") {
  staff_env e(env_vars{{"AOUN_TOKEN_TTL_SECONDS", "2"}});
  auto token = login(e.port());
  stream_client live(e.port(), "/api/v1/stream?token=" + token);
  REQUIRE(live.status == 101);
  CHECK(eventually([&] { return live.closed(); }, std::chrono::seconds(5)));
}

TEST_CASE("stream: an open stream does not hold up a graceful shutdown") {
  staff_env e;
  auto token = login(e.port());
  stream_client live(e.port(), "/api/v1/stream?token=" + token);
  REQUIRE(live.status == 101);
  REQUIRE(live.wait_for([](const json& ev) { return ev["type"] == "ready"; }));
  auto t0 = std::chrono::steady_clock::now();
  CHECK(e.srv->stop(15) == 0);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CAPTURE(took);
  CHECK(took < 5000);
  CHECK(eventually([&] { return live.closed(); }, std::chrono::seconds(2)));
}

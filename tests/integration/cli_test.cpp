// The `aoun` command line: version, help, migrate, staff add, classify, bad configuration.
#include <doctest/doctest.h>

#include <cstdio>

#include "harness/harness.hpp"

using namespace aoun::test;

namespace {
struct run_result {
  int status;
  std::string out;
};
run_result run(const std::string& args, const std::string& input = "", const std::string& env = "") {
  temp_dir d;
  std::string in = d.path + "/in.txt";
  {
    std::FILE* f = std::fopen(in.c_str(), "w");
    std::fputs(input.c_str(), f);
    std::fclose(f);
  }
  std::string cmd = env + " AOUN_HOME='" AOUN_SOURCE_DIR "' '" AOUN_BINARY "' " + args + " < " + in + " 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int st = ::pclose(p);
  return {WEXITSTATUS(st), out};
}
}  // namespace

TEST_CASE("aoun --version and --help") {
  auto v = run("--version");
  CHECK(v.status == 0);
  CHECK(v.out == "aoun 0.1.0\n");
  auto h = run("--help");
  CHECK(h.status == 0);
  CHECK(h.out.find("aoun serve") != std::string::npos);
  CHECK(h.out.find("aoun staff add") != std::string::npos);
  auto bad = run("frobnicate");
  CHECK(bad.status == 1);
  CHECK(bad.out.find("aoun: unknown command 'frobnicate'") != std::string::npos);
}

TEST_CASE("aoun migrate creates the database; staff add reads the password from stdin") {
  temp_dir d;
  std::string env = "AOUN_DB='" + d.path + "/x/aoun.db'";
  auto m = run("migrate", "", env);
  CHECK(m.status == 0);
  CHECK(m.out.find("schema version") != std::string::npos);
  auto add = run("staff add --username huda --role supervisor --name 'Huda A.'", "a-long-password\n", env);
  CHECK(add.status == 0);
  CHECK(db_text(d.path + "/x/aoun.db", "SELECT role FROM staff WHERE username = 'huda'") == "supervisor");
  CHECK(db_text(d.path + "/x/aoun.db", "SELECT password_hash FROM staff WHERE username = 'huda'").rfind("scrypt$", 0) == 0);
  auto again = run("staff add --username huda --role agent", "another-password\n", env);
  CHECK(again.status == 1);
  CHECK(again.out.find("username 'huda' is taken") != std::string::npos);
  auto shortpw = run("staff add --username x --role agent", "short\n", env);
  CHECK(shortpw.status == 1);
  auto badrole = run("staff add --username y --role boss", "a-long-password\n", env);
  CHECK(badrole.status == 1);
  CHECK(badrole.out.find("--role must be agent, supervisor or admin") != std::string::npos);
}

TEST_CASE("aoun classify prints one JSON object per input line") {
  auto c = run("classify", "السلام عليكم\nابي اتطوع معكم\nمتى تفتحون؟\nI want to kill myself\n");
  CHECK(c.status == 0);
  CHECK(c.out.find(R"({"intent":"greeting","text":"السلام عليكم","topic":null})") != std::string::npos);
  CHECK(c.out.find(R"("intent":"volunteer")") != std::string::npos);
  CHECK(c.out.find(R"("intent":"inquiry","text":"متى تفتحون؟","topic":"hours")") != std::string::npos);
  CHECK(c.out.find(R"("intent":"danger")") != std::string::npos);
}

TEST_CASE("a bad configuration value stops serve with one line naming the variable") {
  auto r = run("serve", "", "AOUN_LISTEN=nonsense");
  CHECK(r.status == 1);
  CHECK(r.out == "aoun: AOUN_LISTEN: expected host:port, got 'nonsense'\n");
}

TEST_CASE("a second serve on the same database is refused, and the first goes on") {
  // Its start-up recovery would turn the first server's sends in flight back into pending rows,
  // which would then go twice.
  temp_dir d;
  const std::string db = d.path + "/aoun.db";
  server_process first(db);
  std::string why;
  try {
    server_process second(db);
  } catch (const std::runtime_error& e) {
    why = e.what();
  }
  CHECK_MESSAGE(why.find("is in use by another aoun serve") != std::string::npos, why);
  CHECK(first.running());
  CHECK(http_call(first.port(), "GET", "/healthz").status == 200);
  // The lock goes with the process, however it ends.
  first.kill9();
  server_process next(db);
  CHECK(http_call(next.port(), "GET", "/healthz").status == 200);
}

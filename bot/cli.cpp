#include "bot/cli.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bot/app.hpp"
#include "bot/config.hpp"
#include "bot/db.hpp"
#include "bot/log.hpp"
#include "bot/password.hpp"
#include "storage/database.hpp"
#include "storage/staff.hpp"

namespace aoun::bot {
namespace {

constexpr const char* usage = R"(aoun — omnichannel beneficiary bot

usage:
  aoun serve                         run the server (configuration: AOUN_* environment variables)
  aoun migrate                       create or upgrade the database at AOUN_DB, then exit
  aoun staff add --username U --role agent|supervisor|admin [--name "Display Name"]
                                     add a staff account; the password is read from standard input
  aoun classify                      read one message per line on stdin, print the engine's reading as JSON lines
  aoun --version | --help

See README.md and docs/ for the environment variables and endpoints.
)";

int fail(const std::string& msg) {
  std::cerr << "aoun: " << msg << std::endl;
  return EXIT_FAILURE;
}

std::unique_ptr<storage::database> open_db(const config& cfg, std::string& error) {
  if (cfg.db_path != ":memory:") {
    auto parent = std::filesystem::path(cfg.db_path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  }
  storage::options so;
  so.path = cfg.db_path;
  so.readers = 0;
  auto db = storage::database::open(so);
  if (!db) {
    error = "AOUN_DB: cannot open '" + cfg.db_path + "': " + db.error().message();
    return nullptr;
  }
  return std::move(*db);
}

int staff_add(const config& cfg, const std::vector<std::string>& args) {
  std::string username, role, name;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto next = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--username") username = next();
    else if (args[i] == "--role") role = next();
    else if (args[i] == "--name") name = next();
    else throw std::invalid_argument("unknown option " + args[i]);
  }
  if (username.empty()) return fail("staff add: --username is required");
  if (role != "agent" && role != "supervisor" && role != "admin")
    return fail("staff add: --role must be agent, supervisor or admin");
  std::string pw;
  std::getline(std::cin, pw);
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.size() < 8) return fail("staff add: the password (read from standard input) needs at least 8 characters");
  std::string err;
  auto db = open_db(cfg, err);
  if (!db) return fail(err);
  storage::staff_row s;
  s.username = username;
  s.display_name = name.empty() ? username : name;
  s.role = role;
  s.password_hash = password::hash(pw);
  s.created_at = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto ec = write_now(*db, [&](storage::connection& c) -> boost::system::error_code {
    auto id = storage::insert_staff(c, s);
    if (!id) return id.error();
    return storage::audit(c, std::nullopt, "staff.create", "staff:" + std::to_string(*id),
                          R"({"via":"cli","role":")" + role + "\"}", s.created_at);
  });
  db->close();
  if (ec == storage::errc::constraint) return fail("staff add: username '" + username + "' is taken");
  if (ec) return fail("staff add: " + ec.message());
  std::cout << "added " << role << " '" << username << "'" << std::endl;
  return EXIT_SUCCESS;
}

}  // namespace

int run_classify(const config& cfg);  // bot/classify.cpp

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage;
    return args.empty() ? EXIT_FAILURE : EXIT_SUCCESS;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "aoun " << AOUN_VERSION << std::endl;
    return EXIT_SUCCESS;
  }
  try {
    const std::string cmd = args[0];
    if (cmd == "serve") {
      // A write to a pipe whose reader is gone (the log piped to `tee` or a shipper that
      // stopped) would kill the server with SIGPIPE: no graceful stop, and replies in flight
      // sent again at the next start. Sockets never raise it (Asio sends with MSG_NOSIGNAL);
      // the log just loses its lines. (The other commands keep the default: `aoun … | head`.)
      std::signal(SIGPIPE, SIG_IGN);
      config cfg = load_config_from_environment();
      log::start(*log::parse_level(cfg.log_level));
      int rc = EXIT_FAILURE;
      try {
        app a(cfg);
        rc = a.run();
      } catch (...) {
        log::stop();
        throw;
      }
      log::stop();
      return rc;
    }
    if (cmd == "migrate") {
      config cfg = load_config_from_environment();
      std::string err;
      auto db = open_db(cfg, err);
      if (!db) return fail(err);
      std::cout << "database " << cfg.db_path << " at schema version " << db->schema_version() << std::endl;
      db->close();
      return EXIT_SUCCESS;
    }
    if (cmd == "staff" && args.size() >= 2 && args[1] == "add") {
      config cfg = load_config_from_environment();
      return staff_add(cfg, std::vector<std::string>(args.begin() + 2, args.end()));
    }
    if (cmd == "classify") {
      config cfg = load_config_from_environment();
      return run_classify(cfg);
    }
    std::cerr << usage;
    return fail("unknown command '" + cmd + "'");
  } catch (const config_error& e) {
    return fail(e.what());
  } catch (const std::invalid_argument& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace aoun::bot

#pragma once
// `aoun` command line: serve, migrate, staff add, classify, --version, --help.
// Returns the process exit code; prints errors as one line on stderr.

namespace aoun::bot {
int run_cli(int argc, char** argv);
}

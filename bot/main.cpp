#include "bot/cli.hpp"

int main(int argc, char** argv) { return aoun::bot::run_cli(argc, argv); }

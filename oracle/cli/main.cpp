// dsa-oracle: the command-line front of the oracle (placeholder until the CLI issue lands).
#include <CLI/CLI.hpp>
#include <cstdio>
int main(int argc, char** argv) {
  CLI::App app{"dsa-oracle"};
  CLI11_PARSE(app, argc, argv);
  std::puts("dsa-oracle");
  return 0;
}

// The `fuzz` and `selftest` subcommands of dsa-oracle, kept in fuzz/ so that the CLI's main only
// registers and dispatches them (oracle/ does not depend on fuzz/ as a library; the executable
// links both).
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace dsa::fuzz {

class FuzzCommands {
 public:
  virtual ~FuzzCommands() = default;
  // The exit code of the chosen subcommand (0 pass, 1 failures, 2 bad input), or −1 when neither
  // `fuzz` nor `selftest` was chosen.
  virtual int run() = 0;
};

// Adds `fuzz` and `selftest` to `app`; call run() after app.parse().
std::unique_ptr<FuzzCommands> add_fuzz_commands(CLI::App& app);

}  // namespace dsa::fuzz

// Typed errors for input validation (SPEC §8): every error names the argument and the rule.
#pragma once

#include <stdexcept>
#include <string>

namespace dsa {

// Thrown by every public entry point before it touches data. `argument()` is the name of the
// offending argument as the caller knows it (e.g. "cache.page_tokens", "indices"); `rule()` is
// the violated rule in words. what() reads "<argument>: <rule>".
class InvalidArgument : public std::invalid_argument {
 public:
  InvalidArgument(std::string argument, std::string rule)
      : std::invalid_argument(argument + ": " + rule),
        argument_(std::move(argument)),
        rule_(std::move(rule)) {}
  const std::string& argument() const noexcept { return argument_; }
  const std::string& rule() const noexcept { return rule_; }

 private:
  std::string argument_;
  std::string rule_;
};

// A cache of one layout handed to a reader or writer of another (SPEC §6.1, §2).
class LayoutMismatch : public InvalidArgument {
 public:
  LayoutMismatch(std::string argument, const std::string& cache_layout,
                 const std::string& expected_layout)
      : InvalidArgument(std::move(argument), "cache holds layout '" + cache_layout +
                                                 "' but this reader/writer expects layout '" +
                                                 expected_layout + "'") {}
};

// Runs f, a part's validation, and names the part in the argument of what it throws
// ("indexer" + "block_table" → "indexer.block_table"), as a composite call (the DSA step) reports
// its stages' errors. A layout mismatch keeps its type; its message already names both layouts.
template <class F>
void validate_part(const char* part, F&& f) {
  try {
    f();
  } catch (const LayoutMismatch&) {
    throw;
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string(part) + "." + e.argument(), e.rule());
  }
}

}  // namespace dsa

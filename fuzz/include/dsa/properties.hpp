// Properties (issue 6.3): what every kernel under test must satisfy on every case — its outputs
// within budget of gold (sentinel-filled outputs, NaN-poisoned unreferenced cache rows), and the
// SPEC §11 metamorphic relations (E = bit-exact, W = within budget). One property checks one
// built case; `rc_check` wraps generate → build → check for RapidCheck (RC_GTEST_PROP bodies and
// the campaign runner alike) and remembers the last failing case so that it can be written out.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "dsa/fuzz_cases.hpp"
#include "dsa/kernel_under_test.hpp"
#include "dsa/report.hpp"

namespace dsa::fuzz {

struct PropertyInfo {
  std::string name;  // "budget", "determinism", "relabel", ...
  char relation;     // 'E' bit-exact, 'W' within budget
  std::string what;  // one line: the rule, with its SPEC section
};

// The properties of one op, in the order they run.
const std::vector<PropertyInfo>& properties(Op op);
// Whether `property` says anything about kernel `k` (e.g. fused_vs_staged needs a staged twin).
bool applies(const KernelUnderTest& k, const std::string& property);

// The outcome of checking one case.
struct Verdict {
  bool pass = true;
  std::string property;            // the property that failed (the last one run when passing)
  std::string message;             // the failure, with its coordinate; empty on pass
  std::vector<CaseResult> judged;  // every judge call's result (for reports)
};

using AnyCase = std::variant<DecodeCase, PrefillCase, PagedLogitsCase, MqaLogitsCase, TopkCase>;
Op op_of(const AnyCase& c);
std::string describe(const AnyCase& c);

// Checks the properties named in `property` — one name, a comma-separated list, or "" for every
// property that applies — in registry order, stopping at the first failure.
Verdict check(const KernelUnderTest& k, const DecodeCase& c, const std::string& property = "");
Verdict check(const KernelUnderTest& k, const PrefillCase& c, const std::string& property = "");
Verdict check(const KernelUnderTest& k, const PagedLogitsCase& c, const std::string& property = "");
Verdict check(const KernelUnderTest& k, const MqaLogitsCase& c, const std::string& property = "");
Verdict check(const KernelUnderTest& k, const TopkCase& c, const std::string& property = "");
Verdict check(const KernelUnderTest& k, const AnyCase& c, const std::string& property = "");

// Whether `name` is selected by a property list as check() reads it.
bool selected(const std::string& list, const std::string& name);

// The loop every op's checker runs: `one(name)` for each property of k.op that `list` selects and
// that applies to k, in registry order; the first non-empty failure is recorded in `v` and ends
// the loop. Returns `v`.
Verdict run_selected(const KernelUnderTest& k, const std::string& list, Verdict& v,
                     const std::function<std::string(const std::string&)>& one);

// The RapidCheck body: draws a spec for `k` (generators.hpp), builds the case, checks it and
// fails with RC_FAIL naming the property, the failure and the whole case. Call it inside
// RC_GTEST_PROP or any rc::check testable. With `property` empty, every case goes through every
// property that applies to `k` (they share the base run; a few milliseconds per case).
void rc_check(const KernelUnderTest& k, const std::string& property = "");

// The last case that failed in rc_check on this thread (with its verdict), so that a campaign can
// write the shrunk counterexample: after RapidCheck's shrinking ends, the last failing evaluation
// *is* the minimal one. Cleared by take_last_failure.
struct FailedCase {
  AnyCase c;
  Verdict verdict;
};
std::optional<FailedCase> take_last_failure();
// Successful and failed evaluations of rc_check on this thread since the last reset (shrinking
// steps included); the campaign reads judged results through this hook.
struct RcObserver {
  std::function<void(const KernelUnderTest&, const AnyCase&, const Verdict&, double seconds)> on_case;
};
void set_rc_observer(RcObserver* observer);  // nullptr: none

}  // namespace dsa::fuzz

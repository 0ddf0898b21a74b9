// Shared by the sparse MLA GPU suites: random problems (every layout and fp8 format, both index
// modes, extra caches, lengths, sinks, all-invalid rows, int32 edge indices) with every cache
// token that no valid slot selects NaN-poisoned, their device mirrors, output buffers filled with
// sentinels, and the check of a kernel's outputs against the CPU gold with a per-element bound.
//
// Judging: the oracle's per-element budgets (oracle/include/dsa/judge.hpp, BUDGETS.md) for the
// precision the kernels declare — KernelPrecision "bf16p" {u_acc = 2·2^−24, u_p = 2^−8 (P rounded
// to bf16 before P·V), u_out = 2^−8} — and their claims (split count, key-tile width), compared by
// dsa::compare() (sentinels, exact non-finite positions, error / budget ≤ 1).
#pragma once

#include "gpu_test_util.hpp"

#include <climits>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/formats.hpp"
#include "dsa/gpu/sparse_mla.hpp"
#include "dsa/layouts.hpp"
#include "dsa/reader_model.hpp"
#include "dsa/sparse_mla.hpp"
#include "dsa/compare.hpp"
#include "dsa/judge.hpp"

namespace dsa::gpu::testing {

inline constexpr std::uint16_t kSentinelBf16 = 0x7FA5;     // a NaN no arithmetic produces
inline constexpr std::uint32_t kSentinelF32 = 0x7FA5A5A5u;

// A movable device allocation of exactly n elements (none for n == 0), so that memcheck sees a
// read one element past the end; the cases own several and are moved around.
template <class T>
class DeviceVec {
 public:
  DeviceVec() = default;
  explicit DeviceVec(std::size_t n) : n_(n) {
    if (n_ > 0) DSA_GPU_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)));
  }
  explicit DeviceVec(const std::vector<T>& host) : DeviceVec(host.size()) { upload(host); }
  DeviceVec(DeviceVec&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceVec& operator=(DeviceVec&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceVec(const DeviceVec&) = delete;
  DeviceVec& operator=(const DeviceVec&) = delete;
  ~DeviceVec() { reset(); }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    if (n_ > 0) DSA_GPU_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void fill_bytes(std::uint8_t byte) {
    if (n_ > 0) DSA_GPU_CHECK(cudaMemset(p_, byte, n_ * sizeof(T)));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) DSA_GPU_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  void reset() {
    if (p_ != nullptr) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// SPEC §3 restated independently of the code under test: the token an index names, if any.
inline std::optional<std::pair<std::int64_t, std::int64_t>> spec_token(std::int32_t index, IndexMode mode,
                                                                       std::int64_t P, std::int64_t num_blocks,
                                                                       const std::int32_t* bt_row,
                                                                       std::int64_t max_blocks) {
  const std::int64_t i = index;
  if (mode == IndexMode::physical) {
    if (0 <= i && i < num_blocks * P) return std::make_pair(i / P, i % P);
    return std::nullopt;
  }
  if (!(0 <= i && i < max_blocks * P)) return std::nullopt;
  const std::int64_t block = bt_row[i / P];
  if (!(0 <= block && block < num_blocks)) return std::nullopt;
  return std::make_pair(block, i % P);
}

// One cache with its selection, on the host and on the device.
struct CaseSource {
  MlaCacheGeometry geo;
  std::vector<std::uint8_t> values, scales;  // exactly geo.values_bytes(), geo.scales_bytes()
  std::int32_t topk = 0;
  std::vector<std::int32_t> indices;      // [rows][topk]
  std::vector<std::int32_t> topk_length;  // [rows / rows_per_batch] or empty
  std::vector<std::int32_t> block_table;  // [batch][max_blocks] (logical)
  std::int64_t max_blocks = 0;
  std::set<std::pair<std::int64_t, std::int64_t>> referenced;  // tokens a valid slot selects

  DeviceVec<std::uint8_t> d_values, d_scales;
  DeviceVec<std::int32_t> d_indices, d_topk_length, d_block_table;

  MlaCacheView host_view() const { return {geo, values, scales}; }
  MlaCacheView device_view() const {
    return {geo, {d_values.get(), d_values.size()}, {d_scales.get(), d_scales.size()}};
  }
  void upload() {
    d_values = DeviceVec<std::uint8_t>(values);
    d_scales = DeviceVec<std::uint8_t>(scales);
    d_indices = DeviceVec<std::int32_t>(indices);
    d_topk_length = DeviceVec<std::int32_t>(topk_length);
    d_block_table = DeviceVec<std::int32_t>(block_table);
  }
};

template <class T>
std::span<const T> dspan(const DeviceVec<T>& b) {
  return {b.get(), b.size()};
}

struct CacheKind {
  MlaLayout layout;
  int dim = 576;
};
inline std::string name(const CacheKind& k) {
  return std::string(dsa::to_string(k.layout)) + (k.layout == MlaLayout::BF16 ? "-" + std::to_string(k.dim) : "");
}
inline bool is_fp8(MlaLayout l) { return l != MlaLayout::BF16; }

inline std::vector<std::int32_t> edge_indices(std::int64_t range, std::int32_t P) {
  return {INT_MIN, INT_MIN + 1, -P, -2, -1, 0, static_cast<std::int32_t>(range - 1), static_cast<std::int32_t>(range),
          static_cast<std::int32_t>(range + 1), static_cast<std::int32_t>(range + P), INT_MAX - 1, INT_MAX};
}

// A cache of `kind` with random geometry (page size, block count; padded strides, some of them
// not multiples of 16 so that the kernels' byte-copy path runs) and a random selection.
inline CaseSource make_case_source(const CacheKind& kind, Fp8Format fp8, IndexMode mode, std::int64_t batch,
                                   std::int64_t rows, std::int32_t topk, bool with_lengths, int invalid_share_pct,
                                   Rng& rng, std::int32_t fixed_page = 0, std::int64_t fixed_blocks = 0) {
  const std::int32_t P = fixed_page > 0 ? fixed_page : std::vector<std::int32_t>{1, 3, 16, 64}[uniform(rng, 0, 3)];
  const std::int64_t num_blocks = fixed_blocks > 0 ? fixed_blocks : uniform(rng, 1, 8);
  auto g = MlaCacheGeometry::packed(kind.layout, fp8, num_blocks, P, kind.dim);
  switch (uniform(rng, 0, 3)) {
    case 0: g.block_stride_bytes += uniform(rng, 1, 40); break;          // unaligned: byte copies
    case 1: g.block_stride_bytes += 16 * uniform(rng, 1, 4); break;      // aligned, padded
    default: break;                                                      // packed
  }
  if (kind.layout == MlaLayout::MODEL1_SPLIT && uniform(rng, 0, 2) == 0) g.scale_block_stride_bytes += 8 * uniform(rng, 1, 3);
  CaseSource s;
  MlaCacheBuffer buffer(g);  // validates; sized exactly
  s.geo = buffer.geo;
  s.values = std::move(buffer.values);
  s.scales = std::move(buffer.scales);
  fill_random_bytes(s.values, rng);
  fill_random_bytes(s.scales, rng);
  s.topk = topk;
  if (mode == IndexMode::logical) {
    s.max_blocks = uniform(rng, 1, num_blocks + 2);
    s.block_table.resize(static_cast<std::size_t>(batch * s.max_blocks));
    const std::int32_t bad[] = {-1, static_cast<std::int32_t>(num_blocks), INT_MIN, INT_MAX, -100};
    for (auto& e : s.block_table)
      e = uniform(rng, 0, 8) == 0 ? bad[uniform(rng, 0, 4)] : static_cast<std::int32_t>(uniform(rng, 0, num_blocks - 1));
  }
  const std::int64_t range = mode == IndexMode::physical ? num_blocks * P : s.max_blocks * P;
  const auto edges = edge_indices(range, P);
  s.indices.resize(static_cast<std::size_t>(rows * topk));
  for (std::int64_t r = 0; r < rows; ++r) {
    const bool all_invalid = uniform(rng, 0, 19) == 0;  // a row of invalid indices only
    for (std::int32_t j = 0; j < topk; ++j) {
      auto& i = s.indices[static_cast<std::size_t>(r * topk + j)];
      if (all_invalid) i = std::vector<std::int32_t>{-1, INT_MIN, INT_MAX, static_cast<std::int32_t>(range)}[uniform(rng, 0, 3)];
      else if (uniform(rng, 0, 99) < invalid_share_pct) i = edges[uniform(rng, 0, edges.size() - 1)];
      else i = static_cast<std::int32_t>(uniform(rng, 0, range - 1));
    }
  }
  if (with_lengths) {
    const std::int32_t lens[] = {INT_MIN, -1, 0, 1, topk - 1, topk, topk + 1, INT_MAX};
    for (std::int64_t b = 0; b < batch; ++b)
      s.topk_length.push_back(uniform(rng, 0, 2) == 0 ? lens[uniform(rng, 0, 7)]
                                                      : static_cast<std::int32_t>(uniform(rng, 0, topk)));
  }
  return s;
}

// Marks the tokens valid slots select (rows_per_batch: rows sharing one length and block table).
inline void mark_referenced(CaseSource& s, IndexMode mode, std::int64_t rows, std::int64_t rows_per_batch) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t b = r / rows_per_batch;
    for (std::int32_t j = 0; j < s.topk; ++j) {
      if (!s.topk_length.empty() && !(j < s.topk_length[static_cast<std::size_t>(b)])) continue;
      const std::int32_t* bt = mode == IndexMode::logical ? s.block_table.data() + b * s.max_blocks : nullptr;
      const auto tok = spec_token(s.indices[static_cast<std::size_t>(r * s.topk + j)], mode, s.geo.page_tokens,
                                  s.geo.num_blocks, bt, s.max_blocks);
      if (tok) s.referenced.insert(*tok);
    }
  }
}

// Referenced tokens get finite operands of moderate size (fp8 codes other than NaN, scales —
// non-powers of two for V32 — and bf16 RoPE values); every byte of an unreferenced token is NaN.
inline void fill_tokens(CaseSource& s, Rng& rng) {
  const auto& g = s.geo;
  const std::uint8_t nan8 = fp8_nan_code(g.fp8);
  const int dim = g.dim_qk();
  auto finite_code = [&] {
    for (;;) {
      const auto c = static_cast<std::uint8_t>(rng());
      if (!std::isnan(fp8_to_f32(c, g.fp8))) return c;
    }
  };
  auto bf16_value = [&] { return f32_to_bf16(static_cast<float>(uniform(rng, -1000, 1000)) / 700.0f); };
  for (std::int64_t block = 0; block < g.num_blocks; ++block) {
    std::uint8_t* page = s.values.data() + block * g.block_stride_bytes;
    for (std::int64_t t = 0; t < g.page_tokens; ++t) {
      const bool ref = s.referenced.count({block, t}) > 0;
      for (int d = 0; d < dim; ++d) {
        switch (g.layout) {
          case MlaLayout::V32:
            if (d < layout::V32::nope_dims) page[layout::V32::dim_offset(t, d)] = ref ? finite_code() : nan8;
            else store_u16(page + layout::V32::dim_offset(t, d), ref ? bf16_value() : 0x7FC0);
            break;
          case MlaLayout::MODEL1:
          case MlaLayout::MODEL1_SPLIT:
            if (d < layout::Model1::nope_dims) page[layout::Model1::dim_offset(t, d)] = ref ? finite_code() : nan8;
            else store_u16(page + layout::Model1::dim_offset(t, d), ref ? bf16_value() : 0x7FC0);
            break;
          case MlaLayout::BF16: store_u16(page + layout::Bf16::dim_offset(t, d, dim), ref ? bf16_value() : 0x7FC0); break;
        }
      }
      switch (g.layout) {
        case MlaLayout::V32:
          for (int k = 0; k < layout::V32::num_scales; ++k) {
            const float sc = ref ? std::ldexp(1.0f + static_cast<float>(uniform(rng, 0, 1 << 20)) / float(1 << 20),
                                              static_cast<int>(uniform(rng, -11, -7)))
                                 : f32_from_bits(0x7FC00000u);
            store_f32(page + layout::V32::scale_offset(t, k), sc);
          }
          break;
        case MlaLayout::MODEL1:
        case MlaLayout::MODEL1_SPLIT:
          for (int k = 0; k < layout::Model1::num_scales; ++k) {
            const auto code = ref ? static_cast<std::uint8_t>(uniform(rng, 116, 120)) : std::uint8_t{0xFF};
            if (g.layout == MlaLayout::MODEL1) page[layout::Model1::scale_offset(g.page_tokens, t, k)] = code;
            else s.scales[block * g.scale_block_stride_bytes + layout::Model1Split::scale_offset(t, k)] = code;
          }
          break;
        case MlaLayout::BF16: break;
      }
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Outputs of one kernel call, read back.
struct GotOutputs {
  std::vector<std::uint16_t> out;
  std::vector<float> lse, max_logits;
};

// Device outputs filled with sentinels before the call.
struct DeviceOutputs {
  DeviceVec<std::uint16_t> out;
  DeviceVec<float> lse, max_logits;
  DeviceOutputs(std::int64_t rows, std::int32_t H)
      : out(static_cast<std::size_t>(rows * H * 512)), lse(static_cast<std::size_t>(rows * H)),
        max_logits(static_cast<std::size_t>(rows * H)) {}
  void poison() {
    out.upload(std::vector<std::uint16_t>(out.size(), kSentinelBf16));
    lse.upload(std::vector<float>(lse.size(), f32_from_bits(kSentinelF32)));
    max_logits.upload(std::vector<float>(max_logits.size(), f32_from_bits(kSentinelF32)));
  }
  SparseMlaOutputs view() {
    return {{out.get(), out.size()}, {lse.get(), lse.size()}, {max_logits.get(), max_logits.size()}};
  }
  GotOutputs download() const { return {out.download(), lse.download(), max_logits.download()}; }
};

// A workspace of exactly the plan's bytes, filled with 0xFF (NaN as fp32) so that a read of a
// partial nothing wrote shows.
struct DeviceWorkspaceBuffer {
  DeviceVec<std::uint8_t> bytes;
  explicit DeviceWorkspaceBuffer(std::int64_t n) : bytes(static_cast<std::size_t>(n)) { bytes.fill_bytes(0xFF); }
  DeviceWorkspace view() { return {bytes.get(), static_cast<std::int64_t>(bytes.size())}; }
};

// ----------------------------------------------------------------------------------------------
// Judging against gold.
inline KernelPrecision gpu_precision() { return kernel_precision("bf16p", Op::sparse_mla_decode); }

// The outcome of one judged call: "" on pass, else the first failure; worst error / budget.
struct Verdict {
  std::string failure;
  double worst_ratio = 0.0;
};

// Every output element against the budget: unwritten (sentinel) elements fail, non-finite gold
// values must be matched exactly, finite ones within their budget.
inline Verdict check_against_budget(const GotOutputs& got, const SparseMlaBudget& b, bool with_max_logits) {
  Verdict v;
  const std::int64_t T = b.gold.T;
  const std::int32_t H = b.gold.H;
  auto judge = [&](const char* name, const std::vector<double>& gv, std::span<const double> want,
                   std::span<const double> budget, std::vector<std::uint8_t> unwritten, const TensorShape& shape) {
    const Comparison c = compare(gv, want, budget, shape, CompareOptions{std::nullopt, unwritten, {}});
    v.worst_ratio = std::max(v.worst_ratio, c.worst_ratio);
    if (!c.pass && v.failure.empty()) v.failure = std::string(name) + ": " + c.failure;
  };
  std::vector<double> out(got.out.size());
  std::vector<std::uint8_t> out_unwritten(got.out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = bf16_to_f32(got.out[i]);
    out_unwritten[i] = got.out[i] == kSentinelBf16;
  }
  judge("out", out, b.gold.out, b.out, std::move(out_unwritten), TensorShape{{"r", "h", "d"}, {T, H, 512}});
  auto f32 = [&](const char* name, const std::vector<float>& g, const std::vector<double>& want,
                 const std::vector<double>& budget) {
    std::vector<double> gv(g.size());
    std::vector<std::uint8_t> unwritten(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      gv[i] = g[i];
      unwritten[i] = f32_bits(g[i]) == kSentinelF32;
    }
    judge(name, gv, want, budget, std::move(unwritten), TensorShape{{"r", "h"}, {T, H}});
  };
  f32("lse", got.lse, b.gold.lse, b.lse);
  if (with_max_logits) f32("max_logits", got.max_logits, b.gold.max_logits, b.max_logits);
  return v;
}

// Bit-identical outputs (NaN payloads aside: two NaNs are equal).
inline std::string check_identical(const GotOutputs& a, const GotOutputs& b) {
  std::ostringstream err;
  for (std::size_t i = 0; i < a.out.size(); ++i) {
    const bool nan = std::isnan(bf16_to_f32(a.out[i])) && std::isnan(bf16_to_f32(b.out[i]));
    if (a.out[i] != b.out[i] && !nan)
      return err << "out[" << i << "]: " << std::hex << a.out[i] << " vs " << b.out[i], err.str();
  }
  for (std::size_t i = 0; i < a.lse.size(); ++i) {
    if (f32_bits(a.lse[i]) != f32_bits(b.lse[i]) && !(std::isnan(a.lse[i]) && std::isnan(b.lse[i])))
      return err << "lse[" << i << "]: " << a.lse[i] << " vs " << b.lse[i], err.str();
    if (f32_bits(a.max_logits[i]) != f32_bits(b.max_logits[i]) && !(std::isnan(a.max_logits[i]) && std::isnan(b.max_logits[i])))
      return err << "max_logits[" << i << "]: " << a.max_logits[i] << " vs " << b.max_logits[i], err.str();
  }
  return "";
}

inline std::vector<std::uint16_t> random_q(std::int64_t n, Rng& rng) {
  std::vector<std::uint16_t> q(static_cast<std::size_t>(n));
  for (auto& x : q) x = f32_to_bf16(static_cast<float>(uniform(rng, -1000, 1000)) / 1000.0f);
  return q;
}

inline std::vector<float> random_sink(std::int32_t H, Rng& rng) {
  std::vector<float> s(static_cast<std::size_t>(H));
  for (auto& x : s) {
    switch (uniform(rng, 0, 9)) {
      case 0: x = INFINITY; break;
      case 1: x = -INFINITY; break;
      default: x = static_cast<float>(uniform(rng, -4000, 4000)) / 1000.0f;
    }
  }
  return s;
}

// Number of random cases: DSA_GPU_CASES overrides `default_cases` (the sanitizer runs use fewer).
inline int case_count(int default_cases) {
  if (const char* e = std::getenv("DSA_GPU_CASES")) return std::max(1, std::atoi(e));
  return default_cases;
}

}  // namespace dsa::gpu::testing

// paged_mqa_logits on the GPU (gpu/mqa_logits_kernel.cuh) against the fp64 gold and per-position
// budgets of dsa::judge_paged_mqa_logits (SPEC §6.2, §10): both layouts, page sizes 1..64, next_n
// 1..4, H ∈ {32, 64}, 1-D and 2-D context lengths (ctx not a multiple of the page, ctx < next_n,
// max_ctx clipping rows), aliasing block tables with garbage in unused entries, NaN poison in every
// token no visible position reads, sentinel-filled outputs (every position of [0, max_ctx) must be
// written, [max_ctx, row_stride) never), both fp8 formats. Exact relations (SPEC §11): standard vs
// preshuffle, relabelled physical blocks and 20 reruns give the same bits. Bad device-side inputs
// write nothing; host-side validation throws before any launch. Inputs written by the kernel just
// ahead in the stream are the ones read.
#include "gpu_test_util.hpp"
#include "indexer_gpu_cases.hpp"
#include "paged_mqa_logits_kernel.cuh"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dsa/caches.hpp"
#include "dsa/error.hpp"
#include "dsa/gpu/paged_mqa_logits.hpp"
#include "dsa/judge.hpp"
#include "dsa/paged_mqa_logits.hpp"
#include "dsa/quantize.hpp"

namespace {

using dsa::ContextLens;
using dsa::Fp8Format;
using dsa::IndexKLayout;
using namespace dsa::gpu::testing;

struct PagedCase {
  std::string label;
  dsa::IndexKGeometry geo;
  std::vector<std::uint8_t> cache;  // exactly geo.bytes()
  std::int64_t B = 0, N = 1, H = 0, max_blocks = 0, max_ctx = 0, row_stride = 0;
  ContextLens kind = ContextLens::per_sequence;
  Fp8Format q_fp8 = Fp8Format::e4m3fn;
  std::vector<std::uint8_t> q;
  std::vector<float> w;
  std::vector<std::int32_t> ctx, bt;
  std::int64_t rows() const { return B * N; }
};

struct CaseOptions {
  IndexKLayout layout = IndexKLayout::standard;
  std::int64_t max_len = 160;  // largest context
  std::int64_t max_batch = 3;
  bool allow_fnuz = true;
  bool nan_in_read_tokens = false;
  std::int32_t page_tokens = 0;  // 0: random
  std::int64_t heads = 0;        // 0: random
  std::int64_t next_n = 0;       // 0: random
  bool aligned_pages = false;    // 16-byte aligned pages (the streaming path's condition)
};

// The visible end of row (b, i) as SPEC §6.2 defines it, before clipping to max_ctx.
std::int64_t row_end(const PagedCase& c, std::int64_t b, std::int64_t i) {
  return c.kind == ContextLens::per_sequence ? c.ctx[b] - c.N + i + 1 : c.ctx[b * c.N + i];
}

PagedCase make_case(std::uint64_t seed, const CaseOptions& o) {
  Rng rng(seed);
  PagedCase c;
  const bool pre = o.layout == IndexKLayout::preshuffle;
  const std::int32_t P = o.page_tokens > 0 ? o.page_tokens
                         : pre             ? std::vector<std::int32_t>{16, 32, 48, 64, 64}[uniform(rng, 0, 4)]
                                           : std::vector<std::int32_t>{1, 3, 16, 64, 64}[uniform(rng, 0, 4)];
  c.H = o.heads > 0 ? o.heads : (uniform(rng, 0, 1) ? 64 : 32);
  c.N = o.next_n > 0 ? o.next_n : uniform(rng, 1, 4);
  c.B = uniform(rng, 1, o.max_batch);
  c.kind = uniform(rng, 0, 2) == 0 ? ContextLens::per_row : ContextLens::per_sequence;
  Fp8Format k_fp8 = Fp8Format::e4m3fn;
  if (o.allow_fnuz && uniform(rng, 0, 9) == 0) {
    k_fp8 = uniform(rng, 0, 1) ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn;
    c.q_fp8 = k_fp8 == Fp8Format::e4m3fn ? Fp8Format::e4m3fnuz : (uniform(rng, 0, 1) ? Fp8Format::e4m3fnuz : Fp8Format::e4m3fn);
  }
  // Context lengths: random, with the edges drawn often — 0, below next_n, a page multiple ± 1.
  auto length = [&]() -> std::int32_t {
    switch (uniform(rng, 0, 7)) {
      case 0: return 0;
      case 1: return static_cast<std::int32_t>(uniform(rng, 0, c.N));
      case 2: return static_cast<std::int32_t>(std::max<std::int64_t>(0, P * uniform(rng, 1, 3) + uniform(rng, -1, 1)));
      default: return static_cast<std::int32_t>(uniform(rng, 0, o.max_len));
    }
  };
  c.ctx.resize(static_cast<std::size_t>(c.kind == ContextLens::per_row ? c.rows() : c.B));
  for (auto& x : c.ctx) x = length();
  std::int64_t max_end = 0;
  for (std::int64_t b = 0; b < c.B; ++b)
    for (std::int64_t i = 0; i < c.N; ++i) max_end = std::max(max_end, row_end(c, b, i));
  // max_ctx: usually past every end, sometimes cutting rows short (their visible range is clipped).
  c.max_ctx = uniform(rng, 0, 5) == 0 ? uniform(rng, std::max<std::int64_t>(0, max_end - 20), max_end)
                                      : max_end + uniform(rng, 0, 40);
  if (c.max_ctx == 0 && uniform(rng, 0, 1)) c.max_ctx = 1;
  c.row_stride = c.max_ctx + uniform(rng, 0, 5);

  std::vector<std::int64_t> blocks_needed(static_cast<std::size_t>(c.B));
  for (std::int64_t b = 0; b < c.B; ++b) {
    std::int64_t end = 0;
    for (std::int64_t i = 0; i < c.N; ++i) end = std::max(end, std::min(row_end(c, b, i), c.max_ctx));
    blocks_needed[b] = (end + P - 1) / P;
  }
  c.max_blocks = *std::max_element(blocks_needed.begin(), blocks_needed.end()) + uniform(rng, 0, 2);
  const std::int64_t num_blocks = P == 1 ? uniform(rng, 1, 2 * o.max_len + 1) : uniform(rng, 1, 10);
  c.geo = dsa::IndexKGeometry::packed(o.layout, k_fp8, num_blocks, P, 128);
  const std::int64_t pad = 4 * uniform(rng, 0, 4);
  c.geo.block_stride_bytes += o.aligned_pages ? 16 * (pad % 2) : pad;  // 16-byte aligned pages or not
  c.cache.assign(static_cast<std::size_t>(c.geo.bytes()), 0);
  const std::int32_t garbage[] = {-1, static_cast<std::int32_t>(num_blocks), INT_MIN, INT_MAX};
  c.bt.resize(static_cast<std::size_t>(c.B * c.max_blocks));
  for (auto& e : c.bt) e = garbage[uniform(rng, 0, 3)];  // entries no visible position needs: never read
  std::set<std::pair<std::int64_t, std::int64_t>> read;
  for (std::int64_t b = 0; b < c.B; ++b) {
    std::int64_t end = 0;
    for (std::int64_t i = 0; i < c.N; ++i) end = std::max(end, std::min(row_end(c, b, i), c.max_ctx));
    for (std::int64_t j = 0; j < blocks_needed[b]; ++j) {
      const auto blk = static_cast<std::int32_t>(uniform(rng, 0, num_blocks - 1));  // aliasing allowed
      c.bt[b * c.max_blocks + j] = blk;
      for (std::int64_t t = 0; t < P && j * P + t < end; ++t) read.insert({blk, t});
    }
  }
  for (const auto& [blk, t] : read) fill_index_k_token(c.cache, c.geo, blk, t, rng);
  if (o.nan_in_read_tokens && !read.empty()) {  // a NaN code in a visible token: its logits must be NaN
    auto it = read.begin();
    std::advance(it, uniform(rng, 0, static_cast<std::int64_t>(read.size()) - 1));
    std::uint8_t* page = c.cache.data() + it->first * c.geo.block_stride_bytes;
    page[dsa::layout::IndexK::value_offset(c.geo.layout, 128, it->second, static_cast<int>(uniform(rng, 0, 127)))] =
        dsa::fp8_nan_code(k_fp8);
  }
  poison_index_k_tokens(c.cache, c.geo, read);
  c.q = random_fp8_vector(rng, static_cast<std::size_t>(c.rows() * c.H * 128), c.q_fp8);
  c.w = random_weights(rng, static_cast<std::size_t>(c.rows() * c.H));
  c.label = std::string(dsa::to_string(o.layout)) + " P=" + std::to_string(P) + " B=" + std::to_string(c.B) +
            " N=" + std::to_string(c.N) + " H=" + std::to_string(c.H) + " " + dsa::to_string(c.kind) +
            " max_ctx=" + std::to_string(c.max_ctx) + " q " + dsa::to_string(c.q_fp8) + " k " +
            dsa::to_string(k_fp8) + " stride " + std::to_string(c.geo.block_stride_bytes) + " seed " +
            std::to_string(seed);
  return c;
}

dsa::PagedMqaLogitsParams reference_params(const PagedCase& c) {
  dsa::PagedMqaLogitsParams p;
  p.batch = c.B;
  p.next_n = c.N;
  p.num_heads = c.H;
  p.head_dim = 128;
  p.q = c.q;
  p.q_fp8 = c.q_fp8;
  p.weights = c.w;
  p.context_lens_kind = c.kind;
  p.context_lens = c.ctx;
  p.block_table = c.bt;
  p.max_blocks = c.max_blocks;
  p.cache = dsa::IndexKCacheView{c.geo, c.cache};
  p.reader_layout = c.geo.layout;
  p.max_ctx = c.max_ctx;
  p.logits_row_stride = c.row_stride;
  return p;
}

struct GpuResult {
  std::vector<float> logits;  // [rows][row_stride]
  std::int32_t status = -1;
  std::string path;           // the kernel path the call took
};

// The kernel ahead of a call that writes the call's block table and q: it lets its programmatic
// dependents launch at once, waits 20 µs (CUDA), then copies the real inputs over poisoned ones.
struct LateInputs {
  const std::int32_t* bt_src;
  std::int32_t* bt_dst;
  std::int64_t bt_n;
  const std::uint8_t* q_src;
  std::uint8_t* q_dst;
  std::int64_t q_n;
};

__global__ void write_inputs_late(const LateInputs in) {
  dsa::gpu::release_dependents();
#if !defined(DSA_GPU_BACKEND_HIP)
  std::uint64_t t0 = 0, t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t0));
  do asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
  while (t - t0 < 20000);
#endif
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < in.bt_n; i += stride)
    in.bt_dst[i] = in.bt_src[i];
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < in.q_n; i += stride)
    in.q_dst[i] = in.q_src[i];
}

// One launch over exact-sized device copies of the case; the output starts as the sentinel. With
// `late_inputs` (e4m3fn q), the block table starts with every entry out of range and q with NaN
// codes, and write_inputs_late, the kernel just ahead in the stream, writes the real ones.
GpuResult run_gpu(const PagedCase& c, bool late_inputs = false) {
  DeviceBuffer<std::uint8_t> cache(c.cache), q(c.q);
  DeviceBuffer<float> w(c.w);
  DeviceBuffer<std::int32_t> ctx(c.ctx), bt(c.bt), status(1);
  DeviceBuffer<float> logits(sentinel_floats(static_cast<std::size_t>(c.rows() * c.row_stride), dsa::kSentinelF32));
  DeviceBuffer<std::int32_t> bt_real(late_inputs ? c.bt : std::vector<std::int32_t>{});
  DeviceBuffer<std::uint8_t> q_real(late_inputs ? c.q : std::vector<std::uint8_t>{});
  if (late_inputs) {
    bt.upload(std::vector<std::int32_t>(c.bt.size(), static_cast<std::int32_t>(c.geo.num_blocks + 7)));
    q.fill_bytes(0x7F);  // e4m3fn NaN
  }
  dsa::gpu::PagedMqaLogitsParams p;
  p.batch = c.B;
  p.next_n = c.N;
  p.num_heads = c.H;
  p.head_dim = 128;
  p.q = q.get();
  p.q_fp8 = c.q_fp8;
  p.weights = w.get();
  p.context_lens_kind = c.kind;
  p.context_lens = ctx.get();
  p.block_table = bt.get();
  p.max_blocks = c.max_blocks;
  p.cache = c.geo;
  p.cache_bytes = cache.get();
  p.reader_layout = c.geo.layout;
  p.max_ctx = c.max_ctx;
  p.logits = logits.get();
  p.logits_row_stride = c.row_stride;
  p.status = status.get();
  if (late_inputs) {
    const LateInputs in{bt_real.get(), bt.get(), static_cast<std::int64_t>(c.bt.size()),
                        q_real.get(),  q.get(),  static_cast<std::int64_t>(c.q.size())};
    write_inputs_late<<<8, 256>>>(in);
    DSA_GPU_CHECK_LAUNCH();
  }
  dsa::gpu::paged_mqa_logits(p, nullptr);
  DSA_GPU_CHECK(cudaDeviceSynchronize());
  GpuResult r;
  r.path = dsa::gpu::paged_mqa_logits_path(p);
  r.logits = logits.download();
  r.status = status.download()[0];
  return r;
}

bool hardware_path(const PagedCase& c) { return c.q_fp8 == Fp8Format::e4m3fn && c.geo.fp8 == Fp8Format::e4m3fn; }

// The accumulator unit the tensor-core path is judged with: the kernel's declaration, or
// DSA_GPU_LOGITS_U_ACC (a number) to measure what another unit would give.
double tensor_core_u_acc() {
  if (const char* e = std::getenv("DSA_GPU_LOGITS_U_ACC")) return std::strtod(e, nullptr);
  return dsa::gpu::logits_accumulator_unit(Fp8Format::e4m3fn, Fp8Format::e4m3fn);
}

dsa::JudgeOptions judge_options(bool hardware) {
  dsa::JudgeOptions o;
  o.precision = dsa::kernel_precision("fp32p", dsa::Op::paged_mqa_logits);
  if (hardware) o.precision.u_acc = tensor_core_u_acc();
  o.sentinel_f32 = dsa::kSentinelF32;
  o.write_contract = dsa::WriteContract::all;
  return o;
}

// Positions [max_ctx, row_stride) of every row still hold the sentinel.
void expect_tail_untouched(const PagedCase& c, const std::vector<float>& logits) {
  for (std::int64_t r = 0; r < c.rows(); ++r)
    for (std::int64_t t = c.max_ctx; t < c.row_stride; ++t)
      if (dsa::f32_bits(logits[r * c.row_stride + t]) != dsa::kSentinelF32) {
        ADD_FAILURE() << c.label << ": row " << r << " position " << t << " ≥ max_ctx was written";
        return;
      }
}

struct Tally {
  std::int64_t cases = 0;
  double worst_hw = 0.0, worst_emulated = 0.0;
};

void judge_case(const PagedCase& c, const GpuResult& g, Tally& tally) {
  ASSERT_EQ(g.status, 0) << c.label;
  const bool hw = hardware_path(c);
  const dsa::CaseResult r = dsa::judge_paged_mqa_logits(reference_params(c), g.logits, c.row_stride, judge_options(hw));
  ++tally.cases;
  (hw ? tally.worst_hw : tally.worst_emulated) = std::max(hw ? tally.worst_hw : tally.worst_emulated, r.worst_ratio());
  if (!r.pass()) {
    std::string why = r.error;
    for (const auto& o : r.outputs)
      if (!o.cmp.pass)
        why += o.name + ": " + o.cmp.failure + " (worst ratio " + std::to_string(o.cmp.worst_ratio) + " at " +
               o.cmp.worst_coordinate + ", got " + std::to_string(o.cmp.worst_got) + " want " +
               std::to_string(o.cmp.worst_want) + ")";
    ADD_FAILURE() << c.label << ": " << why;
  }
  expect_tail_untouched(c, g.logits);
}

void report(const char* what, const Tally& t) {
  std::cout << "[ judged   ] " << what << ": " << t.cases << " cases, worst error/budget " << t.worst_hw
            << " (tensor cores, u_acc " << tensor_core_u_acc() << "), " << t.worst_emulated << " (emulated, u_acc 2^-23)\n";
}

class PagedMqaLogitsGpu : public GpuTest {};

// ------------------------------------------------------------------------------------------------
TEST_F(PagedMqaLogitsGpu, MatchesGoldWithinBudgetStandard) {
  Tally tally;
  for (std::uint64_t seed = 0; seed < cases_to_run(1100); ++seed) {
    CaseOptions o;
    o.layout = IndexKLayout::standard;
    o.nan_in_read_tokens = seed % 97 == 5;
    const PagedCase c = make_case(seed, o);
    judge_case(c, run_gpu(c), tally);
    if (HasFailure()) break;
  }
  report("standard", tally);
  EXPECT_GE(tally.cases, static_cast<std::int64_t>(cases_to_run(1100)));
}

TEST_F(PagedMqaLogitsGpu, MatchesGoldWithinBudgetPreshuffle) {
  Tally tally;
  for (std::uint64_t seed = 100000; seed < 100000 + cases_to_run(1000); ++seed) {
    CaseOptions o;
    o.layout = IndexKLayout::preshuffle;
    o.nan_in_read_tokens = seed % 97 == 5;
    const PagedCase c = make_case(seed, o);
    judge_case(c, run_gpu(c), tally);
    if (HasFailure()) break;
  }
  report("preshuffle", tally);
  EXPECT_GE(tally.cases, static_cast<std::int64_t>(cases_to_run(1000)));
}

// The streaming path (sm_90a: TMA ring + wgmma; pages of 64k tokens, 16-byte aligned): its own
// 2000 cases over both layouts, pages of 64 and 128, contexts of up to 10 tiles. The test asserts
// the path each case took, so a change of the eligibility rule cannot silently empty it.
TEST_F(PagedMqaLogitsGpu, MatchesGoldWithinBudgetStreamingPath) {
  Tally tally;
  std::int64_t streamed = 0;
  for (std::uint64_t seed = 500000; seed < 500000 + cases_to_run(2000); ++seed) {
    CaseOptions o;
    o.layout = seed % 2 == 0 ? IndexKLayout::standard : IndexKLayout::preshuffle;
    o.page_tokens = seed % 5 == 0 ? 128 : 64;
    o.aligned_pages = true;
    o.allow_fnuz = false;
    o.max_len = seed % 3 == 0 ? 640 : 200;
    o.max_batch = 4;
    o.nan_in_read_tokens = seed % 89 == 7;
    const PagedCase c = make_case(seed, o);
    const GpuResult g = run_gpu(c);
    if (g.path == "tma-wgmma") ++streamed;
    judge_case(c, g, tally);
    if (HasFailure()) break;
  }
  report("streaming path", tally);
  std::cout << "[ path     ] " << streamed << " of " << tally.cases << " cases took the tma-wgmma path\n";
  EXPECT_GE(tally.cases, static_cast<std::int64_t>(cases_to_run(2000)));
  if (dsa::gpu::paged_mqa_logits_tma_available()) {
    EXPECT_EQ(streamed, tally.cases);
  } else {
    std::cout << "[ path     ] this build or device has no streaming path: the cases ran the fallback\n";
  }
}

// Decode-sized shapes: long contexts, page 64 and page 1.
TEST_F(PagedMqaLogitsGpu, MatchesGoldWithinBudgetLargeContexts) {
  Tally tally;
  const std::int32_t pages[] = {64, 1, 64, 16};
  const IndexKLayout layouts[] = {IndexKLayout::standard, IndexKLayout::standard, IndexKLayout::preshuffle,
                                  IndexKLayout::preshuffle};
  for (int i = 0; i < 4; ++i) {
    CaseOptions o;
    o.layout = layouts[i];
    o.page_tokens = pages[i];
    o.max_len = 5000;
    o.max_batch = 2;
    o.heads = 64;
    o.next_n = 1 + i % 2;
    o.allow_fnuz = false;
    const PagedCase c = make_case(700 + i, o);
    judge_case(c, run_gpu(c), tally);
  }
  report("large", tally);
}

// SPEC §11 E: the same data in standard and preshuffle layout give the same logits, bit for bit.
TEST_F(PagedMqaLogitsGpu, StandardAndPreshuffleAreBitIdentical) {
  int compared = 0;
  for (std::uint64_t seed = 2000; seed < 2000 + cases_to_run(200); ++seed) {
    CaseOptions o;
    o.layout = IndexKLayout::preshuffle;
    o.max_len = seed % 10 == 0 ? 2000 : 160;
    const PagedCase pre = make_case(seed, o);
    PagedCase std_case = pre;
    std_case.geo.layout = IndexKLayout::standard;
    dsa::transcode_index_k(dsa::IndexKCacheView{pre.geo, pre.cache}, dsa::IndexKCacheSpan{std_case.geo, std_case.cache});
    const GpuResult a = run_gpu(pre), b = run_gpu(std_case);
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(b.status, 0);
    const std::int64_t i = first_difference(a.logits, b.logits);
    ASSERT_EQ(i, -1) << pre.label << ": standard and preshuffle differ first at row " << i / pre.row_stride
                     << " position " << i % pre.row_stride;
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(cases_to_run(200)));
}

// SPEC §11 E: relabelling the physical blocks (permute the pool, rewrite the table) changes nothing.
TEST_F(PagedMqaLogitsGpu, RelabelledBlocksAreBitIdentical) {
  for (std::uint64_t seed = 3000; seed < 3000 + cases_to_run(100); ++seed) {
    CaseOptions o;
    o.layout = seed % 2 ? IndexKLayout::preshuffle : IndexKLayout::standard;
    const PagedCase c = make_case(seed, o);
    Rng rng(seed ^ 0xABCDEF);
    std::vector<std::int32_t> perm(static_cast<std::size_t>(c.geo.num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    PagedCase r = c;
    for (std::int64_t blk = 0; blk < c.geo.num_blocks; ++blk)
      std::memcpy(r.cache.data() + perm[blk] * c.geo.block_stride_bytes, c.cache.data() + blk * c.geo.block_stride_bytes,
                  static_cast<std::size_t>(c.geo.page_bytes()));
    for (auto& e : r.bt)
      if (e >= 0 && e < c.geo.num_blocks) e = perm[e];
    const GpuResult a = run_gpu(c), b = run_gpu(r);
    ASSERT_EQ(a.status, 0);
    ASSERT_EQ(first_difference(a.logits, b.logits), -1) << c.label;
  }
}

// SPEC §11 E: rerunning the same call gives the same bits (20 reruns of a decode-sized case).
TEST_F(PagedMqaLogitsGpu, TwentyRerunsAreBitIdentical) {
  CaseOptions o;
  o.layout = IndexKLayout::standard;
  o.page_tokens = 64;
  o.max_len = 8192;
  o.max_batch = 4;
  o.heads = 64;
  o.next_n = 2;
  o.allow_fnuz = false;
  const PagedCase c = make_case(4242, o);
  const GpuResult first = run_gpu(c);
  ASSERT_EQ(first.status, 0);
  for (int i = 1; i < static_cast<int>(cases_to_run(20)); ++i)
    ASSERT_EQ(first_difference(first.logits, run_gpu(c).logits), -1) << "rerun " << i;
}

// The call's inputs written by the kernel just ahead of it in the stream, which releases its
// programmatic dependents at once and writes 20 µs later (write_inputs_late): the checks' cluster
// is launched programmatically and the streaming kernel reads the table and q before its own wait,
// so a check that did not wait for the kernel ahead would read the poisoned table (a bad-table
// status) and the logits kernel the NaN q. Streaming-path and per-thread-path cases.
TEST_F(PagedMqaLogitsGpu, InputsWrittenByTheKernelAheadAreRead) {
  Tally tally;
  for (std::uint64_t seed = 700000; seed < 700000 + cases_to_run(200); ++seed) {
    CaseOptions o;
    o.layout = seed % 2 == 0 ? IndexKLayout::standard : IndexKLayout::preshuffle;
    o.page_tokens = seed % 4 == 3 ? 16 : 64;
    o.aligned_pages = seed % 4 != 3;
    o.allow_fnuz = false;
    o.max_len = seed % 3 == 0 ? 640 : 200;
    o.max_batch = 4;
    const PagedCase c = make_case(seed, o);
    judge_case(c, run_gpu(c, true), tally);
    if (HasFailure()) break;
  }
  report("inputs written by the kernel ahead", tally);
  EXPECT_GE(tally.cases, static_cast<std::int64_t>(cases_to_run(200)));
}

// The judge still rejects a kernel that is wrong by one head: the logits of a run whose weight of
// head h is zeroed, judged against the true weights, must fail in nearly every case — with the
// accumulation unit this kernel declares.
TEST_F(PagedMqaLogitsGpu, JudgeCatchesAMissingHead) {
  int cases = 0, caught = 0;
  for (std::uint64_t seed = 5000; seed < 5000 + cases_to_run(60); ++seed) {
    CaseOptions o;
    o.allow_fnuz = false;
    o.max_len = 120;
    PagedCase c = make_case(seed, o);
    std::int64_t visible = 0;
    for (std::int64_t r = 0; r < c.rows(); ++r)
      visible += dsa::visible_range(reference_params(c), r).size();
    if (visible < 8) continue;
    PagedCase wrong = c;
    const std::int64_t h = static_cast<std::int64_t>(seed % static_cast<std::uint64_t>(c.H));
    for (std::int64_t r = 0; r < c.rows(); ++r) wrong.w[r * c.H + h] = 0.0f;
    const GpuResult g = run_gpu(wrong);
    ASSERT_EQ(g.status, 0);
    ++cases;
    if (!dsa::judge_paged_mqa_logits(reference_params(c), g.logits, c.row_stride, judge_options(true)).pass()) ++caught;
  }
  std::cout << "[ judged   ] a kernel that drops one head of " << cases << " cases is rejected in " << caught << "\n";
  EXPECT_GE(caught, cases * 9 / 10);
}

// ------------------------------------------------------------------------------------------------
// Device-side checks: a bad context length or table entry sets its status bit, leaves every
// logit untouched and decodes to the error dsa::validate throws.
// Appends `extra` never-needed garbage entries to every block-table row, so the device-side checks
// see more than 64 k items and take their wide-grid form (memset + any number of CTAs).
void widen_block_table(PagedCase& c, std::int64_t extra) {
  const std::int64_t mb = c.max_blocks + extra;
  std::vector<std::int32_t> bt(static_cast<std::size_t>(c.B * mb), INT_MIN);
  for (std::int64_t b = 0; b < c.B; ++b)
    std::copy_n(c.bt.begin() + b * c.max_blocks, c.max_blocks, bt.begin() + b * mb);
  c.bt = std::move(bt);
  c.max_blocks = mb;
}

// Breaks one device-checked rule in each case (negative context length, too few blocks, a bad
// table entry): *status names it and no logit is written. `streaming` draws the cases the sm_90a
// streaming path takes (which starts reading before the checks end), with contexts of up to
// 14 tiles so the ring fills before the verdict is read.
void expect_bad_inputs_write_nothing(std::uint64_t seed_begin, std::uint64_t n, bool streaming, bool wide = false) {
  struct Breakage {
    const char* what;
    std::int32_t bit;
    const char* argument;
  };
  const Breakage kinds[] = {{"negative context", dsa::gpu::kPagedLogitsBadContextLen, "context_lens"},
                            {"too few blocks", dsa::gpu::kPagedLogitsTooFewBlocks, "block_table"},
                            {"bad table entry", dsa::gpu::kPagedLogitsBadBlockTable, "block_table"}};
  std::int64_t ran = 0, streamed = 0;
  for (std::uint64_t seed = seed_begin; seed < seed_begin + cases_to_run(n); ++seed) {
    // A widened table has blocks to spare: "too few blocks" cannot be built there.
    const Breakage& k = kinds[wide ? 2 * (seed % 2) : seed % 3];
    CaseOptions o;
    o.layout = seed % 2 ? IndexKLayout::preshuffle : IndexKLayout::standard;
    if (streaming) {
      o.page_tokens = seed % 4 == 0 ? 128 : 64;
      o.aligned_pages = true;
      o.allow_fnuz = false;
      o.max_len = seed % 2 ? 900 : 200;
    }
    PagedCase c = make_case(seed, o);
    if (c.max_ctx < 2) continue;
    Rng rng(seed);
    if (k.bit == dsa::gpu::kPagedLogitsBadContextLen) {
      c.ctx[uniform(rng, 0, static_cast<std::int64_t>(c.ctx.size()) - 1)] = uniform(rng, 0, 1) ? -1 : INT_MIN;
    } else {
      // Row 0 sees every position: the table entries of sequence 0 are all needed.
      if (c.kind == ContextLens::per_sequence) c.ctx[0] = static_cast<std::int32_t>(c.max_ctx + c.N);
      else c.ctx[0] = static_cast<std::int32_t>(c.max_ctx);
      const std::int64_t needed = (c.max_ctx + c.geo.page_tokens - 1) / c.geo.page_tokens;
      if (k.bit == dsa::gpu::kPagedLogitsTooFewBlocks) {
        c.max_blocks = needed - 1;
        c.bt.assign(static_cast<std::size_t>(c.B * c.max_blocks), 0);
      } else {
        c.max_blocks = needed;
        c.bt.assign(static_cast<std::size_t>(c.B * c.max_blocks), 0);
        const std::int32_t bad[] = {-1, static_cast<std::int32_t>(c.geo.num_blocks), INT_MIN, INT_MAX};
        c.bt[uniform(rng, 0, needed - 1)] = bad[uniform(rng, 0, 3)];
      }
    }
    if (wide) widen_block_table(c, 70000);
    const GpuResult g = run_gpu(c);
    ++ran;
    if (g.path == "tma-wgmma") ++streamed;
    EXPECT_EQ(g.status & k.bit, k.bit) << k.what << ": " << c.label;
    for (float x : g.logits)
      if (dsa::f32_bits(x) != dsa::kSentinelF32) {
        ADD_FAILURE() << k.what << ": a logit was written: " << c.label;
        break;
      }
    try {
      dsa::gpu::check_paged_mqa_logits_status(g.status);
      ADD_FAILURE() << k.what << ": no error";
    } catch (const dsa::InvalidArgument& e) {
      EXPECT_EQ(e.argument(), k.argument) << e.what();
    }
  }
  EXPECT_GT(ran, 0);
  if (streaming && dsa::gpu::paged_mqa_logits_tma_available()) EXPECT_EQ(streamed, ran);
}

TEST_F(PagedMqaLogitsGpu, BadDeviceInputsWriteNothing) { expect_bad_inputs_write_nothing(6000, 60, false); }

TEST_F(PagedMqaLogitsGpu, BadDeviceInputsWriteNothingStreamingPath) {
  expect_bad_inputs_write_nothing(16000, 150, true);
}

// The checks' wide form (> 64 k table items) on good and on bad inputs.
TEST_F(PagedMqaLogitsGpu, WideBlockTablesAreCheckedToo) {
  Tally tally;
  for (std::uint64_t seed = 17000; seed < 17000 + cases_to_run(12); ++seed) {
    CaseOptions o;
    o.layout = seed % 2 ? IndexKLayout::preshuffle : IndexKLayout::standard;
    o.page_tokens = 64;
    o.aligned_pages = seed % 3 != 0;
    o.allow_fnuz = false;
    PagedCase c = make_case(seed, o);
    widen_block_table(c, 70000);
    judge_case(c, run_gpu(c), tally);
  }
  report("wide tables", tally);
  expect_bad_inputs_write_nothing(18000, 12, true, true);
}

// ------------------------------------------------------------------------------------------------
// Host-side validation (no device needed): the kernel's limits and the layout tag.
dsa::gpu::PagedMqaLogitsParams valid_host_params(IndexKLayout layout) {
  dsa::gpu::PagedMqaLogitsParams p;
  p.batch = 2;
  p.next_n = 2;
  p.num_heads = 64;
  p.head_dim = 128;
  p.q = fake_device_ptr<std::uint8_t>();
  p.weights = fake_device_ptr<float>();
  p.context_lens = fake_device_ptr<std::int32_t>();
  p.block_table = fake_device_ptr<std::int32_t>();
  p.max_blocks = 4;
  p.cache = dsa::IndexKGeometry::packed(layout, Fp8Format::e4m3fn, 8, 64, 128);
  p.cache_bytes = fake_device_ptr<std::uint8_t>();
  p.reader_layout = layout;
  p.max_ctx = 256;
  p.logits = fake_device_ptr<float>();
  p.logits_row_stride = 256;
  p.status = fake_device_ptr<std::int32_t>();
  return p;
}

template <class F>
void expect_invalid(const char* argument, F&& f) {
  try {
    f();
    ADD_FAILURE() << "no error for " << argument;
  } catch (const dsa::InvalidArgument& e) {
    EXPECT_EQ(e.argument(), argument) << e.what();
  }
}

TEST(PagedMqaLogitsGpuValidation, LayoutMismatchNamesBothLayouts) {
  auto p = valid_host_params(IndexKLayout::preshuffle);
  try {
    dsa::gpu::paged_mqa_logits_as<IndexKLayout::standard>(p, nullptr);
    ADD_FAILURE() << "a preshuffle cache was accepted by the standard kernel";
  } catch (const dsa::LayoutMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("preshuffle"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("standard"), std::string::npos) << e.what();
  }
  p.reader_layout = IndexKLayout::standard;  // the cache says preshuffle, the call says standard
  EXPECT_THROW(dsa::gpu::paged_mqa_logits(p, nullptr), dsa::LayoutMismatch);
  auto s = valid_host_params(IndexKLayout::standard);
  EXPECT_THROW(dsa::gpu::paged_mqa_logits_as<IndexKLayout::preshuffle>(s, nullptr), dsa::LayoutMismatch);
}

TEST(PagedMqaLogitsGpuValidation, KernelLimitsAreErrors) {
  using P = dsa::gpu::PagedMqaLogitsParams;
  auto with = [](auto edit) {
    P p = valid_host_params(IndexKLayout::standard);
    edit(p);
    return [p] { dsa::gpu::paged_mqa_logits(p, nullptr); };
  };
  expect_invalid("num_heads", with([](P& p) { p.num_heads = 16; }));
  expect_invalid("num_heads", with([](P& p) { p.num_heads = 128; }));
  expect_invalid("head_dim", with([](P& p) { p.head_dim = 64; }));
  expect_invalid("next_n", with([](P& p) { p.next_n = 5; }));
  expect_invalid("next_n", with([](P& p) { p.next_n = 0; }));
  expect_invalid("k_scale_at", with([](P& p) { p.k_scale_at = dsa::KScaleAt::per_head; }));
  expect_invalid("status", with([](P& p) { p.status = nullptr; }));
  expect_invalid("logits_row_stride", with([](P& p) { p.logits_row_stride = 255; }));
  expect_invalid("q", with([](P& p) { p.q = p.q + 4; }));
  expect_invalid("batch", with([](P& p) { p.batch = -1; }));
  expect_invalid("cache.page_tokens", with([](P& p) {
    p.cache = dsa::IndexKGeometry::packed(IndexKLayout::preshuffle, Fp8Format::e4m3fn, 8, 64, 128);
    p.cache.page_tokens = 24;
    p.reader_layout = IndexKLayout::preshuffle;
  }));
}

// The check items on the host: the kernel's verdict for every rule.
TEST(PagedMqaLogitsGpuValidation, CheckItemsOnTheHost) {
  dsa::gpu::PagedMqaLogitsParams p = valid_host_params(IndexKLayout::standard);
  std::vector<std::int32_t> ctx = {100, 0}, bt = {0, 1, -1, INT_MIN, 7, 9, 9, 9};  // seq 0 needs 2 blocks
  p.context_lens = ctx.data();
  p.block_table = bt.data();
  auto bits = [&] {
    std::int32_t b = 0;
    for (std::int64_t i = 0; i < p.batch * (p.max_blocks + 1); ++i) b |= dsa::gpu::detail::paged_logits_check_item(p, i);
    return b;
  };
  EXPECT_EQ(bits(), 0);
  bt[1] = 8;  // num_blocks = 8
  EXPECT_EQ(bits(), dsa::gpu::kPagedLogitsBadBlockTable);
  bt[1] = 1;
  ctx[1] = -3;
  EXPECT_EQ(bits(), dsa::gpu::kPagedLogitsBadContextLen);
  ctx[1] = 64 * 4 + 2;  // next_n = 2: row 1 sees 258 positions, clipped to max_ctx = 256: 4 blocks
  EXPECT_EQ(bits(), dsa::gpu::kPagedLogitsBadBlockTable);  // seq 1 entries 7, 9, 9, 9: 9 ≥ num_blocks
  p.max_ctx = 300;
  p.logits_row_stride = 300;
  EXPECT_EQ(bits() & dsa::gpu::kPagedLogitsTooFewBlocks, dsa::gpu::kPagedLogitsTooFewBlocks);
}

}  // namespace

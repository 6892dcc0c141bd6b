// The smoothing op against float64 references, its properties, and its errors.

#include "reference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch_mlsgd/torch_mlsgd.h>

#include <limits>
#include <string>
#include <vector>

namespace {

using torch_mlsgd::laplacian_smooth;
using torch_mlsgd::laplacian_smooth_;
using torch_mlsgd::testing::apply_operator;
using torch_mlsgd::testing::dense_smooth;
using torch_mlsgd::testing::fft_smooth;
using torch_mlsgd::testing::relative_error;

const std::vector<std::string> kBackends = {"fft", "direct", "auto"};
const std::vector<double> kSigmas = {0.0, 1e-3, 0.5, 1.0, 10.0, 300.0};

double tolerance(torch::ScalarType dtype) { return dtype == torch::kDouble ? 1e-10 : 1e-5; }

// Every size, sigma, order, backend and dtype against the dense solve (small
// n) or the full complex FFT (large n), both in float64.
TEST(LaplacianSmooth, MatchesFloat64References) {
  torch::manual_seed(0);
  const std::vector<int64_t> sizes = {1, 2, 3, 4, 5, 7, 8, 16, 101, 4097, 65537};
  for (int64_t n : sizes) {
    const torch::Tensor v = torch::randn({n}, torch::kDouble);
    for (int64_t order = 1; order <= 4; ++order) {
      for (double sigma : kSigmas) {
        const torch::Tensor expected = n <= 128 ? dense_smooth(v, sigma, order) : fft_smooth(v, sigma, order);
        for (const auto& backend : kBackends) {
          for (auto dtype : {torch::kDouble, torch::kFloat}) {
            SCOPED_TRACE("n=" + std::to_string(n) + " order=" + std::to_string(order) + " sigma=" +
                         std::to_string(sigma) + " backend=" + backend + " dtype=" + std::string(c10::toString(dtype)));
            const torch::Tensor out = laplacian_smooth(v.to(dtype), sigma, order, backend);
            ASSERT_EQ(out.scalar_type(), dtype);
            ASSERT_EQ(out.sizes(), v.sizes());
            EXPECT_LT(relative_error(out, expected), tolerance(dtype));
          }
        }
      }
    }
  }
}

// n = 10^6 is cut into many chunks and threads; large sigma needs long warm-ups.
TEST(LaplacianSmooth, DirectRouteAcrossChunksAndThreads) {
  torch::manual_seed(1);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(2);
  const torch::Tensor v = torch::randn({1000003}, torch::kDouble);
  for (double sigma : {1.0, 1e4}) {
    for (int64_t order : {1, 2, 3}) {
      SCOPED_TRACE("sigma=" + std::to_string(sigma) + " order=" + std::to_string(order));
      const torch::Tensor expected = fft_smooth(v, sigma, order);
      EXPECT_LT(relative_error(laplacian_smooth(v, sigma, order, "direct"), expected), 1e-10);
      EXPECT_LT(relative_error(laplacian_smooth(v.to(torch::kFloat), sigma, order, "direct"), expected), 1e-5);
    }
  }
  torch::set_num_threads(threads);
}

TEST(LaplacianSmooth, ExtremeSigmasStayAccurate) {
  torch::manual_seed(2);
  const torch::Tensor v = torch::randn({1000}, torch::kDouble);
  for (double sigma : {1e-12, 1e-6, 1e6, 1e8}) {
    for (int64_t order : {1, 2}) {
      for (const auto& backend : kBackends) {
        SCOPED_TRACE("sigma=" + std::to_string(sigma) + " backend=" + backend);
        const torch::Tensor expected = fft_smooth(v, sigma, order);
        EXPECT_LT(relative_error(laplacian_smooth(v, sigma, order, backend), expected), 1e-9);
      }
    }
  }
}

TEST(LaplacianSmooth, KeepsTheOperatorsProperties) {
  torch::manual_seed(3);
  for (int64_t n : {1, 2, 3, 64, 1000}) {
    const torch::Tensor u = torch::randn({n}, torch::kDouble);
    const torch::Tensor v = torch::randn({n}, torch::kDouble) + 3.0;
    for (int64_t order = 1; order <= 3; ++order) {
      for (double sigma : {0.3, 1.0, 50.0}) {
        for (const auto& backend : kBackends) {
          SCOPED_TRACE("n=" + std::to_string(n) + " order=" + std::to_string(order) +
                       " sigma=" + std::to_string(sigma) + " backend=" + backend);
          const torch::Tensor sv = laplacian_smooth(v, sigma, order, backend);
          const torch::Tensor su = laplacian_smooth(u, sigma, order, backend);
          // The mean is kept (d_0 = 1).
          EXPECT_NEAR(sv.mean().item<double>(), v.mean().item<double>(), 1e-12);
          // A S v = v: the stencil residual is at rounding level.
          EXPECT_LT(relative_error(apply_operator(sv, sigma, order), v), 1e-11);
          // The norm never grows.
          EXPECT_LE(sv.norm().item<double>(), v.norm().item<double>() * (1 + 1e-12));
          // S is symmetric: <S u, v> = <u, S v>.
          EXPECT_NEAR(su.dot(v).item<double>(), u.dot(sv).item<double>(),
                      1e-10 * (1 + std::abs(u.dot(sv).item<double>())));
        }
      }
    }
  }
}

TEST(LaplacianSmooth, ShrinksNoiseVarianceAsPredicted) {
  // For i.i.d. noise the variance shrinks by (1/n) sum_k d_k^-2, which tends to
  // (1 + 2 sigma) / (1 + 4 sigma)^(3/2) for order 1: 0.268 at sigma = 1.
  torch::manual_seed(4);
  const torch::Tensor v = torch::randn({1 << 20}, torch::kDouble);
  const double ratio = laplacian_smooth(v, 1.0).var().item<double>() / v.var().item<double>();
  EXPECT_NEAR(ratio, 3.0 / std::pow(5.0, 1.5), 3e-3);
}

TEST(LaplacianSmooth, SigmaZeroIsExactlyTheIdentity) {
  const torch::Tensor v = torch::randn({3, 7});
  for (const auto& backend : kBackends) {
    EXPECT_TRUE(torch::equal(laplacian_smooth(v, 0.0, 2, backend), v));
  }
}

TEST(LaplacianSmooth, FlattensAnyShapeInRowMajorOrder) {
  torch::manual_seed(5);
  const torch::Tensor m = torch::randn({6, 9}, torch::kDouble);
  const torch::Tensor expected = fft_smooth(m, 2.0, 1).view({6, 9});
  const torch::Tensor transposed = m.t().contiguous().t();  // same values, column-major
  ASSERT_FALSE(transposed.is_contiguous());
  for (const auto& backend : kBackends) {
    EXPECT_LT(relative_error(laplacian_smooth(m, 2.0, 1, backend), expected), 1e-12);
    EXPECT_LT(relative_error(laplacian_smooth(transposed, 2.0, 1, backend), expected), 1e-12);
    torch::Tensor in_place = transposed.clone(at::MemoryFormat::Preserve);
    ASSERT_FALSE(in_place.is_contiguous());
    laplacian_smooth_(in_place, 2.0, 1, backend);
    EXPECT_LT(relative_error(in_place, expected), 1e-12);
  }
  const torch::Tensor scalar = torch::tensor(3.5, torch::kDouble);
  EXPECT_EQ(laplacian_smooth(scalar, 5.0).item<double>(), 3.5);
  EXPECT_EQ(laplacian_smooth(torch::empty({0, 4}), 1.0).sizes(), torch::IntArrayRef({0, 4}));
}

TEST(LaplacianSmooth, InPlaceMatchesOutOfPlace) {
  torch::manual_seed(6);
  for (int64_t n : {1, 2, 5, 100000}) {
    for (const auto& backend : kBackends) {
      const torch::Tensor v = torch::randn({n});
      torch::Tensor w = v.clone();
      torch::Tensor& returned = laplacian_smooth_(w, 3.0, 2, backend);
      EXPECT_TRUE(returned.is_same(w));
      EXPECT_TRUE(torch::allclose(w, laplacian_smooth(v, 3.0, 2, backend), 1e-6, 1e-7));
    }
  }
}

// float16/bfloat16 are computed in float32 and rounded once: bit for bit the
// float32 result rounded (a recursion or FFT run in half precision differs in
// many elements), and that float32 result is the float64 reference's.
TEST(LaplacianSmooth, HalfPrecisionIsComputedInFloat32) {
  torch::manual_seed(7);
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    for (int64_t n : {1000, 20011}) {
      const torch::Tensor v = torch::randn({n}).to(dtype);
      for (const auto& backend : kBackends) {
        for (int64_t order : {1, 2}) {
          SCOPED_TRACE("n=" + std::to_string(n) + " order=" + std::to_string(order) + " backend=" + backend +
                       " dtype=" + std::string(c10::toString(dtype)));
          const torch::Tensor out = laplacian_smooth(v, 3.0, order, backend);
          EXPECT_EQ(out.scalar_type(), dtype);
          const torch::Tensor in_float32 = laplacian_smooth(v.to(torch::kFloat), 3.0, order, backend);
          EXPECT_TRUE(torch::equal(out, in_float32.to(dtype)));
          EXPECT_LT(relative_error(in_float32, fft_smooth(v, 3.0, order)), tolerance(torch::kFloat));
          torch::Tensor w = v.clone();
          laplacian_smooth_(w, 3.0, order, backend);
          EXPECT_TRUE(torch::equal(w, out));
        }
      }
    }
  }
}

TEST(LaplacianSmooth, GradientIsTheSmoothedGradient) {
  torch::manual_seed(8);
  const torch::Tensor x = torch::randn({4, 25}, torch::kDouble).requires_grad_(true);
  const torch::Tensor weight = torch::randn({4, 25}, torch::kDouble);
  (laplacian_smooth(x, 2.0, 2) * weight).sum().backward();
  EXPECT_LT(relative_error(x.grad(), fft_smooth(weight, 2.0, 2)), 1e-12);
}

template <typename Error, typename F>
void expect_error_mentioning(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LaplacianSmooth, BadInputRaisesAndChangesNothing) {
  const torch::Tensor original = torch::randn({10});
  torch::Tensor v = original.clone();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  expect_error_mentioning<c10::ValueError>([&] { laplacian_smooth_(v, -1.0); }, "sigma value: -1");
  expect_error_mentioning<c10::ValueError>([&] { laplacian_smooth_(v, nan); }, "sigma value: nan");
  expect_error_mentioning<c10::ValueError>([&] { laplacian_smooth_(v, inf); }, "sigma value: inf");
  expect_error_mentioning<c10::ValueError>([&] { laplacian_smooth_(v, 1.0, 0); }, "order value: 0");
  expect_error_mentioning<c10::ValueError>([&] { laplacian_smooth_(v, 1.0, 1, "cufft"); }, "'cufft'");
  EXPECT_TRUE(torch::equal(v, original));
  expect_error_mentioning<c10::TypeError>([&] { laplacian_smooth(torch::arange(5), 1.0); }, "floating-point");
  expect_error_mentioning<c10::TypeError>([&] { laplacian_smooth(torch::randn({5}, torch::kComplexFloat), 1.0); },
                                          "complex");
  expect_error_mentioning<c10::TypeError>([&] { laplacian_smooth(torch::randn({5}).to_sparse(), 1.0); }, "sparse");
  // In place on a tensor that requires grad would corrupt autograd.
  torch::Tensor leaf = torch::randn({5}).requires_grad_(true);
  expect_error_mentioning<c10::Error>([&] { laplacian_smooth_(leaf, 1.0); }, "requires grad");
}

// A shard of a ring with its halos: the CPU's direct shard kernel and the
// ring-based one other devices use agree with smoothing the whole ring.
TEST(LaplacianSmooth, ShardKernelsMatchTheWholeRing) {
  static const auto shard_op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mlsgd::laplacian_smooth_shard", "")
          .typed<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, double, int64_t)>();
  for (auto dtype : {torch::kDouble, torch::kFloat}) {
    for (int64_t order : {1, 2}) {
      for (double sigma : {0.5, 4.0}) {
        const torch::Tensor ring = torch::randn({3001}, dtype);
        const torch::Tensor whole = laplacian_smooth(ring.to(torch::kDouble), sigma, order);
        const int64_t warmup = c10::Dispatcher::singleton()
                                   .findSchemaOrThrow("mlsgd::direct_warmup", "")
                                   .typed<int64_t(double, int64_t, c10::ScalarType)>()
                                   .call(sigma, order, dtype);
        const int64_t begin = 17;
        const int64_t end = 1900;  // halos reach past the ring's start: they wrap around
        const torch::Tensor doubled = torch::cat({ring, ring, ring});
        const torch::Tensor shard = ring.narrow(0, begin, end - begin);
        const torch::Tensor left = doubled.narrow(0, ring.numel() + begin - warmup, warmup);
        const torch::Tensor right = doubled.narrow(0, end, warmup);
        const torch::Tensor expected = whole.narrow(0, begin, end - begin);
        const torch::Tensor direct = shard_op.call(shard, left, right, sigma, order);
        // The device-independent kernel (from the whole-ring op), which the CPU's own hides.
        const auto by_ring_op = [&](const torch::Tensor& l) {
          return shard_op.redispatch(c10::DispatchKeySet(c10::DispatchKey::CompositeExplicitAutograd), shard, l, right,
                                     sigma, order);
        };
        const torch::Tensor by_ring = by_ring_op(left);
        EXPECT_LT(relative_error(direct.to(torch::kDouble), expected), tolerance(dtype)) << sigma << " " << order;
        EXPECT_LT(relative_error(by_ring.to(torch::kDouble), expected), tolerance(dtype)) << sigma << " " << order;
        EXPECT_THROW(by_ring_op(left.narrow(0, 1, warmup - 1)), std::exception);
      }
    }
  }
}

TEST(LaplacianSmooth, DispatcherOpsAreRegistered) {
  auto op = c10::Dispatcher::singleton().findSchema({"mlsgd::laplacian_smooth", ""});
  ASSERT_TRUE(op.has_value());
  EXPECT_TRUE(op->hasKernelForDispatchKey(c10::DispatchKey::CPU));
  EXPECT_TRUE(c10::Dispatcher::singleton().findSchema({"mlsgd::laplacian_smooth_", ""}).has_value());
}

}  // namespace

// smooth_grad_: each gradient its own ring, or all of them one ring; against
// the float64 FFT reference; bad values throw before anything changes.
TEST(SmoothGrad, SmoothsEveryGradientInPlace) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> params;
  for (int64_t n : {40, 7, 1}) {
    params.push_back(torch::randn({n, 3}, torch::kDouble).requires_grad_());
    params.back().mutable_grad() = torch::randn({n, 3}, torch::kDouble);
  }
  params.push_back(torch::randn({5}, torch::kDouble).requires_grad_());  // no gradient: skipped
  std::vector<torch::Tensor> before;
  for (size_t i = 0; i < 3; ++i) {
    before.push_back(params[i].grad().clone());
  }
  torch_mlsgd::smooth_grad_(params, 2.0, 2);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_LT(relative_error(params[i].grad(), fft_smooth(before[i], 2.0, 2)), 1e-12);
  }
  EXPECT_FALSE(params[3].grad().defined());

  for (size_t i = 0; i < 3; ++i) {
    params[i].mutable_grad() = before[i].clone();
  }
  torch_mlsgd::smooth_grad_(params, 1.5, 1, "group");
  std::vector<torch::Tensor> flat_before, flat_after;
  for (size_t i = 0; i < 3; ++i) {
    flat_before.push_back(before[i].reshape(-1));
    flat_after.push_back(params[i].grad().reshape(-1));
  }
  EXPECT_LT(relative_error(torch::cat(flat_after), fft_smooth(torch::cat(flat_before), 1.5, 1)), 1e-12);
}

TEST(SmoothGrad, BadValuesThrowAndChangeNothing) {
  auto p = torch::randn({6}, torch::kDouble).requires_grad_();
  auto q = torch::randn({6}).requires_grad_();
  p.mutable_grad() = torch::randn({6}, torch::kDouble);
  q.mutable_grad() = torch::randn({6});
  const auto p_grad = p.grad().clone();
  EXPECT_THROW(torch_mlsgd::smooth_grad_({p, q}, -1.0), c10::ValueError);
  EXPECT_THROW(torch_mlsgd::smooth_grad_({p, q}, 1.0, 0), c10::ValueError);
  EXPECT_THROW(torch_mlsgd::smooth_grad_({p, q}, 1.0, 1, "layer"), c10::ValueError);
  EXPECT_THROW(torch_mlsgd::smooth_grad_({p, q}, 1.0, 1, "group"), c10::ValueError);  // two dtypes
  auto r = torch::zeros({6}, torch::kDouble);
  r.mutable_grad() = torch::ones({6}, torch::kLong);
  EXPECT_THROW(torch_mlsgd::smooth_grad_({p, r}, 1.0), c10::TypeError);
  EXPECT_TRUE(torch::equal(p.grad(), p_grad));
}

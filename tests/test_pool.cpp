// Tests of mpx::Pool at 1 rank (in-process worker thread), 2 ranks (one worker) and 4 ranks
// (three workers). Every test creates its pool collectively; the body runs on the driver and
// the workers serve until the pool ends, so EXPECTs inside the body run on rank 0 only.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <mpx/mpx.hpp>

#include <atomic>
#include <boost/serialization/access.hpp>
#include <chrono>
#include <cmath>
#include <list>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

int function_square(int data) { return data * data; }
MPX_REGISTER(function_square);

int f_plus_ten(int x) { return x + 10; }
MPX_REGISTER(f_plus_ten);

int not_registered(int x) { return x; }

int my_rank(int) { return mpx::this_process().rank(); }
MPX_REGISTER(my_rank);

int slow_identity(int x) {
  std::this_thread::sleep_for(std::chrono::microseconds((x % 7) * 300));
  return x;
}
MPX_REGISTER(slow_identity);

int fails_on_13(int x) {
  if (x == 13) throw std::out_of_range("thirteen is unlucky");
  return x;
}
MPX_REGISTER(fails_on_13);

int fails_on_123456(int x) {
  if (x == 123456) throw std::runtime_error("bad item");
  return x;
}
MPX_REGISTER(fails_on_123456);

double half(int x) { return x / 2.0; }
MPX_REGISTER(half);

double sleep_for_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
MPX_REGISTER(sleep_for_ms);

double calc_partial_pi(int rank, int nproc, long long nsteps, double dx) {
  double partial = 0.0;
  for (long long i = rank; i < nsteps; i += nproc) {
    const double x = (static_cast<double>(i) + 0.5) * dx;
    partial += 4.0 / (1.0 + x * x);
  }
  return partial * dx;
}
MPX_REGISTER(calc_partial_pi);

int g_initialized = 0;
void init_worker(int value, std::string text) {
  g_initialized = value + static_cast<int>(text.size());
}
MPX_REGISTER(init_worker);
int read_initialized(int) { return g_initialized; }
MPX_REGISTER(read_initialized);

void failing_init() { throw std::runtime_error("no database here"); }

std::atomic<int> g_void_calls{0};
void count_call(int) { ++g_void_calls; }
MPX_REGISTER(count_call);

struct Scale {  // a function object with state, shipped with Boost.Serialization
  int factor = 1;
  std::string label;
  std::string operator()(int x) const { return label + std::to_string(x * factor); }
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& factor& label;
  }
};

struct Offset {  // trivially copyable state: shipped as raw bytes
  int add = 0;
  int operator()(int x) const { return x + add; }
};

struct ThrowsInt {
  int operator()(int) const { throw 42; }
};

std::string python_list(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

int world_size() { return mpx::Communicator::world().size(); }

}  // namespace

TEST(Pool, SeedSquaresExactOutput) {
  if (auto pool = mpx::Pool::serve()) {
    std::vector<int> inputs(100);
    std::iota(inputs.begin(), inputs.end(), 0);
    const auto out = pool.map(function_square, inputs);
    std::string expected = "[";
    for (int i = 0; i < 100; ++i) expected += (i ? ", " : "") + std::to_string(i * i);
    expected += "]";
    EXPECT_EQ(python_list(out), expected);
    EXPECT_EQ(python_list(out).substr(0, 17), "[0, 1, 4, 9, 16, ");
    EXPECT_EQ(out.back(), 9801);
  }
}

TEST(Pool, SeedPlusTenExactOutput) {
  if (auto pool = mpx::Pool::serve({.processes = 2})) {
    const auto out = pool.map(f_plus_ten, std::vector{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    EXPECT_EQ(python_list(out), "[11, 12, 13, 14, 15, 16, 17, 18, 19, 20]");
    EXPECT_EQ(pool.processes(), world_size() == 1 ? 1 : std::min(2, world_size() - 1));
    pool.close();
    pool.join();
  }
}

TEST(Pool, WorkersGetAnEmptyPoolAndEveryRankContinues) {
  int body_runs = 0;
  if (auto pool = mpx::Pool::serve()) {
    ++body_runs;
    EXPECT_EQ(mpx::Communicator::world().rank(), 0);
  }
  const auto all = mpx::Communicator::world().allgather(body_runs);
  EXPECT_EQ(std::accumulate(all.begin(), all.end(), 0), 1);
  mpx::Pool empty;
  EXPECT_FALSE(empty);
  EXPECT_THROW(empty.map(function_square, std::vector{1}), mpx::UsageError);
}

TEST(Pool, TasksRunOnWorkersNotOnTheDriver) {
  if (auto pool = mpx::Pool::serve()) {
    const auto ranks = pool.map(my_rank, std::views::iota(0, 50), {.chunksize = 1});
    ASSERT_EQ(ranks.size(), 50u);
    for (int r : ranks) {
      if (world_size() == 1)
        EXPECT_EQ(r, 0);
      else
        EXPECT_NE(r, 0);
    }
  }
}

TEST(Pool, MapKeepsInputOrderWithUnevenTasks) {
  if (auto pool = mpx::Pool::serve()) {
    const auto out = pool.map(slow_identity, std::views::iota(0, 60), {.chunksize = 3});
    std::vector<int> expected(60);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(out, expected);
  }
}

TEST(Pool, LoadIsBalancedAcrossWorkers) {
  if (world_size() < 3) GTEST_SKIP() << "needs two workers";
  if (auto pool = mpx::Pool::serve()) {
    // Slow tasks one per message: every worker must take some.
    auto ranks = pool.map(
        [](int x) {
          std::this_thread::sleep_for(std::chrono::milliseconds(x % 2 ? 5 : 1));
          return mpx::this_process().rank();
        },
        std::views::iota(0, 40), {.chunksize = 1});
    std::set<int> used(ranks.begin(), ranks.end());
    EXPECT_EQ(used.size(), static_cast<std::size_t>(world_size() - 1));
  }
}

TEST(Pool, EmptyInputs) {
  if (auto pool = mpx::Pool::serve()) {
    EXPECT_TRUE(pool.map(function_square, std::vector<int>{}).empty());
    EXPECT_TRUE(
        pool.starmap(calc_partial_pi, std::vector<std::tuple<int, int, long long, double>>{})
            .empty());
    int n = 0;
    for ([[maybe_unused]] int r : pool.imap(function_square, std::vector<int>{})) ++n;
    for ([[maybe_unused]] int r : pool.imap_unordered(function_square, std::vector<int>{})) ++n;
    EXPECT_EQ(n, 0);
    bool called = false;
    auto res = pool.map_async(function_square, std::vector<int>{}, {},
                              [&](const std::vector<int>& v) { called = v.empty(); });
    EXPECT_TRUE(res.get().empty());
    EXPECT_TRUE(called);
  }
}

TEST(Pool, MillionItemsWithAutomaticChunks) {
  if (auto pool = mpx::Pool::serve()) {
    auto out =
        pool.map([](int x) { return static_cast<long long>(x) * x; }, std::views::iota(0, 1000000));
    ASSERT_EQ(out.size(), 1000000u);
    EXPECT_EQ(out[0], 0);
    EXPECT_EQ(out[999999], 999999LL * 999999LL);
    bool ordered = true;
    for (std::size_t i = 0; i < out.size(); ++i)
      ordered = ordered && out[i] == static_cast<long long>(i) * static_cast<long long>(i);
    EXPECT_TRUE(ordered);
  }
}

TEST(Pool, StarmapComputesPiAsTheSeed) {
  if (auto pool = mpx::Pool::serve()) {
    const int nproc = 4;
    const long long nsteps = 100000;
    const double dx = 1.0 / static_cast<double>(nsteps);
    std::vector<std::tuple<int, int, long long, double>> inputs;
    for (int r = 0; r < nproc; ++r) inputs.emplace_back(r, nproc, nsteps, dx);
    const auto parts = pool.starmap(calc_partial_pi, inputs);
    ASSERT_EQ(parts.size(), 4u);
    for (int r = 0; r < nproc; ++r)
      EXPECT_DOUBLE_EQ(parts[static_cast<std::size_t>(r)], calc_partial_pi(r, nproc, nsteps, dx));
    EXPECT_NEAR(std::accumulate(parts.begin(), parts.end(), 0.0), M_PI, 1e-9);
    auto pairs = pool.starmap([](int a, std::string b) { return b + std::to_string(a); },
                              std::vector<std::pair<int, std::string>>{{1, "a"}, {2, "b"}});
    EXPECT_EQ(pairs, (std::vector<std::string>{"a1", "b2"}));
  }
}

TEST(Pool, ImapIsOrderedAndLazy) {
  if (auto pool = mpx::Pool::serve()) {
    int expected = 0;
    bool ordered = true;
    for (int r : pool.imap(slow_identity, std::views::iota(0, 200), {.chunksize = 4})) {
      ordered = ordered && r == expected;
      ++expected;
    }
    EXPECT_TRUE(ordered);
    EXPECT_EQ(expected, 200);
    // An endless input: only a bounded window is ever read.
    auto it = pool.imap(function_square, std::views::iota(0), {.chunksize = 10});
    for (int i = 0; i < 1000; ++i) {
      auto v = it.next(10s);
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(*v, i * i);
    }
  }
}

TEST(Pool, ImapLargeInputAutomaticChunks) {
  if (auto pool = mpx::Pool::serve()) {
    long long sum = 0;
    std::size_t n = 0;
    for (long long r :
         pool.imap([](int x) { return static_cast<long long>(x); }, std::views::iota(0, 300000))) {
      sum += r;
      ++n;
    }
    EXPECT_EQ(n, 300000u);
    EXPECT_EQ(sum, 299999LL * 300000LL / 2);
  }
}

TEST(Pool, ImapUnorderedGivesEveryResultOnce) {
  if (auto pool = mpx::Pool::serve()) {
    std::multiset<int> got;
    for (int r : pool.imap_unordered(slow_identity, std::views::iota(0, 100), {.chunksize = 1}))
      got.insert(r);
    std::multiset<int> expected;
    for (int i = 0; i < 100; ++i) expected.insert(i);
    EXPECT_EQ(got, expected);
  }
}

TEST(Pool, ApplyAndApplyAsyncWithCallbacks) {
  if (auto pool = mpx::Pool::serve()) {
    EXPECT_EQ(pool.apply(function_square, 20), 400);
    EXPECT_EQ(pool.apply([](int a, int b) { return a * b; }, 6, 7), 42);
    std::atomic<int> seen{0};
    auto res = pool.apply_async(function_square, std::tuple{20}, [&](int r) { seen = r; });
    EXPECT_EQ(res.get(10s), 400);
    EXPECT_EQ(seen.load(), 400);  // the callback ran before the result became ready
    EXPECT_TRUE(res.ready());
    EXPECT_TRUE(res.successful());
    EXPECT_EQ(res.get(), 400);  // get() may be called again

    std::vector<mpx::AsyncResult<int>> many;
    for (int i = 0; i < 4; ++i) many.push_back(pool.apply_async(my_rank, std::tuple{i}));
    for (auto& r : many) {
      if (world_size() > 1)
        EXPECT_NE(r.get(10s), 0);
      else
        EXPECT_EQ(r.get(10s), 0);
    }

    g_void_calls = 0;
    bool void_callback = false;
    auto v = pool.apply_async(count_call, std::tuple{1}, [&] { void_callback = true; });
    v.get();
    EXPECT_TRUE(void_callback);
    if (world_size() == 1) {
      EXPECT_EQ(g_void_calls.load(), 1);
    }

    std::vector<int> from_callback;
    auto m = pool.map_async(f_plus_ten, std::vector{1, 2, 3}, {},
                            [&](const std::vector<int>& out) { from_callback = out; });
    m.wait();
    EXPECT_EQ(from_callback, (std::vector{11, 12, 13}));
    EXPECT_EQ(m.get(), (std::vector{11, 12, 13}));
    auto s = pool.starmap_async([](int a, int b) { return a - b; },
                                std::vector{std::pair{5, 1}, std::pair{9, 2}});
    EXPECT_EQ(s.get(), (std::vector{4, 7}));
  }
}

TEST(Pool, TaskExceptionBecomesRemoteErrorAndPoolStaysUsable) {
  if (auto pool = mpx::Pool::serve()) {
    try {
      pool.map(fails_on_13, std::views::iota(0, 30), {.chunksize = 2});
      ADD_FAILURE() << "map did not throw";
    } catch (const mpx::RemoteError& e) {
      EXPECT_EQ(e.type(), "std::out_of_range");
      EXPECT_EQ(e.message(), "thirteen is unlucky");
      if (world_size() > 1)
        EXPECT_NE(e.rank(), 0);
      else
        EXPECT_EQ(e.rank(), 0);
      EXPECT_NE(std::string(e.what()).find("thirteen is unlucky"), std::string::npos);
    }
    std::string error_seen;
    auto res = pool.apply_async(fails_on_13, std::tuple{13}, nullptr,
                                [&](const mpx::Error& e) { error_seen = e.what(); });
    EXPECT_THROW(res.get(), mpx::RemoteError);
    EXPECT_TRUE(res.ready());
    EXPECT_FALSE(res.successful());
    EXPECT_NE(error_seen.find("std::out_of_range"), std::string::npos);
    try {
      pool.apply(ThrowsInt{}, 1);
      ADD_FAILURE() << "apply did not throw";
    } catch (const mpx::RemoteError& e) {
      EXPECT_EQ(e.type(), "int");
    }
    // Still usable.
    EXPECT_EQ(pool.map(function_square, std::vector{1, 2, 3}), (std::vector{1, 4, 9}));
  }
}

TEST(Pool, ImapRaisesAtTheFailedItemAndContinues) {
  if (auto pool = mpx::Pool::serve()) {
    auto it = pool.imap(fails_on_13, std::views::iota(10, 17), {.chunksize = 1});
    std::vector<int> got;
    int errors = 0;
    for (;;) {
      try {
        auto v = it.next();
        if (!v) break;
        got.push_back(*v);
      } catch (const mpx::RemoteError& e) {
        ++errors;
        EXPECT_EQ(got.size(), 3u);  // raised in position, after 10, 11, 12
      }
    }
    EXPECT_EQ(errors, 1);
    EXPECT_EQ(got, (std::vector{10, 11, 12, 14, 15, 16}));
  }
}

TEST(Pool, GetWithTimeout) {
  if (auto pool = mpx::Pool::serve()) {
    auto res = pool.apply_async(sleep_for_ms, std::tuple{400});
    EXPECT_THROW(res.get(50ms), mpx::TimeoutError);
    EXPECT_FALSE(res.wait(10ms));
    EXPECT_FALSE(res.ready());
    EXPECT_THROW((void)res.successful(), mpx::UsageError);
    EXPECT_THROW(res.get(-1ms), mpx::UsageError);
    EXPECT_DOUBLE_EQ(res.get(10s), 400.0);  // the pool remains available
    EXPECT_TRUE(res.successful());
    auto it = pool.imap(sleep_for_ms, std::vector{300});
    EXPECT_THROW(it.next(20ms), mpx::TimeoutError);
    EXPECT_EQ(it.next(10s), std::optional<double>(300.0));
    EXPECT_EQ(it.next(), std::nullopt);
  }
}

TEST(Pool, MisuseIsAClearError) {
  if (auto pool = mpx::Pool::serve()) {
    EXPECT_THROW(pool.join(), mpx::UsageError);  // join before close
    try {
      pool.map(not_registered, std::vector{1});
      ADD_FAILURE() << "an unregistered function was accepted";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("MPX_REGISTER"), std::string::npos);
    }
    pool.close();
    pool.close();
    try {
      pool.map(function_square, std::vector{1});
      ADD_FAILURE() << "map after close was accepted";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos);
    }
    EXPECT_THROW(pool.apply_async(function_square, std::tuple{1}), mpx::UsageError);
    pool.join();
    EXPECT_THROW(pool.map(function_square, std::vector{1}), mpx::UsageError);
  }
}

TEST(Pool, TerminateFailsPendingResults) {
  if (auto pool = mpx::Pool::serve()) {
    std::vector<mpx::AsyncResult<double>> pending;
    for (int i = 0; i < 8; ++i) pending.push_back(pool.apply_async(sleep_for_ms, std::tuple{100}));
    pool.terminate();
    int closed = 0;
    for (auto& r : pending) {
      try {
        r.get(5s);
      } catch (const mpx::ClosedError&) {
        ++closed;
      }
    }
    EXPECT_GT(closed, 0);
    EXPECT_THROW(pool.map(function_square, std::vector{1}), mpx::UsageError);
  }
}

TEST(Pool, DestructorTerminatesLikeWithBlock) {
  mpx::AsyncResult<double> leftover;
  if (auto pool = mpx::Pool::serve()) {
    leftover = pool.apply_async(sleep_for_ms, std::tuple{200});
    for (int i = 0; i < 6; ++i) (void)pool.apply_async(sleep_for_ms, std::tuple{200});
  }
  if (leftover.valid()) {
    EXPECT_TRUE(leftover.ready());
  }
}

TEST(Pool, InitializerRunsOnEveryWorkerWithDriverArguments) {
  const int rank = mpx::Communicator::world().rank();
  // Only the driver's arguments count: other ranks pass different ones.
  if (auto pool =
          mpx::Pool::serve({}, init_worker, std::tuple{rank == 0 ? 40 : -1, std::string("ab")})) {
    const auto out = pool.map(read_initialized, std::views::iota(0, 20), {.chunksize = 1});
    for (int v : out) EXPECT_EQ(v, 42);
  }
}

TEST(Pool, InitializerFailureFailsServeOnEveryRank) {
  try {
    auto pool = mpx::Pool::serve({}, failing_init, std::tuple<>{});
    ADD_FAILURE() << "serve did not throw";
  } catch (const mpx::RemoteError& e) {
    EXPECT_EQ(e.type(), "std::runtime_error");
    EXPECT_NE(e.message().find("no database here"), std::string::npos);
  }
}

TEST(Pool, OptionsMustAgreeOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  const int rank = mpx::Communicator::world().rank();
  EXPECT_THROW(mpx::Pool::serve({.processes = rank == 0 ? 1 : 0}), mpx::UsageError);
  EXPECT_THROW(mpx::Pool::serve({.driver = world_size()}), mpx::UsageError);
}

TEST(Pool, AnotherDriverRank) {
  const int last = world_size() - 1;
  if (auto pool = mpx::Pool::serve({.driver = last})) {
    EXPECT_EQ(mpx::Communicator::world().rank(), last);
    EXPECT_EQ(pool.map(function_square, std::vector{3, 4}), (std::vector{9, 16}));
  }
}

TEST(Pool, FunctionObjectsLambdasAndStrings) {
  if (auto pool = mpx::Pool::serve()) {
    EXPECT_EQ(pool.map(Scale{3, "x="}, std::vector{1, 2}),
              (std::vector<std::string>{"x=3", "x=6"}));
    EXPECT_EQ(pool.map(Offset{100}, std::vector{1, 2}), (std::vector{101, 102}));
    EXPECT_EQ(pool.map([](const std::string& s) { return s.size(); },
                       std::vector<std::string>{"a", "bcd", ""}),
              (std::vector<std::size_t>{1, 3, 0}));
    EXPECT_EQ(pool.map([](auto x) { return x * 2; }, std::vector{1.5, 2.5}),
              (std::vector{3.0, 5.0}));
    // Two lambdas with the same signature in one function are different tasks.
    EXPECT_EQ(pool.map([](int x) { return x + 1; }, std::vector{1}), std::vector{2});
    EXPECT_EQ(pool.map([](int x) { return x - 1; }, std::vector{1}), std::vector{0});
    EXPECT_EQ(pool.map([](std::vector<int> v) { return std::accumulate(v.begin(), v.end(), 0); },
                       std::vector<std::vector<int>>{{1, 2}, {3, 4, 5}}),
              (std::vector{3, 12}));
  }
}

TEST(Pool, ProgressBarOnStderr) {
  const bool driver = mpx::Communicator::world().rank() == 0;
  if (driver) testing::internal::CaptureStderr();
  if (auto pool = mpx::Pool::serve()) {
    auto out = pool.map(slow_identity, std::views::iota(0, 40), {.chunksize = 2, .progress = true});
    EXPECT_EQ(out.size(), 40u);
  }
  if (driver) {
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("100%"), std::string::npos) << err;
    EXPECT_NE(err.find("40/40"), std::string::npos) << err;
  }
}

// Waiting costs no core: the driver waiting in get() (with its progress thread), the worker
// running a sleeping task and idle workers each use well under 10% of a core.
TEST(Pool, WaitingCostsNoCore) {
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  if (auto pool = mpx::Pool::serve()) {
    pool.apply_async(sleep_for_ms, std::tuple{1500}).get();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double used = cpu_seconds() - c0;
  EXPECT_GT(wall, 1.4);
  EXPECT_LT(used / wall, 0.10) << "rank " << mpx::Communicator::world().rank() << " used " << used
                               << " s of CPU in " << wall << " s";
}

TEST(Pool, SeveralPoolsOneAfterAnother) {
  for (int round = 0; round < 3; ++round) {
    if (auto pool = mpx::Pool::serve()) {
      EXPECT_EQ(pool.apply(f_plus_ten, round), round + 10);
      pool.close();
      pool.join();
    }
  }
}

// ---- chunks too long for one message: sent from the caller's input, received in place ------

TEST(Pool, LongChunksOfPlainDataGoStraightFromInputToOutput) {
  if (auto pool = mpx::Pool::serve()) {
    std::vector<int> in(300000);
    std::iota(in.begin(), in.end(), 0);
    // int -> double: results twice as long as the items
    const auto out = pool.map(half, in, {.chunksize = 40000});
    ASSERT_EQ(out.size(), in.size());
    bool right = true;
    for (std::size_t i = 0; i < out.size(); ++i)
      right = right && out[i] == static_cast<double>(i) / 2.0;
    EXPECT_TRUE(right);
    // Chunk sizes around the longest message that travels whole, and a lambda.
    const auto first = std::span<const int>(in).first(20000);
    for (std::size_t chunk : {1000u, 1009u, 1010u, 1011u, 3000u}) {
      const auto squares = pool.map(function_square, first, {.chunksize = chunk});
      const auto plus = pool.map([](int x) { return x + 1; }, first, {.chunksize = chunk});
      ASSERT_EQ(squares.size(), first.size());
      ASSERT_EQ(plus.size(), first.size());
      bool ok = true;
      for (std::size_t i = 0; i < first.size(); ++i)
        ok = ok && squares[i] == first[i] * first[i] && plus[i] == first[i] + 1;
      EXPECT_TRUE(ok) << "chunksize " << chunk;
    }
  }
}

TEST(Pool, LongChunkThatThrowsFailsTheMapAndThePoolStaysUsable) {
  if (auto pool = mpx::Pool::serve()) {
    for (int round = 0; round < 2; ++round) {
      std::vector<int> in(400000);
      std::iota(in.begin(), in.end(), 0);
      try {
        pool.map(fails_on_123456, in, {.chunksize = 50000});
        ADD_FAILURE() << "map did not throw";
      } catch (const mpx::RemoteError& e) {
        EXPECT_EQ(e.type(), "std::runtime_error");
        EXPECT_EQ(e.message(), "bad item");
      }
      in.assign(in.size(), 3);  // the caller may reuse (or free) its input at once
      auto r = pool.map_async(fails_on_123456, std::views::iota(0, 400000), {.chunksize = 30000});
      EXPECT_THROW(r.get(), mpx::RemoteError);
    }
    EXPECT_EQ(pool.map(function_square, std::vector{1, 2, 3}), (std::vector{1, 4, 9}));
  }
}

TEST(Pool, LongChunksOfStringsPairsAndNonContiguousInputs) {
  if (auto pool = mpx::Pool::serve()) {
    std::list<std::string> words;  // neither contiguous nor plain data
    for (int i = 0; i < 20000; ++i) words.push_back("word" + std::to_string(i));
    const auto out =
        pool.map([](const std::string& s) { return s + "!"; }, words, {.chunksize = 5000});
    ASSERT_EQ(out.size(), words.size());
    bool right = true;
    std::size_t i = 0;
    for (const auto& w : words) right = right && out[i++] == w + "!";
    EXPECT_TRUE(right);
    // A filtered view: an input range of unknown size.
    const auto evens =
        pool.map(function_square,
                 std::views::iota(0, 40000) | std::views::filter([](int x) { return x % 2 == 0; }),
                 {.chunksize = 7000});
    ASSERT_EQ(evens.size(), 20000u);
    right = true;
    for (std::size_t k = 0; k < evens.size(); ++k)
      right = right && evens[k] == static_cast<int>(4 * k * k);
    EXPECT_TRUE(right);
    // starmap of pairs (not plain data) in long chunks
    std::vector<std::pair<int, int>> pairs;
    for (int k = 0; k < 30000; ++k) pairs.emplace_back(k, 2 * k);
    const auto sums = pool.starmap([](int a, int b) { return a + b; }, pairs, {.chunksize = 6000});
    ASSERT_EQ(sums.size(), pairs.size());
    right = true;
    for (std::size_t k = 0; k < sums.size(); ++k)
      right = right && sums[k] == 3 * static_cast<int>(k);
    EXPECT_TRUE(right);
    // imap of long strings in long chunks, in order
    std::size_t n = 0;
    right = true;
    for (const std::string& s :
         pool.imap([](int x) { return std::string(100, static_cast<char>('a' + x % 26)); },
                   std::views::iota(0, 3000), {.chunksize = 500})) {
      right = right && s == std::string(100, static_cast<char>('a' + n % 26));
      ++n;
    }
    EXPECT_TRUE(right);
    EXPECT_EQ(n, 3000u);
  }
}

TEST(Pool, TerminateWithLongChunksInFlight) {
  if (auto pool = mpx::Pool::serve()) {
    auto pending = pool.map_async(
        [](int x) {
          if (x % 20000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));
          return x;
        },
        std::views::iota(0, 400000), {.chunksize = 20000});
    pool.terminate();
    EXPECT_THROW(pending.get(30s), mpx::ClosedError);
    EXPECT_THROW(pool.map(function_square, std::vector{1}), mpx::UsageError);
  }
}

TEST(Pool, IotaInputsAreReadChunkByChunk) {
  if (auto pool = mpx::Pool::serve()) {
    // As Python's range: never copied whole; any start, other integer types, empty, async.
    const auto out = pool.map(f_plus_ten, std::views::iota(5, 200005), {.chunksize = 30000});
    ASSERT_EQ(out.size(), 200000u);
    bool right = true;
    for (std::size_t i = 0; i < out.size(); ++i)
      right = right && out[i] == static_cast<int>(i) + 15;
    EXPECT_TRUE(right);
    const auto wide = pool.map([](long long x) { return x * 3; },
                               std::views::iota(4'000'000'000LL, 4'000'010'000LL));
    ASSERT_EQ(wide.size(), 10000u);
    EXPECT_EQ(wide.front(), 12'000'000'000LL);
    EXPECT_EQ(wide.back(), 3 * 4'000'009'999LL);
    EXPECT_TRUE(pool.map(function_square, std::views::iota(7, 7)).empty());
    auto later = pool.map_async(function_square, std::views::iota(0, 1000), {.chunksize = 7});
    const auto squares = later.get();
    ASSERT_EQ(squares.size(), 1000u);
    EXPECT_EQ(squares[999], 999 * 999);
  }
}

TEST(Pool, PredicatesReturnBool) {
  if (auto pool = mpx::Pool::serve()) {
    // Results of type bool (std::vector<bool> has no data(): they take the element-wise path).
    const auto even = pool.map([](int x) { return x % 2 == 0; }, std::vector{1, 2, 3, 4});
    EXPECT_EQ(even, (std::vector<bool>{false, true, false, true}));
    std::vector<int> in(20000);
    std::iota(in.begin(), in.end(), 0);
    const auto big = pool.map([](int x) { return x % 3 == 0; }, in, {.chunksize = 5000});
    ASSERT_EQ(big.size(), in.size());
    bool right = true;
    for (std::size_t i = 0; i < big.size(); ++i) right = right && big[i] == (i % 3 == 0);
    EXPECT_TRUE(right);
    const auto words = pool.map([](const std::string& s) { return s.size() > 3; },
                                std::vector<std::string>{"a", "abcd", "xyz", "hello"});
    EXPECT_EQ(words, (std::vector<bool>{false, true, false, true}));
    EXPECT_TRUE(pool.apply([](int x) { return x > 1; }, 2));
    std::size_t n = 0;
    for (bool b : pool.imap([](int x) { return x % 2 == 1; }, std::views::iota(0, 100)))
      right = right && b == (n++ % 2 == 1);
    EXPECT_TRUE(right);
    EXPECT_EQ(n, 100u);
  }
}

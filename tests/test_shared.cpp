// Value and Array: atomics exact under contention, compare-exchange loops, slices, the lock,
// initial values, misuse. Registered twice: on one node (shared memory) and with
// MPX_NO_SHARED_MEMORY=1 (the cross-node path: rank 0 hosts the state and serves requests).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <mpx/mpx.hpp>
#include <mpx/shared.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int size() { return world().size(); }

bool served() { return mpx::detail::SharedSegment::disabled_by_environment(); }

// True when every rank runs on this node (collective the first time: every rank calls it
// from the first test).
bool one_node() {
  static const bool all_here = [] {
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int n = 0;
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
    return world().allreduce(n == world().size() ? 1 : 0, mpx::minimum{}) == 1;
  }();
  return all_here;
}

// Where Value and Array keep their state: node-shared memory unless the ranks span nodes or
// MPX_NO_SHARED_MEMORY=1 forces the cross-node path.
bool shared_memory() { return one_node() && !served(); }

// The served path is a message round trip per operation (on two oversubscribed cores, or
// over TCP between hosts): it runs fewer iterations. The count is what the tests check, not
// the speed: 4 x 100,000 in shared memory, 4 x 25,000 served on one node, 2,000 per rank served
// across nodes.
int iterations() { return shared_memory() ? 100000 : one_node() ? 25000 : 2000; }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

TEST(Value, PlacementFollowsTheEnvironment) {
  const bool expected = shared_memory();
  mpx::Value<int> v(0);
  EXPECT_EQ(v.uses_shared_memory(), expected);
  EXPECT_EQ(v.name().rfind("Value#", 0), 0u) << v.name();
  world().barrier();
}

TEST(Value, InitialValueAndLoadStore) {
  mpx::Value<int> v(100);
  EXPECT_EQ(v.load(), 100);
  EXPECT_EQ(v.value(), 100);
  world().barrier();
  if (rank() == size() - 1) v.store(7);
  world().barrier();
  EXPECT_EQ(v.load(), 7);
  EXPECT_EQ(static_cast<int>(v), 7);
  world().barrier();
  if (rank() == 0) v = 8;
  world().barrier();
  EXPECT_EQ(v.value(), 8);
  world().barrier();
}

TEST(Value, RankZerosInitialValueWins) {
  mpx::Value<double> v(rank() == 0 ? 2.5 : -1.0);
  EXPECT_EQ(v.load(), 2.5);
  world().barrier();
}

TEST(Value, FetchAddIsExactUnderContention) {
  mpx::Value<long long> v(0);
  const int n = iterations();
  long long mine = 0;
  for (int i = 0; i < n; ++i) mine += v.fetch_add(1) >= 0 ? 1 : 0;
  EXPECT_EQ(mine, n);
  world().barrier();
  EXPECT_EQ(v.load(), static_cast<long long>(n) * size());
  world().barrier();
}

TEST(Value, FetchAddReturnsDistinctTickets) {
  // Every previous value is handed out exactly once: the tickets of all ranks form 0..N-1.
  mpx::Value<int> v(0);
  const int n = 1000;
  std::vector<int> tickets;
  for (int i = 0; i < n; ++i) tickets.push_back(v.fetch_add(1));
  const auto all = world().allgatherv(std::span<const int>(tickets));
  std::vector<int> seen(all.size(), 0);
  for (int t : all) {
    ASSERT_GE(t, 0);
    ASSERT_LT(static_cast<std::size_t>(t), seen.size());
    ++seen[static_cast<std::size_t>(t)];
  }
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "ticket " << i;
  world().barrier();
}

TEST(Value, FloatingFetchAddAndSub) {
  mpx::Value<double> v(0.0);
  const int n = iterations() / 10;
  for (int i = 0; i < n; ++i) v.fetch_add(1.0);
  for (int i = 0; i < n / 2; ++i) v.fetch_sub(1.0);
  world().barrier();
  EXPECT_EQ(v.load(), static_cast<double>((n - n / 2) * size()));
  world().barrier();
}

TEST(Value, CompareExchangeLoop) {
  mpx::Value<int> v(0);
  const int n = iterations() / 10;
  int failures = 0;
  for (int i = 0; i < n; ++i) {
    int expected = v.load();
    while (!v.compare_exchange(expected, expected + 1)) ++failures;  // expected was refreshed
  }
  world().barrier();
  EXPECT_EQ(v.load(), n * size());
  (void)failures;
  world().barrier();
}

TEST(Value, CompareExchangeReportsTheCurrentValue) {
  mpx::Value<int> v(5);
  if (rank() == 0) {
    int expected = 4;
    EXPECT_FALSE(v.compare_exchange(expected, 9));
    EXPECT_EQ(expected, 5);
    EXPECT_TRUE(v.compare_exchange(expected, 9));
    EXPECT_EQ(v.load(), 9);
    EXPECT_EQ(v.exchange(11), 9);
  }
  world().barrier();
  EXPECT_EQ(v.load(), 11);
  world().barrier();
}

struct Point {
  int x;
  int y;
};

TEST(Value, PlainStructs) {
  mpx::Value<Point> p(Point{1, 2});
  EXPECT_EQ(p.load().x, 1);
  EXPECT_EQ(p.load().y, 2);
  world().barrier();
  // Each rank moves the point by (1, 2) with a CAS loop: both fields change together.
  for (int i = 0; i < 100; ++i) {
    Point expected = p.load();
    while (!p.compare_exchange(expected, Point{expected.x + 1, expected.y + 2})) {
    }
  }
  world().barrier();
  const Point end = p.load();
  EXPECT_EQ(end.x, 1 + 100 * size());
  EXPECT_EQ(end.y, 2 + 200 * size());
  world().barrier();
}

TEST(Value, LargerPlainTypesLoadAndStore) {
  // Not lock-free: load/store are plain copies (no fetch_add or compare_exchange).
  using Quad = std::array<int, 4>;
  mpx::Value<Quad> q(Quad{1, 2, 3, 4});
  EXPECT_EQ(q.load(), (Quad{1, 2, 3, 4}));
  world().barrier();
  if (rank() == size() - 1) q.store(Quad{5, 6, 7, 8});
  world().barrier();
  EXPECT_EQ(q.load(), (Quad{5, 6, 7, 8}));
  mpx::Array<std::array<double, 3>> a(2);
  if (rank() == 0) a[1] = std::array<double, 3>{0.5, 1.5, 2.5};
  world().barrier();
  EXPECT_EQ(a.load(1)[2], 2.5);
  EXPECT_EQ(a.load(0)[0], 0.0);
  world().barrier();
}

TEST(Value, ThreadsOfOneRankShareIt) {
  mpx::Value<int> v(0);
  const int n = shared_memory() ? 20000 : 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < n; ++i) v.fetch_add(1);
    });
  for (auto& t : threads) t.join();
  world().barrier();
  EXPECT_EQ(v.load(), 2 * n * size());
  world().barrier();
}

TEST(Value, LockGuardsReadModifyWrite) {
  // Python's pattern: with v.get_lock(): v.value += 1
  mpx::Value<int> v(0);
  const int n = shared_memory() ? 2000 : 300;
  for (int i = 0; i < n; ++i) {
    std::lock_guard guard(v.get_lock());
    v.store(v.load() + 1);
  }
  world().barrier();
  EXPECT_EQ(v.load(), n * size());
  world().barrier();
}

TEST(Value, WithoutLockOptionGetLockIsAClearError) {
  mpx::Value<int> v(0, mpx::SharedOptions{.lock = false});
  try {
    (void)v.get_lock();
    ADD_FAILURE() << "get_lock on a lock-less Value must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "lock = false")) << e.what();
  }
  world().barrier();
}

TEST(Value, MismatchedTypesFailOnEveryRank) {
  if (size() < 2) GTEST_SKIP();
  bool threw = false;
  try {
    if (rank() == 0) {
      mpx::Value<int> v(0);
    } else {
      mpx::Value<float> v(0.0f);
    }
  } catch (const mpx::UsageError& e) {
    threw = true;
    EXPECT_TRUE(contains(e.what(), "element type")) << e.what();
  }
  EXPECT_TRUE(threw);
  world().barrier();
}

TEST(Value, MismatchedOptionsFailOnEveryRank) {
  if (size() < 2) GTEST_SKIP();
  EXPECT_THROW(mpx::Value<int> v(0, mpx::SharedOptions{.lock = rank() == 0}), mpx::UsageError);
  world().barrier();
}

TEST(Value, WaitingForItsLockCostsNoCore) {
  // Rank 0 holds the value's lock for 5 s; the others wait in acquire meanwhile.
  mpx::Value<int> v(0);
  if (rank() == 0) v.get_lock().acquire();
  world().barrier();
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  if (rank() == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    v.store(1);
    v.get_lock().release();
  } else {
    std::lock_guard guard(v.get_lock());
    EXPECT_EQ(v.load(), 1);
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  EXPECT_GE(wall, 4.5);
  EXPECT_LT(cpu, 0.1 * wall) << "rank " << rank() << " used " << cpu << " s of CPU in " << wall
                             << " s";
  world().barrier();
}

// ---- Array ---------------------------------------------------------------------------------

TEST(Array, ZeroInitialisedAndSized) {
  mpx::Array<float> a(8);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(a.slice(), std::vector<float>(8, 0.0f));
  EXPECT_EQ(a.name().rfind("Array#", 0), 0u) << a.name();
  world().barrier();
}

TEST(Array, InitialValuesFromRankZero) {
  mpx::Array<int> a({1, 2, 3, 4});
  EXPECT_EQ(a.slice(), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(a.slice(1, 3), (std::vector<int>{2, 3}));
  EXPECT_EQ(a.slice(2, 2), std::vector<int>{});
  const auto& ca = a;
  EXPECT_EQ(ca[3], 4);
  world().barrier();
}

TEST(Array, ElementsWrittenByOneRankSeenByAll) {
  // Python: result[idx] = num + 2, then print(result[:])
  const std::vector<float> nums{1, 2, 3, 4, 5, 6.4f, 6.8f, 5.3f};
  mpx::Array<float> result(nums.size());
  if (rank() == size() - 1)
    for (std::size_t i = 0; i < nums.size(); ++i) result[i] = nums[i] + 2;
  world().barrier();
  const auto got = result.slice();
  for (std::size_t i = 0; i < nums.size(); ++i) EXPECT_EQ(got[i], nums[i] + 2) << i;
  float x = result[5];
  EXPECT_EQ(x, 6.4f + 2);
  world().barrier();
}

TEST(Array, AssignSlices) {
  mpx::Array<int> a(6);
  if (rank() == 0) {
    a.assign(2, {7, 8});
    EXPECT_EQ(a.slice(), (std::vector<int>{0, 0, 7, 8, 0, 0}));
    a.assign(std::vector<int>{1, 2, 3, 4, 5, 6});
  }
  world().barrier();
  EXPECT_EQ(a.slice(), (std::vector<int>{1, 2, 3, 4, 5, 6}));
  world().barrier();
}

TEST(Array, FetchAddOnEveryElementIsExact) {
  mpx::Array<long> a(4);
  const int n = iterations() / 4;
  for (int i = 0; i < n; ++i)
    for (std::size_t k = 0; k < a.size(); ++k) a.fetch_add(k, static_cast<long>(k + 1));
  world().barrier();
  for (std::size_t k = 0; k < a.size(); ++k)
    EXPECT_EQ(a.load(k), static_cast<long>(k + 1) * n * size()) << "element " << k;
  world().barrier();
}

TEST(Array, ElementHandleAtomics) {
  mpx::Array<int> a(3);
  for (int i = 0; i < 500; ++i) {
    a[1].fetch_add(2);
    int expected = a[2];
    while (!a[2].compare_exchange(expected, expected + 1)) {
    }
  }
  world().barrier();
  EXPECT_EQ(a.load(0), 0);
  EXPECT_EQ(a.load(1), 1000 * size());
  EXPECT_EQ(a.load(2), 500 * size());
  world().barrier();
}

TEST(Array, WholeSlicesAreConsistentUnderTheLock) {
  // Writers replace the whole array with one repeated number under the lock; readers, also
  // under the lock, must never see a mix.
  mpx::Array<int> a(16);
  const int rounds = shared_memory() ? 400 : 50;
  int torn = 0;
  for (int i = 0; i < rounds; ++i) {
    if ((i + rank()) % 2 == 0) {
      std::lock_guard guard(a.get_lock());
      a.assign(std::vector<int>(16, rank() * 100000 + i));
    } else {
      std::lock_guard guard(a.get_lock());
      const auto s = a.slice();
      for (int x : s) torn += x != s[0] ? 1 : 0;
    }
  }
  EXPECT_EQ(torn, 0);
  world().barrier();
}

TEST(Array, IndexOutOfRangeIsAClearError) {
  mpx::Array<int> a(3);
  try {
    (void)a.load(3);
    ADD_FAILURE() << "load(3) of a 3-element array must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "index 3 is out of range")) << e.what();
    EXPECT_TRUE(contains(e.what(), a.name())) << e.what();
  }
  EXPECT_THROW(a[7] = 1, mpx::UsageError);
  EXPECT_THROW(a.fetch_add(3, 1), mpx::UsageError);
  EXPECT_THROW((void)a.slice(2, 4), mpx::UsageError);
  EXPECT_THROW((void)a.slice(2, 1), mpx::UsageError);
  EXPECT_THROW(a.assign(2, {1, 2}), mpx::UsageError);
  try {
    a.assign(std::vector<int>{1, 2});
    ADD_FAILURE() << "assigning 2 values to 3 elements must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "pass exactly size() values")) << e.what();
  }
  world().barrier();
  EXPECT_EQ(a.slice(), (std::vector<int>{0, 0, 0}));  // nothing was written
  world().barrier();
}

TEST(Array, MismatchedLengthsFailOnEveryRank) {
  if (size() < 2) GTEST_SKIP();
  try {
    mpx::Array<int> a(rank() == 0 ? 4 : 5);
    ADD_FAILURE() << "different lengths must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "disagree on the length")) << e.what();
  }
  // A Value on some ranks and an Array on others.
  EXPECT_THROW(
      {
        if (rank() == 0) {
          mpx::Value<int> v(0);
        } else {
          mpx::Array<int> a(1);
        }
      },
      mpx::UsageError);
  // The objects created next still work.
  mpx::Array<int> ok(2);
  ok.fetch_add(1, 1);
  world().barrier();
  EXPECT_EQ(ok.load(1), size());
  world().barrier();
}

TEST(Array, EmptyArray) {
  mpx::Array<double> a(0);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_TRUE(a.slice().empty());
  EXPECT_THROW((void)a.load(0), mpx::UsageError);
  world().barrier();
}

TEST(Array, ServesItsHostWhileTheHostComputes) {
  // The host's main thread is busy (not calling mpx); its progress thread still answers.
  mpx::Array<int> a(2);
  if (rank() == 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    volatile unsigned long spin = 0;
    while (std::chrono::steady_clock::now() < end) spin = spin + 1;
  } else {
    for (int i = 0; i < 100; ++i) a.fetch_add(0, 1);
  }
  world().barrier();
  EXPECT_EQ(a.load(0), 100 * (size() - 1));
  world().barrier();
}

}  // namespace

// List (Manager().list()): concurrent appends, atomic extend, pop hands each element to one
// rank, indexing and IndexError, misuse. Hosted on rank 0 and served by its progress thread.
#include <gtest/gtest.h>
#include <mpx/list.hpp>
#include <mpx/mpx.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int size() { return world().size(); }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(List, SeedNamespaceListExample) {
  // Seed 004: a worker appends nums + 2 to a managed list; the main process prints it.
  mpx::List<double> result;
  const std::vector<double> nums{1, 2, 3, 4, 5, 6.4, 6.8, 5.3};
  if (rank() == size() - 1)
    for (double n : nums) result.append(n + 2);
  world().barrier();
  EXPECT_EQ(result.values(), (std::vector<double>{3, 4, 5, 6, 7, 8.4, 8.8, 7.3}));
  EXPECT_EQ(result.size(), 8u);
  EXPECT_EQ(result.name().rfind("List#", 0), 0u) << result.name();
  world().barrier();
}

TEST(List, ConcurrentAppendsAreAllKept) {
  mpx::List<int> l;
  const int n = 300;
  for (int i = 0; i < n; ++i) l.append(rank() * n + i);
  world().barrier();
  auto all = l.values();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(n * size()));
  // Each rank's appends keep their order; together they are every number once.
  for (int r = 0; r < size(); ++r) {
    std::vector<int> mine;
    for (int v : all)
      if (v / n == r) mine.push_back(v);
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end())) << "rank " << r;
  }
  std::sort(all.begin(), all.end());
  for (int i = 0; i < n * size(); ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)], i);
  world().barrier();
}

TEST(List, ExtendIsAtomic) {
  mpx::List<int> l;
  for (int round = 0; round < 20; ++round) l.extend({rank(), rank(), rank(), rank()});
  world().barrier();
  const auto all = l.values();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(80 * size()));
  for (std::size_t i = 0; i < all.size(); i += 4)
    for (std::size_t k = 1; k < 4; ++k) EXPECT_EQ(all[i + k], all[i]) << "block at " << i;
  world().barrier();
}

TEST(List, PopHandsEachElementToOneRank) {
  mpx::List<int> l;
  if (rank() == 0) {
    std::vector<int> work(400);
    for (int i = 0; i < 400; ++i) work[static_cast<std::size_t>(i)] = i;
    l.extend(work);
  }
  world().barrier();
  long long sum = 0;
  int taken = 0;
  while (auto v = (rank() % 2 == 0 ? l.pop() : l.pop(0))) {
    sum += *v;
    ++taken;
  }
  EXPECT_EQ(world().allreduce(taken, std::plus<>{}), 400);
  EXPECT_EQ(world().allreduce(sum, std::plus<>{}), 399LL * 400 / 2);
  EXPECT_TRUE(l.empty());
  world().barrier();
}

TEST(List, IndexingAndIndexError) {
  mpx::List<std::string> l;
  if (rank() == 0) {
    l.extend({"a", "b", "c"});
    EXPECT_EQ(l.at(1), "b");
    EXPECT_EQ(l.get(2), std::optional<std::string>("c"));
    EXPECT_EQ(l.get(3), std::nullopt);
    l.set(1, "B");
    EXPECT_EQ(l.at(1), "B");
    EXPECT_EQ(l.pop(0), std::optional<std::string>("a"));
    EXPECT_EQ(l.values(), (std::vector<std::string>{"B", "c"}));
  }
  world().barrier();
  try {
    (void)l.at(5);
    ADD_FAILURE() << "at(5) of a 2-element list must throw";
  } catch (const mpx::IndexError& e) {
    EXPECT_TRUE(contains(e.what(), "index 5 is out of range")) << e.what();
    EXPECT_TRUE(contains(e.what(), l.name())) << e.what();
  }
  EXPECT_THROW(l.set(2, "x"), mpx::IndexError);
  EXPECT_EQ(l.pop(9), std::nullopt);
  world().barrier();
  if (rank() == size() - 1) l.clear();
  world().barrier();
  EXPECT_EQ(l.pop(), std::nullopt);
  world().barrier();
}

TEST(List, MismatchedTypesFailOnEveryRank) {
  if (size() < 2) GTEST_SKIP();
  auto create = [] {
    if (rank() == 0) {
      mpx::List<int> l;
    } else {
      mpx::List<double> l;
    }
  };
  try {
    create();
    ADD_FAILURE() << "different element types must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "disagree on the key or value type")) << e.what();
  }
  auto mixed = [] {
    if (rank() == 0) {
      mpx::List<int> l;
    } else {
      mpx::Dict<int, int> d;
    }
  };
  EXPECT_THROW(mixed(), mpx::UsageError);
  mpx::List<int> ok;  // the next object still works
  ok.append(rank());
  world().barrier();
  EXPECT_EQ(ok.size(), static_cast<std::size_t>(size()));
  world().barrier();
}

}  // namespace

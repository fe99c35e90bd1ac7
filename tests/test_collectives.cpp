// Typed collectives: bcast, scatter(v), gather(v), allgather(v), reduce, allreduce, barrier.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <boost/serialization/map.hpp>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int size() { return world().size(); }
std::size_t usize() { return static_cast<std::size_t>(world().size()); }

struct Pair {
  int a;
  double b;
};

struct Concat {  // a stateful, non-commutative operation on strings
  std::string sep;
  std::string operator()(const std::string& x, const std::string& y) const { return x + sep + y; }
};

struct MaxAbs {  // a stateless user operation that MPI runs
  int operator()(int x, int y) const { return std::abs(x) > std::abs(y) ? x : y; }
};

TEST(Collectives, BcastRawSequenceAndSerialized) {
  const int root = size() - 1;
  EXPECT_EQ(world().bcast(rank() == root ? 99 : -1, root), 99);
  EXPECT_EQ(world().bcast(std::string(rank() == root ? "root says hi" : ""), root), "root says hi");
  std::map<std::string, int> m;
  if (rank() == root) m = {{"x", 1}, {"y", 2}};
  EXPECT_EQ(world().bcast(m, root).at("y"), 2);
  EXPECT_THROW(world().bcast(1, size()), mpx::UsageError);
}

TEST(Collectives, ScatterGivesEachRankItsValue) {
  std::vector<std::string> words;
  if (rank() == 0)
    for (int r = 0; r < size(); ++r) words.push_back("word" + std::to_string(r));
  EXPECT_EQ(world().scatter(words, 0), "word" + std::to_string(rank()));
  std::vector<int> ints;
  if (rank() == 0)
    for (int r = 0; r < size(); ++r) ints.push_back(r * r);
  EXPECT_EQ(world().scatter(ints, 0), rank() * rank());
}

TEST(Collectives, ScatterWithWrongCountIsAClearError) {
  // Every rank calls scatter; the root's bad argument makes every rank throw (none waits).
  std::vector<int> wrong(rank() == 0 ? usize() + 1 : 0);
  try {
    (void)world().scatter(wrong, 0);
    ADD_FAILURE();
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(rank() == 0 ? "exactly one value per rank"
                                                      : "the root (rank 0) passed invalid arguments"),
              std::string::npos)
        << e.what();
  }
}

TEST(Collectives, ScattervSplitsUnevenData) {
  // 10 elements over p ranks: sizes differ by at most one, lower ranks larger.
  std::vector<int> data(10);
  std::iota(data.begin(), data.end(), 0);
  const auto mine = world().scatterv(std::span<const int>(data), 0);
  const std::size_t base = 10 / usize(), extra = 10 % usize();
  const std::size_t r = static_cast<std::size_t>(rank());
  EXPECT_EQ(mine.size(), base + (r < extra ? 1 : 0));
  const auto all = world().gatherv(std::span<const int>(mine), 0);
  if (rank() == 0) {
    EXPECT_EQ(all, data);
  }
}

TEST(Collectives, ScattervWithExplicitCounts) {
  std::vector<double> data;
  std::vector<int> counts;
  for (int r = 0; r < size(); ++r) {
    counts.push_back(r);  // rank r gets r elements
    for (int i = 0; i < r; ++i) data.push_back(r);
  }
  const auto mine = world().scatterv(std::span<const double>(data), std::span<const int>(counts), 0);
  EXPECT_EQ(mine, std::vector<double>(static_cast<std::size_t>(rank()), rank()));
}

TEST(Collectives, GatherAndAllgather) {
  const auto g = world().gather(std::to_string(rank()), 0);
  if (rank() == 0) {
    ASSERT_EQ(g.size(), usize());
    for (int r = 0; r < size(); ++r) EXPECT_EQ(g[static_cast<std::size_t>(r)], std::to_string(r));
  } else {
    EXPECT_TRUE(g.empty());
  }
  const auto ag = world().allgather(Pair{rank(), rank() * 0.5});
  ASSERT_EQ(ag.size(), usize());
  EXPECT_EQ(ag.back().a, size() - 1);
  std::vector<int> mine(static_cast<std::size_t>(rank()) + 1, rank());
  const auto agv = world().allgatherv(std::span<const int>(mine));
  EXPECT_EQ(agv.size(), usize() * (usize() + 1) / 2);
  EXPECT_EQ(agv.back(), size() - 1);
}

TEST(Collectives, ReduceWithBuiltinOperations) {
  const int n = size();
  EXPECT_EQ(world().allreduce(rank() + 1, std::plus<>{}), n * (n + 1) / 2);
  EXPECT_EQ(world().allreduce(rank(), mpx::maximum{}), n - 1);
  EXPECT_EQ(world().allreduce(rank(), mpx::minimum{}), 0);
  EXPECT_DOUBLE_EQ(world().allreduce(2.0, std::multiplies<>{}), std::pow(2.0, n));
  const int r0 = world().reduce(rank() + 1, std::plus<>{}, 0);
  if (rank() == 0) {
    EXPECT_EQ(r0, n * (n + 1) / 2);
  }
}

TEST(Collectives, ReduceWithUserFunctionObjects) {
  // Stateless: runs as an MPI user operation.
  const int v = (rank() % 2 ? -1 : 1) * (rank() + 1);
  EXPECT_EQ(std::abs(world().allreduce(v, MaxAbs{})), size());
  // Stateful on strings: gathered and folded in rank order.
  std::string expected;
  for (int r = 0; r < size(); ++r) expected += (r ? "-" : "") + std::to_string(r);
  EXPECT_EQ(world().allreduce(std::to_string(rank()), Concat{"-"}), expected);
}

TEST(Collectives, ElementwiseReduce) {
  std::vector<long> v{rank() * 1L, 1L, 2L};
  const auto sum = world().allreduce(std::span<const long>(v), std::plus<>{});
  const long n = size();
  EXPECT_EQ(sum, (std::vector<long>{n * (n - 1) / 2, n, 2 * n}));
}

TEST(Collectives, BarrierLetsNobodyThroughEarly) {
  // Rank 0 sets a flag only after a delay; every rank must see it after the barrier.
  for (int round = 0; round < 3; ++round) {
    int flag = 0;
    if (rank() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      flag = round + 1;
    }
    world().barrier();
    EXPECT_EQ(world().bcast(flag, 0), round + 1);
  }
}

TEST(Collectives, DuplicateGivesAPrivateMessageSpace) {
  auto dup = world().duplicate("mine");
  EXPECT_EQ(dup.size(), size());
  EXPECT_EQ(dup.rank(), rank());
  EXPECT_NE(dup.native(), world().native());
  const int next = (rank() + 1) % size(), prev = (rank() + size() - 1) % size();
  auto a = world().isend(1, next, 0);
  auto b = dup.isend(2, next, 0);
  EXPECT_EQ(dup.recv<int>(prev, 0), 2);
  EXPECT_EQ(world().recv<int>(prev, 0), 1);
  a.wait();
  b.wait();
}

}  // namespace

namespace {

TEST(Collectives, SplitGroupsRanksAndNegativeColourGivesNull) {
  // Even ranks form one group, odd ranks another; rank 0 opts out with a negative colour.
  const int r = mpx::Communicator::world().rank();
  const int colour = r == 0 ? -1 : r % 2;
  auto sub = mpx::Communicator::world().split(colour, r, "halves");
  if (r == 0) {
    EXPECT_TRUE(sub.is_null());
    EXPECT_EQ(sub.size(), 0);
  } else {
    EXPECT_FALSE(sub.is_null());
    const int n = mpx::Communicator::world().size();
    int expected = 0;
    for (int q = 1; q < n; ++q) expected += (q % 2 == colour) ? 1 : 0;
    EXPECT_EQ(sub.size(), expected);
    EXPECT_EQ(sub.allreduce(1, std::plus<>{}), expected);
  }
}

}  // namespace

// Barrier: distinct indices per generation, many generations, the action runs once per
// generation, subsets of ranks, timeouts break it for every waiter, abort, reset, queries,
// construction errors.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using sync_test::rank;
using sync_test::size;
using sync_test::world;

namespace {

TEST(Barrier, DistinctIndicesEveryGeneration) {
  mpx::Barrier barrier(size());
  EXPECT_EQ(barrier.parties(), size());
  for (int g = 0; g < 50; ++g) {
    const int index = barrier.wait();
    const auto all = world().allgather(index);
    std::vector<int> sorted(all.begin(), all.end());
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < size(); ++i)
      EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i) << "generation " << g;
  }
  world().barrier();
}

TEST(Barrier, NobodyLeavesBeforeTheLastArrives) {
  mpx::Barrier barrier(size());
  const auto t0 = std::chrono::steady_clock::now();
  if (rank() == 0) std::this_thread::sleep_for(300ms);
  barrier.wait();
  EXPECT_GE(sync_test::seconds_since(t0), 0.29);
  world().barrier();
}

TEST(Barrier, ActionRunsOncePerGeneration) {
  sync_test::PlainCounter runs;
  mpx::Barrier barrier(size(), [&] { runs.increment(); });
  for (int g = 1; g <= 10; ++g) {
    barrier.wait();
    // Every party sees the action of this generation done when it leaves.
    EXPECT_GE(runs.read(), g);
  }
  world().barrier();
  EXPECT_EQ(runs.read(), 10);
  world().barrier();
}

TEST(Barrier, SubsetOfRanksAndThreadsAsParties) {
  // Two parties: rank 0 and the last rank meet, the others never call wait().
  mpx::Barrier pair(2);
  const int last = size() - 1;
  if (rank() == 0 || rank() == last) {
    if (rank() == last) std::this_thread::sleep_for(100ms);
    std::set<int> seen;
    for (int g = 0; g < 5; ++g) seen.insert(pair.wait(20s));
    EXPECT_FALSE(seen.empty());
  }
  world().barrier();
  // Two threads of rank 0 are two parties as well.
  mpx::Barrier threads(2);
  if (rank() == 0) {
    int a = -1;
    std::thread t([&] { a = threads.wait(20s); });
    const int b = threads.wait(20s);
    t.join();
    EXPECT_EQ(a + b, 1);  // indices 0 and 1
  }
  world().barrier();
}

TEST(Barrier, TimeoutBreaksItForEveryWaiter) {
  mpx::Barrier barrier(size());
  // The last rank never arrives: the others time out or see the barrier broken.
  if (rank() != size() - 1) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      barrier.wait(rank() == 0 ? 200ms : 20s);
      ADD_FAILURE() << "the barrier must break";
    } catch (const mpx::BrokenBarrierError& e) {
      if (rank() == 0) {
        EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
      }
    }
    EXPECT_LT(sync_test::seconds_since(t0), 15.0);
  }
  world().barrier();
  EXPECT_TRUE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0);
  // Broken stays broken: later waits fail at once.
  EXPECT_THROW(barrier.wait(), mpx::BrokenBarrierError);
  world().barrier();
  if (rank() == 0) barrier.reset();
  world().barrier();
  EXPECT_FALSE(barrier.broken());
  EXPECT_NO_THROW(barrier.wait(20s));
  world().barrier();
}

TEST(Barrier, DefaultTimeoutFromTheConstructor) {
  mpx::Barrier barrier(size(), nullptr, 150ms);
  if (rank() == 0) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(barrier.wait(), mpx::BrokenBarrierError);
    EXPECT_GE(sync_test::seconds_since(t0), 0.14);
  }
  world().barrier();
  EXPECT_TRUE(barrier.broken());
  world().barrier();
}

TEST(Barrier, AbortBreaksWaiters) {
  mpx::Barrier barrier(size());
  if (rank() == 0) {
    // Wait until everyone else is waiting, then abort.
    while (barrier.n_waiting() < size() - 1) std::this_thread::sleep_for(5ms);
    barrier.abort();
    EXPECT_TRUE(barrier.broken());
  } else {
    EXPECT_THROW(barrier.wait(20s), mpx::BrokenBarrierError);
  }
  world().barrier();
  EXPECT_TRUE(barrier.broken());
  world().barrier();
}

TEST(Barrier, ResetBreaksCurrentWaitersThenWorksAgain) {
  mpx::Barrier barrier(size());
  if (rank() == 0) {
    while (barrier.n_waiting() < size() - 1) std::this_thread::sleep_for(5ms);
    barrier.reset();
  } else {
    EXPECT_THROW(barrier.wait(20s), mpx::BrokenBarrierError);
  }
  world().barrier();
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0);
  world().barrier();
  const int index = barrier.wait(20s);
  EXPECT_GE(index, 0);
  EXPECT_LT(index, size());
  world().barrier();
}

TEST(Barrier, ActionThatThrowsBreaksTheBarrier) {
  mpx::Barrier barrier(size(), [] { throw std::runtime_error("action failed"); });
  try {
    barrier.wait(20s);
    ADD_FAILURE() << "the barrier must break";
  } catch (const mpx::BrokenBarrierError&) {
  } catch (const std::runtime_error& e) {  // the last party sees the action's own exception
    EXPECT_EQ(std::string(e.what()), "action failed");
  }
  world().barrier();
  EXPECT_TRUE(barrier.broken());
  world().barrier();
}

TEST(Barrier, ConstructionErrors) {
  try {
    mpx::Barrier too_many(size() + 1);
    ADD_FAILURE() << "parties > ranks must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("parties"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mpx::Barrier none(0), mpx::UsageError);
  EXPECT_THROW(mpx::Barrier negative(1, nullptr, -1s), mpx::UsageError);
  try {
    mpx::Barrier disagree(rank() == 0 ? 1 : size());
    if (size() > 1) ADD_FAILURE() << "ranks disagreeing on parties must fail together";
  } catch (const mpx::UsageError&) {
  }
  world().barrier();
}

}  // namespace

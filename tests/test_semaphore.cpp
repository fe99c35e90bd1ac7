// Semaphore and BoundedSemaphore: the counter limits concurrent holders, timeouts,
// non-blocking acquire, release(n), over-release of a bounded one, argument errors.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using sync_test::rank;
using sync_test::size;
using sync_test::world;

namespace {

TEST(Semaphore, AtMostValueHoldersAtOnce) {
  // Semaphore(1) is a lock: a plain counter stays exact.
  mpx::Semaphore one(1);
  sync_test::PlainCounter counter;
  world().barrier();
  for (int i = 0; i < 2000; ++i) {
    std::lock_guard guard(one);
    counter.increment();
  }
  world().barrier();
  EXPECT_EQ(counter.read(), 2000 * size());
  EXPECT_EQ(one.get_value(), 1);
  world().barrier();
}

TEST(Semaphore, CountsUnitsAcrossRanks) {
  mpx::Semaphore sem(static_cast<std::int64_t>(size()) - 1);
  // Everyone but one gets a unit at once; the last is refused.
  int got = 0;
  for (int r = 0; r < size(); ++r) {
    if (rank() == r && sem.acquire(false)) got = 1;
    world().barrier();
  }
  EXPECT_EQ(got, rank() == size() - 1 ? 0 : 1);
  EXPECT_EQ(sem.get_value(), 0);
  world().barrier();
  if (rank() == size() - 1) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(sem.acquire(true, 150ms));
    EXPECT_GE(sync_test::seconds_since(t0), 0.14);
    EXPECT_FALSE(sem.try_lock_for(10ms));
  }
  world().barrier();
  if (rank() == 0) sem.release(static_cast<std::int64_t>(size()) - 1);  // Python's release(n)
  if (rank() == size() - 1) {
    EXPECT_TRUE(sem.acquire(true, 20s));
  }
  world().barrier();
  EXPECT_EQ(sem.get_value(), size() - 2);
  world().barrier();
}

TEST(Semaphore, WaiterWakesOnRelease) {
  mpx::Semaphore sem(0);
  if (rank() == 0) {
    std::this_thread::sleep_for(150ms);
    sem.release(static_cast<std::int64_t>(size()) - 1);
  } else {
    EXPECT_TRUE(sem.acquire(true, 20s));
  }
  world().barrier();
  EXPECT_EQ(sem.get_value(), 0);
  world().barrier();
}

TEST(Semaphore, UnboundedMayGrowPastItsStart) {
  mpx::Semaphore sem(1);
  if (rank() == 0) sem.release(3);
  world().barrier();
  EXPECT_EQ(sem.get_value(), 4);
  world().barrier();
}

TEST(BoundedSemaphore, OverReleaseIsAnError) {
  mpx::BoundedSemaphore sem(2);
  if (rank() == 0) {
    try {
      sem.release();
      ADD_FAILURE() << "releasing a full bounded semaphore must fail";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("released too many times"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("BoundedSemaphore#"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(sem.acquire());
    EXPECT_THROW(sem.release(2), mpx::UsageError);
    sem.release();
  }
  world().barrier();
  EXPECT_EQ(sem.get_value(), 2);
  world().barrier();
}

TEST(BoundedSemaphore, GuardsAnExactCounter) {
  mpx::BoundedSemaphore sem(1);
  sync_test::PlainCounter counter;
  world().barrier();
  for (int i = 0; i < 1000; ++i) {
    sem.acquire();
    counter.increment();
    sem.release();
  }
  world().barrier();
  EXPECT_EQ(counter.read(), 1000 * size());
}

TEST(Semaphore, ArgumentErrors) {
  EXPECT_THROW(mpx::Semaphore bad(-1), mpx::UsageError);
  mpx::Semaphore sem(1);
  EXPECT_THROW(sem.release(0), mpx::UsageError);
  EXPECT_THROW(sem.acquire(true, -5ms), mpx::UsageError);
  world().barrier();
}

TEST(Semaphore, RanksDisagreeingOnTheValueFailTogether) {
  try {
    mpx::Semaphore sem(rank() == 0 ? 1 : 2);
    if (size() > 1) ADD_FAILURE() << "different initial values must fail on every rank";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("disagree"), std::string::npos) << e.what();
  }
  world().barrier();
}

}  // namespace

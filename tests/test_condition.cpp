// Condition: producer/consumer across ranks, notify(n) / notify_all, wait timeouts,
// wait_for with a predicate, misuse (wait or notify without the lock), RLock levels.
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

// The shared "buffer" of the producer/consumer tests: a PlainCounter of items available and
// a second one of items consumed, both guarded by the condition's lock.
TEST(Condition, ProducerConsumer) {
  mpx::Lock lock;
  mpx::Condition cond(lock);
  sync_test::PlainCounter items;
  sync_test::PlainCounter consumed;
  const int consumers = size() - 1;
  constexpr int per_consumer = 30;
  world().barrier();
  if (rank() == 0) {
    for (int i = 0; i < consumers * per_consumer; ++i) {
      std::lock_guard guard(cond);
      items.write(items.read() + 1);
      cond.notify();
    }
  } else {
    for (int i = 0; i < per_consumer; ++i) {
      std::unique_lock guard(cond);
      EXPECT_TRUE(cond.wait_for([&] { return items.read() > 0; }, 30s));
      items.write(items.read() - 1);
      consumed.increment();
    }
  }
  world().barrier();
  EXPECT_EQ(consumed.read(), consumers * per_consumer);
  EXPECT_EQ(items.read(), 0);
  world().barrier();
}

TEST(Condition, WaitTimesOutAndHoldsTheLockAgain) {
  mpx::Condition cond;  // Python's default: its own RLock
  std::unique_lock guard(cond);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cond.wait(100ms));
  EXPECT_GE(sync_test::seconds_since(t0), 0.09);
  EXPECT_TRUE(cond.get_lock().owned());
  EXPECT_FALSE(cond.wait_for([] { return false; }, 50ms));
  EXPECT_TRUE(cond.wait_for([] { return true; }, 0ms));
  guard.unlock();
  EXPECT_TRUE(cond.acquire(true, 10s));  // Python's cond.acquire(True, timeout)
  cond.release();
  world().barrier();
}

TEST(Condition, NotifyAllWakesEveryWaiter) {
  mpx::Lock lock;
  mpx::Condition cond(lock);
  mpx::Event go;
  sync_test::PlainCounter waiting;
  sync_test::PlainCounter flag;
  world().barrier();
  if (rank() != 0) {
    std::unique_lock guard(cond);
    waiting.increment();
    EXPECT_TRUE(cond.wait_for([&] { return flag.read() == 1; }, 30s));
  } else {
    // Wait until every other rank sits in wait(), then wake them all at once.
    for (;;) {
      {
        std::lock_guard guard(cond);
        if (waiting.read() == size() - 1) {
          flag.write(1);
          cond.notify_all();
          break;
        }
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  world().barrier();
}

TEST(Condition, NotifyWakesOnlyN) {
  if (size() < 3) GTEST_SKIP() << "needs two waiters";
  mpx::Lock lock;
  mpx::Condition cond(lock);
  sync_test::PlainCounter waiting;
  sync_test::PlainCounter woken;
  world().barrier();
  if (rank() != 0) {
    std::unique_lock guard(cond);
    waiting.increment();
    if (cond.wait(3s)) woken.increment();
  } else {
    for (;;) {
      {
        std::lock_guard guard(cond);
        if (waiting.read() == size() - 1) {
          cond.notify(1);
          break;
        }
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  world().barrier();
  EXPECT_EQ(woken.read(), 1);
  world().barrier();
}

TEST(Condition, WaitOrNotifyWithoutTheLockIsAnError) {
  mpx::Lock lock;
  mpx::Condition cond(lock);
  try {
    cond.wait(10ms);
    ADD_FAILURE() << "wait without the lock must fail";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("does not hold"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cond.notify(), mpx::UsageError);
  EXPECT_THROW(cond.notify_all(), mpx::UsageError);
  {
    std::lock_guard guard(cond);
    EXPECT_THROW(cond.notify(-1), mpx::UsageError);
    EXPECT_THROW(cond.wait(-1ms), mpx::UsageError);
  }
  world().barrier();
}

TEST(Condition, WaitReleasesEveryLevelOfAnRLock) {
  mpx::RLock lock;
  mpx::Condition cond(lock);
  if (rank() == 0) {
    lock.acquire();
    lock.acquire();
    EXPECT_FALSE(cond.wait(50ms));
    EXPECT_EQ(lock.level(), 2);
    lock.release();
    lock.release();
  }
  world().barrier();
  // While rank 0 waits, its RLock is free for the others.
  if (rank() == 0) {
    std::unique_lock guard(cond);
    lock.acquire();
    EXPECT_FALSE(cond.wait(1s));
    EXPECT_EQ(lock.level(), 2);
    lock.release();
  } else {
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(lock.acquire(true, 900ms));
    lock.release();
  }
  world().barrier();
}

}  // namespace

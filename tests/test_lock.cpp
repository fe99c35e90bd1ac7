// Lock and RLock: mutual exclusion under contention (ranks and threads), timeouts,
// non-blocking acquire, misuse errors, std lock adaptors, re-entry counting.
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

TEST(Lock, MutualExclusionUnderContention) {
  mpx::Lock lock;
  sync_test::PlainCounter counter;
  constexpr int n = 10000;
  world().barrier();
  for (int i = 0; i < n; ++i) {
    lock.acquire();
    counter.increment();
    lock.release();
  }
  world().barrier();
  EXPECT_EQ(counter.read(), static_cast<std::int64_t>(n) * size());
}

TEST(Lock, MutualExclusionOfThreadsOfEveryRank) {
  mpx::Lock lock;
  sync_test::PlainCounter counter;
  constexpr int n = 1000;
  auto work = [&] {
    for (int i = 0; i < n; ++i) {
      std::lock_guard guard(lock);
      counter.increment();
    }
  };
  world().barrier();
  std::thread other(work);
  work();
  other.join();
  world().barrier();
  EXPECT_EQ(counter.read(), static_cast<std::int64_t>(2 * n) * size());
}

TEST(Lock, StdAdaptorsWork) {
  mpx::Lock a;
  mpx::RLock b;
  {
    std::unique_lock guard(a, std::defer_lock);
    EXPECT_FALSE(guard.owns_lock());
    // Every rank tries for a while; exactly one holds it at a time, eventually all get it.
    while (!guard.try_lock_for(10ms)) {
    }
    EXPECT_TRUE(a.owned());
    EXPECT_EQ(a.holder(), rank());
  }
  {
    std::scoped_lock both(a, b);
    EXPECT_TRUE(a.owned());
    EXPECT_TRUE(b.owned());
  }
  EXPECT_FALSE(a.owned());
  world().barrier();
  EXPECT_EQ(a.holder(), -1);
  EXPECT_FALSE(a.locked());
  world().barrier();
}

TEST(Lock, NonBlockingAndTimeoutWhileHeldElsewhere) {
  mpx::Lock lock;
  if (rank() == 0) lock.acquire();
  world().barrier();
  if (rank() != 0) {
    EXPECT_EQ(lock.holder(), 0);
    EXPECT_TRUE(lock.locked());
    EXPECT_FALSE(lock.acquire(false));
    EXPECT_FALSE(lock.try_lock());
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(lock.acquire(true, 200ms));
    const double waited = sync_test::seconds_since(t0);
    EXPECT_GE(waited, 0.19);
    EXPECT_LT(waited, 5.0);
    EXPECT_FALSE(lock.try_lock_for(50ms));
    EXPECT_FALSE(lock.try_lock_until(std::chrono::steady_clock::now() + 20ms));
    EXPECT_FALSE(lock.acquire(0s));
  }
  world().barrier();
  if (rank() == 0) lock.release();
  world().barrier();
  // Free now: a timed acquire on the last rank succeeds at once.
  if (rank() == size() - 1) {
    EXPECT_TRUE(lock.acquire(true, 5s));
    lock.release();
  }
  world().barrier();
}

TEST(Lock, TimedOutWaiterDoesNotStealTheLockLater) {
  mpx::Lock lock;
  if (rank() == 0) lock.acquire();
  world().barrier();
  if (rank() != 0) {
    EXPECT_FALSE(lock.acquire(true, 50ms));
  }
  world().barrier();
  if (rank() == 0) {
    lock.release();
    // Every waiter gave up: the lock is free for rank 0 again.
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
  }
  world().barrier();
}

TEST(Lock, WaiterGetsTheLockWhenReleased) {
  mpx::Lock lock;
  if (rank() == 0) lock.acquire();
  world().barrier();
  if (rank() == 0) {
    std::this_thread::sleep_for(200ms);
    lock.release();
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(lock.acquire(true, 20s));
    EXPECT_GE(sync_test::seconds_since(t0), 0.15);
    lock.release();
  }
  world().barrier();
}

TEST(Lock, ReleasingALockNotHeldNamesTheHolder) {
  mpx::Lock lock;
  if (rank() == 0) {
    try {
      lock.release();
      ADD_FAILURE() << "release of a free lock must fail";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("not held by anyone"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("Lock#"), std::string::npos) << e.what();
    }
  }
  world().barrier();
  if (rank() == 0) lock.acquire();
  world().barrier();
  if (rank() != 0) {
    try {
      lock.release();
      ADD_FAILURE() << "release of a lock held by rank 0 must fail";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("held by rank 0"), std::string::npos) << e.what();
    }
  }
  if (rank() == 0) {
    // Another thread of the holding rank is not the holder either.
    std::thread t([&] { EXPECT_THROW(lock.release(), mpx::UsageError); });
    t.join();
  }
  world().barrier();
  if (rank() == 0) lock.release();
  world().barrier();
}

TEST(Lock, ReacquireOnTheHoldingThreadIsAnError) {
  mpx::Lock lock;
  if (rank() == 0) {
    lock.acquire();
    EXPECT_FALSE(lock.acquire(false));  // Python: False
    try {
      lock.acquire();
      ADD_FAILURE() << "re-acquiring a Lock on its holder must fail, not hang";
    } catch (const mpx::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("RLock"), std::string::npos) << e.what();
    }
    lock.release();
  }
  world().barrier();
}

TEST(Lock, NegativeTimeoutIsAUsageError) {
  mpx::Lock lock;
  EXPECT_THROW(lock.acquire(true, -1ms), mpx::UsageError);
  world().barrier();
}

TEST(Lock, MovedLockStillWorks) {
  mpx::Lock a;
  mpx::Lock b = std::move(a);
  if (rank() == 0) {
    std::lock_guard g(b);
    EXPECT_TRUE(b.owned());
  }
  world().barrier();
}

TEST(RLock, CountsReentryPerOwner) {
  mpx::RLock lock;
  sync_test::PlainCounter counter;
  world().barrier();
  for (int i = 0; i < 500; ++i) {
    lock.acquire();
    lock.acquire();
    EXPECT_EQ(lock.level(), 2);
    counter.increment();
    lock.release();
    EXPECT_EQ(lock.level(), 1);
    EXPECT_TRUE(lock.owned());
    counter.increment();
    lock.release();
    EXPECT_EQ(lock.level(), 0);
  }
  world().barrier();
  EXPECT_EQ(counter.read(), 1000 * size());
  EXPECT_FALSE(lock.owned());
  world().barrier();
}

TEST(RLock, OtherRanksWaitUntilTheLastRelease) {
  mpx::RLock lock;
  if (rank() == 0) {
    lock.acquire();
    lock.acquire();
    lock.acquire();
  }
  world().barrier();
  if (rank() != 0) {
    EXPECT_FALSE(lock.acquire(false));
  }
  world().barrier();
  if (rank() == 0) {
    lock.release();
    lock.release();
  }
  world().barrier();
  if (rank() != 0) {
    EXPECT_FALSE(lock.acquire(true, 20ms));
  }
  world().barrier();
  if (rank() == 0) {
    lock.release();
    EXPECT_THROW(lock.release(), mpx::UsageError);  // one release too many
  }
  world().barrier();
  if (rank() == size() - 1) {
    EXPECT_TRUE(lock.acquire(false));
    lock.release();
  }
  world().barrier();
}

TEST(RLock, ThreadsOfOneRankAreDifferentOwners) {
  mpx::RLock lock;
  if (rank() == 0) {
    lock.acquire();
    std::thread t([&] {
      EXPECT_FALSE(lock.acquire(false));
      EXPECT_EQ(lock.level(), 0);
    });
    t.join();
    lock.release();
  }
  world().barrier();
}

}  // namespace

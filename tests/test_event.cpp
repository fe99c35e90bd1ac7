// Event: set/clear/is_set across ranks, wait with and without timeout, waking all waiters.
#include <gtest/gtest.h>
#include <mpx/mpx.hpp>

#include <chrono>
#include <thread>

#include "sync_test_util.hpp"

using namespace std::chrono_literals;
using sync_test::rank;
using sync_test::size;
using sync_test::world;

namespace {

TEST(Event, StartsClearAndWaitTimesOut) {
  mpx::Event event;
  EXPECT_FALSE(event.is_set());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(event.wait(150ms));
  EXPECT_GE(sync_test::seconds_since(t0), 0.14);
  EXPECT_FALSE(event.wait(0ms));
  world().barrier();
}

TEST(Event, SetWakesEveryWaiter) {
  mpx::Event event;
  if (rank() == 0) {
    std::this_thread::sleep_for(150ms);
    event.set();
  }
  EXPECT_TRUE(event.wait(20s));
  EXPECT_TRUE(event.is_set());
  std::thread t([&] { EXPECT_TRUE(event.wait()); });  // already set: returns at once
  t.join();
  world().barrier();
}

TEST(Event, ClearMakesWaitersWaitAgain) {
  mpx::Event event;
  if (rank() == 0) event.set();
  world().barrier();
  EXPECT_TRUE(event.is_set());
  world().barrier();
  if (rank() == size() - 1) event.clear();
  world().barrier();
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait(20ms));
  world().barrier();
}

TEST(Event, PingPongOfTwoEvents) {
  mpx::Event ping;
  mpx::Event pong;
  const int other = size() - 1;
  for (int i = 0; i < 20; ++i) {
    if (rank() == 0) {
      ping.set();
      EXPECT_TRUE(pong.wait(20s));
      pong.clear();
    } else if (rank() == other) {
      EXPECT_TRUE(ping.wait(20s));
      ping.clear();
      pong.set();
    }
  }
  world().barrier();
}

TEST(Event, NegativeTimeoutIsAUsageError) {
  mpx::Event event;
  EXPECT_THROW(event.wait(-1s), mpx::UsageError);
  world().barrier();
}

}  // namespace

// Queue and JoinableQueue: MPMC exactly-once with per-producer order, maxsize back-pressure,
// timeouts, close semantics, JoinableQueue, large and serialized items, progress while the
// host computes, idle cost, and misuse.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <mpx/mpx.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int size() { return world().size(); }
int last() { return world().size() - 1; }

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// ---- many producers, many consumers ----------------------------------------------------------

// 3 producers x 10,000 items and 2 consumers, spread over the ranks as threads: consumer 0
// on the host (rank 0), consumer 1 on the last rank; producer p on rank 1 + p % (size-1).
// Every item is (producer << 32 | sequence number).
void run_mpmc(std::int64_t maxsize) {
  constexpr int producers = 3;
  constexpr std::int64_t per_producer = 10000;
  mpx::Queue<std::int64_t> q(maxsize);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    if (1 + p % (size() - 1) != rank()) continue;
    threads.emplace_back([&q, p] {
      for (std::int64_t i = 0; i < per_producer; ++i) q.put((std::int64_t{p} << 32) | i);
    });
  }
  std::vector<std::vector<std::int64_t>> got(2);
  std::vector<std::thread> consumers;
  if (rank() == 0)
    consumers.emplace_back([&] {
      while (auto x = q.next()) got[0].push_back(*x);
    });
  if (rank() == last())
    consumers.emplace_back([&] {
      for (std::int64_t x : q) got[1].push_back(x);
    });
  for (auto& t : threads) t.join();
  world().barrier();  // every producer is done
  if (rank() == 0) q.close();
  for (auto& t : consumers) t.join();

  // Per-producer order within each consumer.
  for (const auto& list : got) {
    std::map<std::int64_t, std::int64_t> next_seq;
    for (std::int64_t x : list) {
      const std::int64_t p = x >> 32, seq = x & 0xffffffff;
      auto it = next_seq.find(p);
      if (it != next_seq.end()) {
        EXPECT_GT(seq, it->second) << "producer " << p << " reordered";
      }
      next_seq[p] = seq;
    }
  }
  std::vector<std::int64_t> mine = got[0];
  mine.insert(mine.end(), got[1].begin(), got[1].end());
  const auto all = world().gatherv(std::span<const std::int64_t>(mine), 0);
  if (rank() == 0) {
    EXPECT_EQ(all.size(), static_cast<std::size_t>(producers * per_producer));
    std::set<std::int64_t> unique(all.begin(), all.end());
    EXPECT_EQ(unique.size(), all.size()) << "an item was delivered twice";
    std::int64_t checksum = 0, expected = 0;
    for (std::int64_t x : all) checksum += x;
    for (int p = 0; p < producers; ++p)
      for (std::int64_t i = 0; i < per_producer; ++i) expected += (std::int64_t{p} << 32) | i;
    EXPECT_EQ(checksum, expected);
  }
}

TEST(Queue, ManyProducersManyConsumersExactlyOnceInOrder) { run_mpmc(0); }

TEST(Queue, ManyProducersManyConsumersBounded) { run_mpmc(8); }

TEST(Queue, OrderFromOneProducerWithAnotherHost) {
  // Host is the last rank; rank 0 produces, rank 1 % size consumes.
  mpx::Queue<int> q(0, world(), last());
  EXPECT_EQ(q.host(), last());
  const int consumer = 1 % size();
  if (rank() == 0)
    for (int i = 0; i < 2000; ++i) q.put(i);
  if (rank() == consumer)
    for (int i = 0; i < 2000; ++i) {
      EXPECT_EQ(q.get(), i);
    }
  world().barrier();
}

// ---- maxsize -----------------------------------------------------------------------------------

TEST(Queue, MaxsizeBlocksPutUntilAGetMakesRoom) {
  mpx::Queue<int> q(2);
  if (rank() == last()) {
    q.put(1);
    q.put(2);
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.qsize(), 2);
    EXPECT_THROW(q.put_nowait(3), mpx::Full);
    const auto t0 = Clock::now();
    EXPECT_THROW(q.put(3, 200ms), mpx::Full);
    EXPECT_GE(seconds_since(t0), 0.19);
  }
  world().barrier();
  if (rank() == 0) {
    EXPECT_EQ(q.qsize(), 2);
    EXPECT_TRUE(q.full());
  }
  world().barrier();
  if (rank() == last()) {
    const auto t0 = Clock::now();
    q.put(3);  // blocks until rank 0 takes an item, about 300 ms from now
    EXPECT_GE(seconds_since(t0), 0.2);
  }
  if (rank() == 0) {
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(q.get(), 1);
    EXPECT_EQ(q.get(), 2);
    EXPECT_EQ(q.get(), 3);
  }
  world().barrier();
}

TEST(Queue, MaxsizeOnTheHostItself) {
  mpx::Queue<int> q(1);
  if (rank() == 0) {
    q.put(7);
    EXPECT_THROW(q.put_nowait(8), mpx::Full);
    EXPECT_THROW(q.put(8, 50ms), mpx::Full);
    EXPECT_EQ(q.get(), 7);
    q.put_nowait(9);
    EXPECT_EQ(q.get_nowait(), 9);
  }
  world().barrier();
}

// ---- timeouts ------------------------------------------------------------------------------

TEST(Queue, GetTimesOutOnEveryRank) {
  mpx::Queue<int> q;
  const auto t0 = Clock::now();
  EXPECT_THROW((void)q.get(100ms), mpx::Empty);
  EXPECT_GE(seconds_since(t0), 0.099);
  EXPECT_THROW((void)q.get_nowait(), mpx::Empty);
  EXPECT_THROW((void)q.get(0ms), mpx::Empty);
  EXPECT_TRUE(q.empty());
  world().barrier();
  // Nothing was lost or left behind by the cancelled gets: an item put now is got once.
  if (rank() == last()) q.put(42);
  if (rank() == 0) {
    EXPECT_EQ(q.get(5s), 42);
  }
  world().barrier();
  EXPECT_THROW((void)q.get_nowait(), mpx::Empty);
  world().barrier();
}

TEST(Queue, NegativeTimeoutIsAUsageError) {
  mpx::Queue<int> q(1);
  try {
    (void)q.get(-1ms);
    ADD_FAILURE() << "negative get timeout accepted";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("timeout must not be negative"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Queue#"), std::string::npos) << e.what();
  }
  EXPECT_THROW(q.put(1, -5ms), mpx::UsageError);
  world().barrier();
}

// ---- close ---------------------------------------------------------------------------------

TEST(Queue, CloseLetsConsumersDrainThenSaysClosed) {
  mpx::Queue<std::string> q;
  if (rank() == last()) {
    for (int i = 0; i < 5; ++i) q.put("item " + std::to_string(i));
    q.close();
    EXPECT_TRUE(q.closed());
    q.close();  // harmless
  }
  world().barrier();
  EXPECT_TRUE(q.closed());  // close() returned on the last rank: every rank knows
  try {
    q.put("late");
    ADD_FAILURE() << "put after close accepted";
  } catch (const mpx::ClosedError& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
  if (rank() == 0) {
    for (int i = 0; i < 5; ++i) EXPECT_EQ(q.get(), "item " + std::to_string(i));
    EXPECT_THROW((void)q.get(), mpx::EOFError);
    EXPECT_THROW((void)q.get_nowait(), mpx::ClosedError);  // EOFError is a ClosedError
    EXPECT_FALSE(q.next().has_value());
  }
  world().barrier();
  if (rank() == last()) {
    EXPECT_FALSE(q.next().has_value());
  }
  world().barrier();
}

TEST(Queue, CloseWakesABlockedGetter) {
  mpx::Queue<int> q;
  if (rank() == 0 || rank() == last()) {
    // rank 0 (host) and the last rank wait; rank 1 % size closes after 300 ms.
  }
  if (rank() == 1 % size() && size() > 1) {
    std::this_thread::sleep_for(300ms);
    q.close();
  }
  if (rank() == 0 || (rank() == last() && last() != 1)) {
    const auto t0 = Clock::now();
    EXPECT_THROW((void)q.get(), mpx::EOFError);
    EXPECT_GE(seconds_since(t0), 0.25);
  }
  world().barrier();
}

TEST(Queue, ConsumerThatStartsFirstDoesNotQuitEarly) {
  // Seed 000's race: `if q.empty(): break` quits before the producer has put anything.
  // With close() the consumer stops only when the queue is closed and drained.
  mpx::Queue<int> q;
  if (rank() == last()) {
    std::this_thread::sleep_for(200ms);
    for (int i = 0; i < 10; ++i) q.put(i);
    q.close();
  }
  if (rank() == 0) {
    std::vector<int> got;
    for (int x : q) got.push_back(x);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  }
  world().barrier();
}

TEST(Queue, OwnPutsAreCountedByQsize) {
  mpx::Queue<int> q;
  EXPECT_TRUE(q.empty());
  world().barrier();
  if (rank() == last()) {
    q.put(1);
    q.put(2);
    q.put(3);
    EXPECT_EQ(q.qsize(), 3);
    EXPECT_FALSE(q.empty());
    EXPECT_FALSE(q.full());  // unbounded
  }
  world().barrier();
  if (rank() == 0) {
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(q.get(), i);
    EXPECT_EQ(q.qsize(), 0);
  }
  world().barrier();
}

// ---- JoinableQueue -----------------------------------------------------------------------------

TEST(JoinableQueue, JoinWaitsForEveryTaskDone) {
  mpx::JoinableQueue<int> q;
  constexpr int n = 50;
  std::atomic<int> processed{0};
  if (rank() == last())
    for (int i = 0; i < n; ++i) q.put(i);
  world().barrier();
  if (rank() == 0) {
    // Rank 0 joins while the other ranks consume (at np2 it consumes in a thread too).
    std::thread consumer;
    if (size() == 2 || last() == 0)
      consumer = std::thread([&] {
        for (int i = 0; i < n; ++i) {
          (void)q.get();
          std::this_thread::sleep_for(1ms);
          q.task_done();
        }
      });
    q.join();
    if (consumer.joinable()) consumer.join();
  } else if (size() > 2) {
    // Ranks 1..last share the n items; the last rank closes the queue once joined.
    for (;;) {
      try {
        (void)q.get(300ms);
      } catch (const mpx::Empty&) {
        break;
      }
      std::this_thread::sleep_for(1ms);
      processed.fetch_add(1);
      q.task_done();
    }
  }
  const int total = world().allreduce(processed.load(), std::plus<>{});
  if (size() > 2) {
    EXPECT_EQ(total, n);
  }
  // join() returned on rank 0, so nothing is left.
  EXPECT_EQ(q.qsize(), 0);
  world().barrier();
}

TEST(JoinableQueue, JoinOnAnEmptyQueueReturnsAndTaskDoneTooOftenIsAnError) {
  mpx::JoinableQueue<int> q;
  q.join();
  try {
    q.task_done();
    ADD_FAILURE() << "task_done without an item accepted";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("task_done"), std::string::npos) << e.what();
  }
  world().barrier();
  if (rank() == last()) q.put(5);
  world().barrier();
  if (rank() == 0) {
    EXPECT_EQ(q.get(), 5);
    q.task_done();
  }
  q.join();
  world().barrier();
}

// ---- item types ----------------------------------------------------------------------------------

struct Reading {
  std::string sensor;
  std::vector<double> values;
  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar& sensor& values;
  }
};

TEST(Queue, OneMebibyteItemsBothWays) {
  mpx::Queue<std::vector<char>> q;
  const std::size_t n = std::size_t{1} << 20;
  auto make = [&](int tag) {
    std::vector<char> v(n);
    for (std::size_t i = 0; i < n; ++i)
      v[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(tag)) & 0x7f);
    return v;
  };
  // remote producer -> host consumer, and host producer -> remote consumer
  if (rank() == last())
    for (int k = 0; k < 3; ++k) q.put(make(k));
  if (rank() == 0)
    for (int k = 0; k < 3; ++k) {
      EXPECT_TRUE(q.get() == make(k)) << "item " << k << " corrupted";
    }
  world().barrier();
  if (rank() == 0)
    for (int k = 10; k < 13; ++k) q.put(make(k));
  if (rank() == last())
    for (int k = 10; k < 13; ++k) {
      EXPECT_TRUE(q.get() == make(k)) << "item " << k << " corrupted";
    }
  world().barrier();
}

TEST(Queue, SerializedItems) {
  mpx::Queue<Reading> q;
  if (rank() == last()) q.put(Reading{"t" + std::to_string(rank()), {1.5, 2.5}});
  if (rank() == 0) {
    const Reading r = q.get();
    EXPECT_EQ(r.sensor, "t" + std::to_string(last()));
    EXPECT_EQ(r.values, (std::vector<double>{1.5, 2.5}));
  }
  world().barrier();
}

// ---- progress and idle cost --------------------------------------------------------------------

TEST(Queue, WorksWhileTheHostComputes) {
  // The host (rank 0) computes for 3 s without calling mpx. Meanwhile the last rank makes 20
  // put/get round trips through the queue: each needs the host, so they can only complete
  // during those 3 s if the host's progress thread serves the queue.
  if (size() < 2) GTEST_SKIP() << "needs 2 ranks";
  mpx::Queue<int> q;
  world().barrier();
  const auto t0 = Clock::now();
  if (rank() == 0) {
    volatile double x = 0;
    while (seconds_since(t0) < 3.0) x = x + 1.0;
  }
  if (rank() == last()) {
    for (int i = 0; i < 20; ++i) {
      q.put(i);
      EXPECT_EQ(q.get(), i);
    }
    EXPECT_LT(seconds_since(t0), 2.9) << "the round trips did not complete while the host computed";
  }
  world().barrier();
}

TEST(Queue, StreamedPutsArriveWhileTheProducerSleeps) {
  // A producer that streams puts (they are coalesced into batches) and then sleeps without
  // calling mpx: the progress thread sends the last partial batch, so every item arrives.
  mpx::Queue<std::int64_t> q;
  constexpr std::int64_t n = 1000;
  if (rank() == last()) {
    for (std::int64_t i = 0; i < n; ++i) q.put(i);
    std::this_thread::sleep_for(1500ms);
  }
  if (rank() == 0) {
    for (std::int64_t i = 0; i < n; ++i) {
      try {
        EXPECT_EQ(q.get(1s), i);
      } catch (const mpx::Empty&) {
        ADD_FAILURE() << "item " << i << " did not arrive while the producer slept";
        break;
      }
    }
  }
  world().barrier();
}

TEST(Queue, WaitingCostsNoCore) {
  // For 5 s rank 0 (host of both queues) waits in get() on an empty queue, and the last rank
  // waits in put() on a full one. Each must use < 10% of one core, progress thread included.
  if (size() < 2) GTEST_SKIP() << "needs 2 ranks";
  mpx::Queue<int> empty_queue;
  mpx::Queue<int> full_queue(1);
  if (rank() == last()) full_queue.put(1);
  world().barrier();
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  if (rank() == 0) {
    EXPECT_THROW((void)empty_queue.get(5s), mpx::Empty);
  }
  if (rank() == last()) {
    EXPECT_THROW(full_queue.put(2, 5s), mpx::Full);
  }
  const double cpu = cpu_seconds() - c0;
  const double wall = seconds_since(t0);
  if (rank() == 0 || rank() == last()) {
    EXPECT_GE(wall, 4.9);
    EXPECT_LT(cpu / wall, 0.10) << "rank " << rank() << " used " << cpu << " s of CPU in " << wall
                                << " s";
  }
  world().barrier();
}

// ---- misuse --------------------------------------------------------------------------------

TEST(Queue, NegativeMaxsizeIsAUsageErrorOnEveryRank) {
  try {
    mpx::Queue<int> q(-1);
    ADD_FAILURE() << "negative maxsize accepted";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("maxsize must be >= 0"), std::string::npos) << e.what();
  }
  // Only one rank passing a bad value: every rank still fails, together.
  EXPECT_THROW(mpx::Queue<int> q(rank() == last() ? -3 : 3), mpx::UsageError);
  mpx::Queue<int> fine(3);  // the failures left nothing half-made: creation still works
  world().barrier();
}

TEST(Queue, MismatchedCreationFailsOnEveryRank) {
  if (size() < 2) GTEST_SKIP() << "needs 2 ranks";
  try {
    mpx::Queue<int> q(rank() == 0 ? 5 : 6);
    ADD_FAILURE() << "mismatched maxsize accepted";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("ranks disagree"), std::string::npos) << e.what();
  }
  // Different item types.
  auto make = [] {
    if (rank() == 0)
      mpx::Queue<int> q;
    else
      mpx::Queue<double> q;
  };
  try {
    make();
    ADD_FAILURE() << "mismatched item type accepted";
  } catch (const mpx::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("item type"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mpx::Queue<int> q(0, world(), size()), mpx::UsageError);  // host out of range
  world().barrier();
}

}  // namespace

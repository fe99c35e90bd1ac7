// Object lifecycle: destroyed objects give back their communicator and shared memory, and
// nothing they left behind (unread messages, queued items) reaches the objects made after.
#include <gtest/gtest.h>
#include <mpx/detail/retire.hpp>
#include <mpx/detail/shared_segment.hpp>
#include <mpx/detail/wait.hpp>
#include <mpx/mpx.hpp>
#include <sys/resource.h>

#include <chrono>
#include <optional>
#include <string>

namespace {

const mpx::Communicator& world() { return mpx::Communicator::world(); }
int rank() { return world().rank(); }
int last() { return world().size() - 1; }

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Waits (sleeping) until this rank has freed every communicator it retired. The peers' part
// of the protocol runs on their progress threads, so no rank needs to call anything.
bool all_released(std::chrono::seconds limit = std::chrono::seconds(20)) {
  return mpx::detail::wait_until([] { return mpx::detail::communicators_awaiting_release() == 0; },
                                 mpx::detail::Clock::now() + limit, {"test", "release", -1});
}

TEST(Lifecycle, DestroyedObjectsReleaseTheirCommunicators) {
  for (int i = 0; i < 50; ++i) {
    mpx::Queue<int> q;
    mpx::Lock lock;
    mpx::Value<double> v(1.0);
    mpx::Dict<int, int> d;
    auto [a, b] = mpx::Pipe(0, last());
  }
  EXPECT_TRUE(all_released()) << mpx::detail::communicators_awaiting_release()
                              << " communicator(s) still waiting on rank " << rank();
  world().barrier();
}

TEST(Lifecycle, SmallSharedStateGoesBackToTheArena) {
  world().barrier();
  const std::size_t before = mpx::detail::shared_arena_free_bytes();
  {
    mpx::Lock lock;
    mpx::Semaphore sem(3);
    mpx::Array<int> array(100);
    mpx::Value<long> counter(0);
    counter.fetch_add(1);
    if (before > 0) {
      EXPECT_LT(mpx::detail::shared_arena_free_bytes(), before);
    }
    world().barrier();
  }
  world().barrier();  // every rank let go: the last one returned the blocks
  EXPECT_EQ(mpx::detail::shared_arena_free_bytes(), before);
}

TEST(Lifecycle, UnreadPipeMessagesNeverReachTheNextPipe) {
  // Each round leaves messages unread in a pipe and destroys it. Freed context ids are
  // reused by the pipes made next; a leftover message would surface there.
  for (int round = 0; round < 100; ++round) {
    {
      auto [a, b] = mpx::Pipe(0, last());
      if (rank() == 0)
        for (int k = 0; k < 3; ++k) a.send(std::string("stale ") + std::to_string(round));
    }
    auto [a, b] = mpx::Pipe(0, last());
    if (rank() == 0) a.send(round);
    if (rank() == last()) {
      EXPECT_EQ(b.recv<int>(), round);
    }
    if (round % 10 == 0) all_released(std::chrono::seconds(5));
  }
  EXPECT_TRUE(all_released());
  world().barrier();
}

TEST(Lifecycle, UnreceivedMessagesOnADuplicateStayThere) {
  // The same for a user's own communicator: a message nobody received is dropped with it.
  for (int round = 0; round < 100; ++round) {
    {
      mpx::Communicator mine = world().duplicate("mine");
      if (rank() == 0) mine.send(std::string("stale"), last(), 3);
      if (rank() == 0) mine.send(round, last(), 4);
    }
    mpx::Communicator next = world().duplicate("next");
    if (rank() == last()) {
      const std::optional<mpx::Status> stray = next.iprobe();
      EXPECT_FALSE(stray.has_value()) << "round " << round << ": a message of a destroyed "
                                      << "communicator surfaced in a new one";
    }
    next.barrier();
  }
  EXPECT_TRUE(all_released());
  world().barrier();
}

TEST(Lifecycle, TensOfThousandsOfObjectsInALoop) {
  // Open MPI has about 65,000 communicator ids; every object takes some while it lives (a
  // duplex pipe four). Before objects gave theirs back, this loop ended the job at ~16,000.
  // Memory stays flat too (it grew by some 27 kB per object before).
  constexpr int rounds = 20000;
  constexpr int warm_up = 2000;
  long warm_kib = 0;
  for (int i = 0; i < rounds; ++i) {
    auto [a, b] = mpx::Pipe(0, last());
    if (i % 4 == 0) {  // and a lock (shared memory) every fourth round
      mpx::Lock lock;
      std::lock_guard guard(lock);
    }
    if (rank() == 0) a.send(i);
    if (rank() == last()) {
      ASSERT_EQ(b.recv<int>(), i);
    }
    if (i == warm_up) warm_kib = peak_rss_kib();
  }
  EXPECT_LT(peak_rss_kib() - warm_kib, 32 * 1024)
      << "rank " << rank() << " grew from " << warm_kib << " KiB after " << warm_up
      << " rounds to " << peak_rss_kib() << " KiB after " << rounds;
  EXPECT_TRUE(all_released());
  world().barrier();
}

}  // namespace

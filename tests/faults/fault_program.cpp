// fault_program: small MPI programs that fail on purpose, for tests/faults/check_fault.sh.
// Each mode prints "FAULT NOW" (flushed) right before the fault, so the checker can time
// how fast the job ends after it.
//
//   fault_program exchange-kill V     ranks pass messages round a ring; rank V SIGKILLs itself
//   fault_program throw V             rank V throws an uncaught exception; the others wait for it
//   fault_program return-early V M    rank V returns from main; the others wait for it in
//                                     M = recv | barrier | pipe
//   fault_program loop                ranks pass messages round a ring for 120 s (link test)
//   fault_program deadlock            ranks 0 and 1 each wait for a message the other never sends
//   fault_program wait-detail         rank 1 waits, with a detail::WaitDetail, for a message never
//   sent fault_program empty-pipe          rank 1 waits on a Pipe nobody fills fault_program
//   two-locks           ranks 0 and 1 take two Locks in opposite order fault_program empty-queue
//   rank 1 gets from a Queue nobody fills fault_program pool-kill V         a worker rank V
//   SIGKILLs itself in the middle of Pool.map fault_program pool-throw          a Pool task throws;
//   the driver does not catch it
#include <mpx/detail/wait.hpp>
#include <mpx/mpx.hpp>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if __has_include(<mpx/pool.hpp>)
#include <mpx/pool.hpp>
#define MPX_FAULTS_HAVE_POOL 1
#endif
#if __has_include(<mpx/queue.hpp>)
#include <mpx/queue.hpp>
#define MPX_FAULTS_HAVE_QUEUE 1
#endif
#if __has_include(<mpx/lock.hpp>)
#include <mpx/lock.hpp>
#define MPX_FAULTS_HAVE_LOCK 1
#endif

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void say(const std::string& text) {
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

void fault_now(int rank, const std::string& what) {
  say("FAULT NOW: rank " + std::to_string(rank) + " " + what);
}

/// Passes an int round the ring of all ranks until `stop` returns true on rank 0 (which
/// tells the others with a negative value) or, on rank `victim`, until `at_fault` fires.
template <class Fault>
void ring(const mpx::Communicator& world, Clock::duration run_for, int victim, Fault at_fault) {
  const int me = world.rank();
  const int n = world.size();
  const int right = (me + 1) % n;
  const int left = (me + n - 1) % n;
  const auto start = Clock::now();
  bool announced = false;
  for (long round = 0;; ++round) {
    if (me == victim && Clock::now() - start > 500ms) at_fault();
    if (me == 0) {
      const bool stop = Clock::now() - start > run_for;
      world.send(stop ? -1 : static_cast<int>(round % 1000), right, 0);
      const int back = world.recv<int>(left, 0);
      if (stop) return;
      (void)back;
      if (!announced && round > 100) {
        say("exchanging");
        announced = true;
      }
    } else {
      const int value = world.recv<int>(left, 0);
      world.send(value, right, 0);
      if (value < 0) return;
    }
  }
}

/// Ranks that are not part of a deadlock wait in a barrier, but start a second later, so
/// that the hang doctor reports the deadlocked rank first.
void bystander_waits(const mpx::Communicator& world) {
  std::this_thread::sleep_for(1500ms);
  world.barrier();
}

int g_victim = -1;  // every rank runs the same command line, so workers know it too

#ifdef MPX_FAULTS_HAVE_POOL
int slow_square(int x) {
  std::this_thread::sleep_for(20ms);
  const int me = mpx::this_process().rank();
  if (me == g_victim && x >= 30) {
    fault_now(me, "kills itself in a Pool task");
    raise(SIGKILL);
  }
  return x * x;
}
MPX_REGISTER(slow_square);

int throwing_task(int x) {
  if (x == 7) throw std::out_of_range("task 7 failed on purpose");
  return x;
}
MPX_REGISTER(throwing_task);
#endif

int usage() {
  std::fprintf(stderr, "usage: fault_program MODE [ARGS] (see the source for the modes)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  const int victim = argc > 2 ? std::atoi(argv[2]) : 1;
  g_victim = victim;
  const auto& world = mpx::Communicator::world();
  const int me = world.rank();

  if (mode == "exchange-kill") {
    ring(world, 120s, victim, [&] {
      fault_now(me, "kills itself (SIGKILL) during the exchange");
      raise(SIGKILL);
    });
    return 0;
  }
  if (mode == "loop") {
    ring(world, 120s, -1, [] {});
    return 0;
  }
  if (mode == "throw") {
    world.barrier();
    if (me == victim) {
      std::this_thread::sleep_for(300ms);
      fault_now(me, "throws");
      throw std::runtime_error("thrown on purpose by the fault test");
    }
    (void)world.recv<int>(victim, 0);  // never sent
    return 0;
  }
  if (mode == "return-early") {
    const std::string how = argc > 3 ? argv[3] : "recv";
    auto pipe = mpx::Pipe(0, victim == 0 ? 1 : victim);  // collective: every rank, same order
    world.barrier();
    if (me == victim) {
      std::this_thread::sleep_for(300ms);
      fault_now(me, "returns from main early (" + how + ")");
      return 0;
    }
    if (how == "recv") (void)world.recv<int>(victim, 0);  // never sent
    if (how == "barrier") world.barrier();                // the victim never comes
    if (how == "pipe" && me == 0) (void)pipe.first.recv<int>();
    if (how == "pipe" && me != 0) (void)world.recv<int>(victim, 0);
    say("rank " + std::to_string(me) + " was not stopped");
    return 0;
  }
  if (mode == "deadlock") {
    world.barrier();
    if (me <= 1) {
      fault_now(me, "waits for rank " + std::to_string(1 - me));
      (void)world.recv<int>(1 - me, 0);  // each waits for the other: a deadlock
      world.send(1, 1 - me, 0);
    }
    bystander_waits(world);
    return 0;
  }
  if (mode == "wait-detail") {  // an object's extra words reach the doctor's report
    world.barrier();
    if (me == 1) {
      mpx::detail::WaitDetail detail(
          [] { return std::string("held by rank 0 since the test began"); });
      fault_now(me, "waits with a WaitDetail");
      (void)world.recv<int>(0, 0);  // never sent
    }
    bystander_waits(world);
    return 0;
  }
  if (mode == "empty-pipe") {
    auto [left, right] = mpx::Pipe(0, 1);
    world.barrier();
    if (me == 1) {
      fault_now(me, "waits on an empty pipe");
      (void)right.recv<int>();  // nobody sends
    }
    bystander_waits(world);
    return 0;
  }
#ifdef MPX_FAULTS_HAVE_LOCK
  if (mode == "two-locks") {
    mpx::Lock a;
    mpx::Lock b;
    if (me == 0) a.acquire();
    if (me == 1) b.acquire();
    world.barrier();
    if (me == 0) {
      fault_now(me, "takes the second lock");
      b.acquire();
    }
    if (me == 1) a.acquire();
    // Other ranks start waiting later, so the doctor's first report is a deadlocked rank's.
    bystander_waits(world);
    return 0;
  }
#endif
#ifdef MPX_FAULTS_HAVE_QUEUE
  if (mode == "empty-queue") {
    mpx::Queue<int> queue;
    world.barrier();
    if (me == 1) {
      fault_now(me, "gets from an empty queue");
      (void)queue.get();  // nobody puts
    }
    bystander_waits(world);
    return 0;
  }
#endif
#ifdef MPX_FAULTS_HAVE_POOL
  if (mode == "pool-kill") {
    if (auto pool = mpx::Pool::serve()) {
      const auto out = pool.map(slow_square, std::views::iota(0, 2000), {.chunksize = 1});
      say("map returned " + std::to_string(out.size()) + " results");
    }
    return 0;
  }
  if (mode == "pool-throw") {
    if (auto pool = mpx::Pool::serve()) {
      fault_now(me, "maps a task that throws");
      const auto out = pool.map(throwing_task, std::views::iota(0, 20), {.chunksize = 1});
      say("map returned " + std::to_string(out.size()) + " results");
    }
    return 0;
  }
#endif
  return usage();
}

// Tests of mpx::Process: targets run on the process slots (ranks 1..N-1) of the job.
// Every TEST runs on all ranks: rank 0 is the main process inside `if (main_process)`, the
// other ranks serve targets inside ProcessSlots::serve() until rank 0 leaves the block, so
// an EXPECT inside a target is checked (and reported) on the slot's rank.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <mpx/mpx.hpp>
#include <mpx/process.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void noop() {}
MPX_REGISTER(noop);

void sleeper(int ms) { mpx::sleep_for(std::chrono::milliseconds(ms)); }
MPX_REGISTER(sleeper);

void thrower() { throw std::runtime_error("boom in the target"); }
MPX_REGISTER(thrower);

void expect_name(std::string expected, bool daemon) {
  const auto me = mpx::current_process();
  EXPECT_EQ(me.name, expected);
  EXPECT_EQ(me.daemon, daemon);
  EXPECT_EQ(mpx::this_process().name(), expected);
}
MPX_REGISTER(expect_name);

void expect_other_process(int main_pid) {
  EXPECT_NE(static_cast<int>(::getpid()), main_pid);
  EXPECT_EQ(static_cast<int>(mpx::current_process().parent_pid), main_pid);
  EXPECT_NE(mpx::this_process().rank(), 0);
}
MPX_REGISTER(expect_other_process);

// Waits in an mpx call for a message nobody sends.
void blocked_in_probe() { (void)mpx::Communicator::world().probe(0, 77); }
MPX_REGISTER(blocked_in_probe);

// Swallows std::exception: termination must still unwind it.
void stubborn_sleeper() {
  for (;;) {
    try {
      mpx::sleep_for(10s);
    } catch (const std::exception&) {
    }
  }
}
MPX_REGISTER(stubborn_sleeper);

// Computes, calling interruption_point() now and then.
void computing() {
  volatile double x = 0;
  for (long i = 0;; ++i) {
    x = x + 1.0;
    if ((i & 0xffff) == 0) mpx::interruption_point();
  }
}
MPX_REGISTER(computing);

mpx::Connection* g_pipe_end = nullptr;  // rank 1's end of a pipe whose other end never sends

void blocked_in_pipe() { (void)g_pipe_end->recv<int>(); }
MPX_REGISTER(blocked_in_pipe);

mpx::Queue<int>* g_queue = nullptr;  // a queue nobody puts into

void blocked_in_queue_get() { (void)g_queue->get(); }
MPX_REGISTER(blocked_in_queue_get);

void takes_strings(std::string a, const std::string& b, std::vector<int> v) {
  EXPECT_EQ(a, "bob");
  EXPECT_EQ(b, "alice");
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3}));
}
MPX_REGISTER(takes_strings);

// CPU seconds (user + system) of this process so far, progress thread included.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// Sleeps, and checks that sleeping costs the slot (almost) no CPU.
void cheap_sleeper(int ms) {
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  mpx::sleep_for(std::chrono::milliseconds(ms));
  const double share = (cpu_seconds() - cpu0) / seconds_since(t0);
  std::printf("slot rank %d: %.1f%% of a core while sleeping\n", mpx::this_process().rank(),
              share * 100);
  EXPECT_LT(share, 0.10);
}
MPX_REGISTER(cheap_sleeper);

void start_from_a_slot() {
  mpx::Process p(noop);
  EXPECT_THROW(p.start(), mpx::UsageError);
}
MPX_REGISTER(start_from_a_slot);

class MyProcess : public mpx::Process {
 public:
  void run() override {
    EXPECT_EQ(mpx::current_process().name, name());
    EXPECT_EQ(name().rfind("MyProcess-", 0), 0u) << name();
    EXPECT_TRUE(is_alive());
  }
};
MPX_REGISTER_PROCESS(MyProcess);

class WithState : public mpx::Process {
 public:
  WithState() = default;
  WithState(int value, std::string text) : value_(value), text_(std::move(text)) {}
  void run() override {
    EXPECT_EQ(value_, 42);
    EXPECT_EQ(text_, "carried");
    EXPECT_EQ(name(), "stateful");
    EXPECT_TRUE(daemon());
  }
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    ar& value_& text_;
  }

 private:
  int value_ = 0;
  std::string text_;
};
MPX_REGISTER_PROCESS(WithState);

class Unregistered : public mpx::Process {
 public:
  void run() override {}
};

}  // namespace

TEST(Process, StartJoinExitcodeZero) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    EXPECT_EQ(main_process.slots(), mpx::Communicator::world().size() - 1);
    mpx::Process p(noop);
    EXPECT_FALSE(p.is_alive());
    EXPECT_FALSE(p.exitcode().has_value());
    EXPECT_FALSE(p.pid().has_value());
    p.start();
    EXPECT_TRUE(p.join());
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.exitcode(), 0);
    ASSERT_TRUE(p.pid().has_value());
    EXPECT_NE(*p.pid(), ::getpid());
    EXPECT_EQ(p.rank(), 1);  // the free slot with the lowest rank
  }
}

TEST(Process, TargetRunsInAnotherProcessOnAnotherRank) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(expect_other_process, static_cast<int>(::getpid()));
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
}

TEST(Process, ArgumentsAreCopied) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    const std::string alice = "alice";
    mpx::Process p(takes_strings, "bob", alice, std::vector<int>{1, 2, 3});
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
    mpx::Process lambda([](int x, double y) { EXPECT_EQ(x + y, 7.5); }, 5, 2.5);
    lambda.start();
    lambda.join();
    EXPECT_EQ(lambda.exitcode(), 0);
  }
}

TEST(Process, NamesAsPython) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process a(noop);
    mpx::Process b(noop);
    EXPECT_EQ(a.name().rfind("Process-", 0), 0u) << a.name();
    const int na = std::stoi(a.name().substr(8));
    EXPECT_EQ(b.name(), "Process-" + std::to_string(na + 1));
    mpx::Process named({.name = "foo_process"}, noop);
    EXPECT_EQ(named.name(), "foo_process");
    named.set_name("renamed");
    EXPECT_EQ(named.name(), "renamed");
    EXPECT_EQ(mpx::current_process().name, "MainProcess");

    mpx::Process check({.name = "worker"}, expect_name, std::string("worker"), false);
    check.start();
    check.join();
    EXPECT_EQ(check.exitcode(), 0);
    const int next = std::stoi(mpx::Process(noop).name().substr(8)) + 1;
    mpx::Process check_default(expect_name, "Process-" + std::to_string(next), false);
    check_default.start();
    check_default.join();
    EXPECT_EQ(check_default.exitcode(), 0);
    mpx::Process d({.name = "bg", .daemon = true}, expect_name, std::string("bg"), true);
    d.start();
    d.join();
    EXPECT_EQ(d.exitcode(), 0);
  }
}

TEST(Process, ReprAsPython) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p({.name = "Process-31"}, sleeper, 5000);
    EXPECT_EQ(p.repr(), "<Process(Process-31, initial)>");
    p.start();
    EXPECT_EQ(p.repr(), "<Process(Process-31, started)>");
    p.terminate();
    p.join();
    EXPECT_EQ(p.repr(), "<Process(Process-31, stopped[SIGTERM])>");
    std::ostringstream s;
    s << p;
    EXPECT_EQ(s.str(), p.repr());
    mpx::Process d({.name = "d", .daemon = true}, noop);
    EXPECT_EQ(d.repr(), "<Process(d, initial daemon)>");
    d.start();
    d.join();
    EXPECT_EQ(d.repr(), "<Process(d, stopped daemon)>");
    mpx::Process t({.name = "t"}, thrower);
    t.start();
    t.join();
    EXPECT_EQ(t.repr(), "<Process(t, stopped[1])>");
  }
}

TEST(Process, ExitcodeOneWhenTheTargetThrows) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(thrower);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 1);
    mpx::Process after(noop);  // the slot is still usable
    after.start();
    after.join();
    EXPECT_EQ(after.exitcode(), 0);
  }
}

TEST(Process, JoinTimeoutThenTerminateWithin100ms) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(sleeper, 20000);
    p.start();
    const auto t0 = Clock::now();
    EXPECT_FALSE(p.join(50ms));
    EXPECT_GE(seconds_since(t0), 0.045);
    EXPECT_TRUE(p.is_alive());
    EXPECT_FALSE(p.exitcode().has_value());
    const auto t1 = Clock::now();
    p.terminate();
    EXPECT_TRUE(p.join(10s));
    const double stop = seconds_since(t1);
    std::printf("terminate -> joined in %.1f ms\n", stop * 1e3);
    EXPECT_LT(stop, 2.0);  // 100 ms on an idle machine; generous for loaded CI
    EXPECT_FALSE(p.is_alive());
    EXPECT_EQ(p.exitcode(), -15);
    EXPECT_THROW(p.join(-1ms), mpx::UsageError);
  }
}

TEST(Process, KillGivesMinus9) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(sleeper, 20000);
    p.start();
    p.kill();
    p.join();
    EXPECT_EQ(p.exitcode(), -9);
  }
}

TEST(Process, TerminateBeforeTheTargetRuns) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(sleeper, 20000);
    p.start();
    p.terminate();  // usually arrives before or just after the start message
    p.join();
    EXPECT_EQ(p.exitcode(), -15);
  }
}

TEST(Process, TerminateStopsWaitsInMpxCalls) {
  auto [mine, theirs] = mpx::Pipe(0, 1);
  g_pipe_end = &theirs;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    for (auto target : {&blocked_in_probe, &blocked_in_pipe, &stubborn_sleeper, &computing}) {
      mpx::Process p(target);
      p.start();
      EXPECT_EQ(p.rank(), 1);
      EXPECT_FALSE(p.join(100ms));
      const auto t0 = Clock::now();
      p.terminate();
      EXPECT_TRUE(p.join(10s));
      EXPECT_LT(seconds_since(t0), 2.0);
      EXPECT_EQ(p.exitcode(), -15);
    }
    // The slot is still usable after all that.
    mpx::Process p(noop);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
  g_pipe_end = nullptr;
}

TEST(Process, TerminateAFinishedProcessDoesNothing) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(noop);
    p.start();
    p.join();
    p.terminate();
    p.kill();
    EXPECT_EQ(p.exitcode(), 0);
    mpx::Process next(noop);  // a late terminate must not hit the next target of the slot
    next.start();
    next.join();
    EXPECT_EQ(next.exitcode(), 0);
  }
}

TEST(Process, SubclassWithRun) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::vector<MyProcess> jobs(3);
    for (auto& p : jobs) {
      p.start();
      p.join();
      EXPECT_EQ(p.exitcode(), 0);
    }
    const int first = std::stoi(jobs[0].name().substr(10));
    EXPECT_EQ(jobs[2].name(), "MyProcess-" + std::to_string(first + 2));
    WithState s(42, "carried");
    s.set_name("stateful");
    s.set_daemon(true);
    s.start();
    s.join();
    EXPECT_EQ(s.exitcode(), 0);
    Unregistered u;
    EXPECT_THROW(u.start(), mpx::UsageError);
  }
}

TEST(Process, MoreProcessesThanSlotsWaitForAFreeSlot) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::vector<mpx::Process> procs;
    for (int i = 0; i < 7; ++i) procs.emplace_back(sleeper, 20);
    for (auto& p : procs) p.start();
    for (auto& p : procs) p.join();
    for (auto& p : procs) EXPECT_EQ(p.exitcode(), 0);
  }
}

TEST(Process, StartTimeoutWhenEverySlotIsBusy) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::vector<mpx::Process> busy;
    for (int i = 0; i < main_process.slots(); ++i) busy.emplace_back(sleeper, 20000);
    for (auto& p : busy) p.start();
    mpx::Process extra(noop);
    EXPECT_THROW(extra.start(100ms), mpx::TimeoutError);
    EXPECT_FALSE(extra.is_alive());
    for (auto& p : busy) p.terminate();
    for (auto& p : busy) p.join();
    extra.start(10s);  // a slot is free again
    extra.join();
    EXPECT_EQ(extra.exitcode(), 0);
  }
}

TEST(Process, ActiveChildren) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    EXPECT_TRUE(mpx::active_children().empty());
    mpx::Process p(sleeper, 20000);
    p.start();
    const auto children = mpx::active_children();
    ASSERT_EQ(children.size(), 1u);
    EXPECT_EQ(children[0], &p);
    mpx::Process moved = std::move(p);
    EXPECT_EQ(mpx::active_children().at(0), &moved);
    moved.terminate();
    moved.join();
    EXPECT_TRUE(mpx::active_children().empty());
  }
}

TEST(Process, Misuse) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(noop);
    EXPECT_THROW(p.join(), mpx::UsageError);  // not started
    p.start();
    EXPECT_THROW(p.start(), mpx::UsageError);  // twice
    EXPECT_THROW(p.set_daemon(true), mpx::UsageError);
    p.join();
    EXPECT_THROW(mpx::ProcessSlots::serve(), mpx::UsageError);  // one at a time (local check)
  }
  mpx::Process outside(noop);
  EXPECT_THROW(outside.start(), mpx::UsageError);  // no slots alive
}

TEST(Process, DaemonIsTerminatedAndOthersJoinedAtTheEnd) {
  mpx::Process daemon({.name = "daemon", .daemon = true}, sleeper, 30000);
  mpx::Process normal({.name = "normal"}, sleeper, 300);
  const auto t0 = Clock::now();
  {
    auto main_process = mpx::ProcessSlots::serve();
    if (main_process) {
      daemon.start();
      if (main_process.slots() >= 2) normal.start();
    }
  }  // main: terminate the daemon, join the other one; slots: return from serve()
  if (mpx::this_process().rank() == 0) {
    EXPECT_LT(seconds_since(t0), 10.0);
    EXPECT_EQ(daemon.exitcode(), -15);
    if (normal.pid()) {
      EXPECT_EQ(normal.exitcode(), 0);
    }
  }
}

TEST(Process, SleepForOutsideATargetSleeps) {
  const auto t0 = Clock::now();
  mpx::sleep_for(30ms);
  EXPECT_GE(seconds_since(t0), 0.029);
  EXPECT_THROW(mpx::sleep_for(-1ms), mpx::UsageError);
}

TEST(Process, WaitingCostsNoCore) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(cheap_sleeper, 2000);
    p.start();
    const double cpu0 = cpu_seconds();
    const auto t0 = Clock::now();
    p.join();
    const double share = (cpu_seconds() - cpu0) / seconds_since(t0);
    std::printf("main process: %.1f%% of a core while joining\n", share * 100);
    EXPECT_LT(share, 0.10);
    EXPECT_EQ(p.exitcode(), 0);
  }
}

TEST(Process, OnlyTheMainProcessStartsProcesses) {
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(start_from_a_slot);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
}

TEST(Process, APoolThenProcessesInOneProgram) {
  if (auto pool = mpx::Pool::serve()) {
    const auto squares = pool.map([](int x) { return x * x; }, std::vector<int>{1, 2, 3});
    EXPECT_EQ(squares, (std::vector<int>{1, 4, 9}));
  }  // workers return here
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(noop);
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }  // slots return here
  if (auto pool = mpx::Pool::serve()) {
    EXPECT_EQ(pool.apply([](int x) { return x + 10; }, 1), 11);
  }
}

// Queue waits in a loop of its own (QueueCore::wait_slot), which calls the interruption hook
// after each sleep, so terminate() stops a target blocked in Queue::get().
TEST(Process, TerminateStopsAQueueGet) {
  mpx::Queue<int> q;
  g_queue = &q;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(blocked_in_queue_get);
    p.start();
    EXPECT_FALSE(p.join(100ms));
    p.terminate();
    EXPECT_TRUE(p.join(5s));
    EXPECT_EQ(p.exitcode(), -15);
    if (p.is_alive()) {  // unblock it so the test ends
      q.put(1);
      p.join();
    }
  }
  g_queue = nullptr;
}

// Seeds 000 and 002, "How to synchronize processes": four named processes; p1 and p2 meet at
// a Barrier(2) and print under a Lock, p3 and p4 print at once.
//
//   Python (seed 002)                             mpx
//   synchronizer = Barrier(2)                     mpx::Barrier synchronizer(2);  // every rank
//   serializer = Lock()                           mpx::Lock serializer;
//   Process(name='p1 - test_with_barrier',        mpx::Process({.name = "p1 - test_with_barrier"},
//           target=test_with_barrier,                          test_with_barrier).start();
//           args=(synchronizer, serializer))      // the target reaches both through globals
//   multiprocessing.current_process().name        mpx::current_process().name
//   datetime.fromtimestamp(time())                timestamp() below
//
// p1 and p2 leave the barrier together, so their timestamps agree to a few milliseconds.
// Each process needs a slot of its own while it waits at the barrier: run with at least
// three ranks (two slots), best five (mpiexec -n 5 barrier_processes). It does not run alone:
// mpx::Barrier(2) needs a communicator of at least two ranks. This is the Process form of
// apps/barrier_timestamps, which uses the ranks directly.
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace {
mpx::Barrier* g_synchronizer = nullptr;
mpx::Lock* g_serializer = nullptr;

/// Python's str(datetime.fromtimestamp(t)): "2021-11-22 09:25:34.575058".
std::string timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[64];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  std::snprintf(text + n, sizeof text - n, ".%06lld", static_cast<long long>(micros));
  return text;
}
}  // namespace

void test_with_barrier() {
  const auto name = mpx::current_process().name;
  g_synchronizer->wait();
  const auto now = std::chrono::system_clock::now();
  std::lock_guard guard(*g_serializer);
  std::printf("process %s ----> %s\n", name.c_str(), timestamp(now).c_str());
  std::fflush(stdout);
}
MPX_REGISTER(test_with_barrier);

void test_without_barrier() {
  const auto name = mpx::current_process().name;
  const auto now = std::chrono::system_clock::now();
  std::printf("process %s ----> %s\n", name.c_str(), timestamp(now).c_str());
  std::fflush(stdout);
}
MPX_REGISTER(test_without_barrier);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::Barrier synchronizer(2);
  mpx::Lock serializer;
  g_synchronizer = &synchronizer;
  g_serializer = &serializer;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    if (main_process.slots() == 1) {
      std::fprintf(stderr,
                   "barrier_processes: p1 and p2 wait for each other, so they need two process "
                   "slots at once: run with mpiexec -n 3 or more\n");
      return 1;
    }
    mpx::Process({.name = "p1 - test_with_barrier"}, test_with_barrier).start();
    mpx::Process({.name = "p2 - test_with_barrier"}, test_with_barrier).start();
    mpx::Process({.name = "p3 - test_without_barrier"}, test_without_barrier).start();
    mpx::Process({.name = "p4 - test_without_barrier"}, test_without_barrier).start();
  }  // the main process joins them when it ends
}

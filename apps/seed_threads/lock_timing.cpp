// Seed 003, "Sincronización con Lock()": nine threads each hold a lock while they "work"
// (sleep) for 1..10 time units, so they run one after the other (the seed: 32 s); version 2
// releases the lock before sleeping, so they overlap (10 s, the longest sleep).
//
//   Python                                   C++
//   threadLock = threading.Lock()            std::mutex thread_lock;
//   threadLock.acquire() ... release()       thread_lock.lock() ... unlock()  (or std::lock_guard)
//   class MyThreadClass(Thread): run()       a function given to std::thread
//   randint(1, 10)                           std::uniform_int_distribution<int>(1, 10)
//
// One time unit is --unit-ms milliseconds (default 1000, as the seed's seconds).
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"

namespace {

std::mutex thread_lock;

void run(const std::string& name, int duration_ms, bool release_before_sleep) {
  thread_lock.lock();
  std::printf("---> %s running, belonging to process ID %d\n", name.c_str(),
              static_cast<int>(::getpid()));
  std::fflush(stdout);
  if (release_before_sleep) thread_lock.unlock();
  std::this_thread::sleep_for(std::chrono::milliseconds(duration_ms));
  std::printf("---> %s over\n", name.c_str());
  std::fflush(stdout);
  if (!release_before_sleep) thread_lock.unlock();
}

double version(const std::vector<int>& durations_ms, bool release_before_sleep) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < durations_ms.size(); ++i)
    threads.emplace_back(run, "Thread#" + std::to_string(i + 1) + " ", durations_ms[i],
                         release_before_sleep);
  for (auto& t : threads) t.join();
  std::printf("End\n");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("--- %.6f seconds ---\n", seconds);
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  mpx::apps::Cli cli(argc, argv, "lock_timing", "[--unit-ms MS] [--seed S]");
  const int unit_ms = static_cast<int>(cli.integer("--unit-ms", 1000));
  const auto seed = static_cast<unsigned>(cli.integer("--seed", 1));
  cli.done();
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> randint(1, 10);
  std::vector<int> durations;
  int total = 0, longest = 0;
  for (int i = 0; i < 9; ++i) {
    durations.push_back(randint(random) * unit_ms);
    total += durations.back();
    longest = std::max(longest, durations.back());
  }
  std::printf("version 1: the lock is held while sleeping (expect about %.3f s, the sum)\n",
              total / 1000.0);
  const double v1 = version(durations, false);
  std::printf(
      "version 2: the lock is released before sleeping (expect about %.3f s, the longest)\n",
      longest / 1000.0);
  const double v2 = version(durations, true);
  std::printf("version 1 / version 2: %.1f\n", v1 / v2);
}

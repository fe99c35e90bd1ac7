// balance: the bank-balance race of seed 004 (Italian notebook), with and without a Lock.
//
//   Python (seed 004)                          C++ (every rank runs main)
//   balance = mp.Value("i", 100)               mpx::Value<int> balance(100);
//   lock = mp.Lock()                           mpx::Lock lock;
//   p1: withdraw 10,000 times                  even ranks withdraw 10,000 times
//   p2: deposit 10,000 times                   odd ranks deposit 10,000 times
//     lock.acquire(); balance.value -= 1;        std::lock_guard g(lock);
//                                                balance.store(balance.load() - 1);
//     lock.release()
//   print(f"Balance={balance.value} con lock={lock_bool}")
//
// With the lock the balance ends at exactly 100 every time; without it the read-modify-write
// of different ranks interleaves and updates are lost ("races show"): `balance.value -= 1`
// is a load and a store, two steps another rank can slip between, in Python and here alike
// (balance.fetch_sub(1) would be atomic, but the lesson is the lock). On one node the int
// lives in shared memory; across nodes rank 0 hosts it (every load and store is a message).
//   mpiexec -n 2 build/bin/balance                 # 10 rounds without the lock, 10 with it
//   mpiexec -n 4 build/bin/balance --json          # {"lock": false, ...} {"lock": true, ...}
//   mpiexec -n 2 build/bin/balance --rounds 3 --iterations 100000 --only-lock
#include <mpx/mpx.hpp>
#include <mpx/shared.hpp>

#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

int run_round(const mpx::Communicator& world, bool use_lock, long long n) {
  mpx::Value<int> balance(100);  // Python: balance = mp.Value("i", 100), new each round
  mpx::Lock lock;                // Python: lock = mp.Lock()
  world.barrier();
  // Even ranks withdraw, odd ranks deposit; with an odd number of ranks the last one watches.
  const bool takes_part = world.rank() < (world.size() / 2) * 2;
  const int delta = world.rank() % 2 == 0 ? -1 : +1;
  if (takes_part) {
    for (long long i = 0; i < n; ++i) {
      if (use_lock) {
        std::lock_guard guard(lock);  // Python: lock.acquire() ... lock.release()
        balance.store(balance.load() + delta);
      } else {
        balance.store(balance.load() + delta);
      }
    }
  }
  world.barrier();
  const int result = balance.load();
  world.barrier();  // everyone has read it before the objects go
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "balance",
                     "[--rounds N] [--iterations N] [--only-lock | --only-no-lock] [--json]");
  const long long rounds = cli.integer("--rounds", 10);
  const long long iterations = cli.integer("--iterations", 10000);
  const bool only_lock = cli.flag("--only-lock");
  const bool only_no_lock = cli.flag("--only-no-lock");
  const bool json = cli.flag("--json");
  cli.done();
  const auto& world = mpx::Communicator::world();
  if (world.size() < 2) {
    if (world.rank() == 0)
      std::fprintf(stderr, "balance: run it with at least 2 ranks: mpiexec -n 2 balance\n");
    return 2;
  }

  std::vector<bool> modes;
  if (!only_lock) modes.push_back(false);    // Python: loop(10, lock_bool=False)
  if (!only_no_lock) modes.push_back(true);  // Python: loop(10, lock_bool=True)
  for (const bool use_lock : modes) {
    std::vector<int> results;
    for (long long r = 0; r < rounds; ++r) {
      const int b = run_round(world, use_lock, iterations);
      results.push_back(b);
      if (!json && world.rank() == 0) {
        std::printf("Balance=%d con lock=%s\n", b, use_lock ? "True" : "False");
        std::fflush(stdout);
      }
    }
    if (json && world.rank() == 0) {
      std::string line = std::string("{\"lock\": ") + (use_lock ? "true" : "false") +
                         ", \"ranks\": " + std::to_string(world.size()) +
                         ", \"iterations\": " + std::to_string(iterations) + ", \"balances\": [";
      for (std::size_t i = 0; i < results.size(); ++i)
        line += (i ? ", " : "") + std::to_string(results[i]);
      line += "]}";
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
